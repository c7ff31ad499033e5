// Consolidation implementations and the node topology (see consolidation.hpp). With mpi_runtime.cpp, the only code
// that calls MPI.
#include "cnnpar/consolidation.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

#include "cnnpar/aligned.hpp"

namespace cnnpar {

// ---------------------------------------------------------------------------------------------------------------
// Topology

Topology::Topology(MPI_Comm world, std::size_t ranks_per_node) : world_(world) {
  int size = 0;
  MPI_Comm_rank(world_, &rank_);
  MPI_Comm_size(world_, &size);
  MPI_Comm shared;
  MPI_Comm_split_type(world_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &shared);
  int shared_rank = 0;
  MPI_Comm_rank(shared, &shared_rank);
  // --ranks-per-node K: cut each shared-memory domain into groups of K consecutive ranks ("emulated nodes").
  const int color = ranks_per_node > 0 ? shared_rank / static_cast<int>(ranks_per_node) : 0;
  MPI_Comm_split(shared, color, shared_rank, &node_);
  MPI_Comm_free(&shared);
  int node_rank = 0;
  MPI_Comm_rank(node_, &node_rank);
  MPI_Comm_split(world_, node_rank == 0 ? 0 : MPI_UNDEFINED, rank_, &leaders_);
  // Nodes are numbered by their leader's (lowest) world rank.
  int node_id = 0;
  if (leaders_ != MPI_COMM_NULL) MPI_Comm_rank(leaders_, &node_id);
  MPI_Bcast(&node_id, 1, MPI_INT, 0, node_);
  map_.node_of_rank.resize(static_cast<std::size_t>(size));
  MPI_Allgather(&node_id, 1, MPI_INT, map_.node_of_rank.data(), 1, MPI_INT, world_);
}

Topology::~Topology() {
  if (leaders_ != MPI_COMM_NULL) MPI_Comm_free(&leaders_);
  if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
}

int Topology::node_index() const { return map_.node_of_rank[static_cast<std::size_t>(rank_)]; }

namespace {

std::uint64_t bytes(std::size_t floats) { return static_cast<std::uint64_t>(floats) * sizeof(float); }

std::size_t total(const std::vector<int>& counts) {
  std::size_t t = 0;
  for (int c : counts) t += static_cast<std::size_t>(c);
  return t;
}

// Block partition of an allreduce's n floats over `participants`: who reduces which block.
void reduce_blocks(std::size_t n, std::size_t participants, std::vector<int>& counts, std::vector<int>& displs) {
  const BoundaryLayout b = make_boundary(n, 1, participants);
  counts = b.counts;
  displs = b.displs;
}

// MPI_Allgatherv in place: participant `me` has its block of `buf` at displs[me]; afterwards every block is
// everywhere. Adds what it handed to MPI to `s`.
void allgatherv_in_place(float* buf, const std::vector<int>& counts, const std::vector<int>& displs, int me,
                         MPI_Comm comm, ConsolidationSample& s) {
  const auto mine = static_cast<std::size_t>(counts[static_cast<std::size_t>(me)]);
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts.data(), displs.data(), MPI_FLOAT, comm);
  s.bytes_received += bytes(total(counts) - mine);
  s.bytes_sent += bytes(mine * (counts.size() - 1));
}

// MPI_Bcast of n floats from participant `root`; adds what it handed to MPI to `s` (the root sends one copy to
// each of the others, whatever tree the library uses).
void broadcast(float* buf, std::size_t n, int root, int me, MPI_Comm comm, ConsolidationSample& s) {
  int participants = 1;
  MPI_Comm_size(comm, &participants);
  MPI_Bcast(buf, static_cast<int>(n), MPI_FLOAT, root, comm);
  if (me == root) s.bytes_sent += bytes(n * static_cast<std::size_t>(participants - 1));
  else s.bytes_received += bytes(n);
}

// MPI_Reduce_scatter of `partial` (n floats) into this participant's block of `result`, then MPI_Allgatherv of the
// blocks in place: the "reduce-scatter + allgather" allreduce. Each element is summed in one place, so every
// participant ends with identical bits. Adds what it handed to MPI to `s`.
void reduce_scatter_allgather(const float* partial, float* result, const std::vector<int>& counts,
                              const std::vector<int>& displs, int me, MPI_Comm comm, ConsolidationSample& s) {
  const auto n = total(counts), mine = static_cast<std::size_t>(counts[static_cast<std::size_t>(me)]);
  MPI_Reduce_scatter(partial, result + displs[static_cast<std::size_t>(me)], counts.data(), MPI_FLOAT, MPI_SUM, comm);
  s.bytes_sent += bytes(n - mine);                         // every other participant's block of my partial
  s.bytes_received += bytes(mine * (counts.size() - 1));  // my block of every other partial
  allgatherv_in_place(result, counts, displs, me, comm, s);
}

// The point-to-point exchange of an `exchange` boundary (plan.hpp): from every peer the boxes of its output I will
// read and do not hold (a halo of rows, another cut of the batch), and to every peer mine that it will read. Each
// box is an MPI subarray datatype over the step's whole output tensor, so MPI moves it in place, with no packing
// step of ours (its copying is part of the transfer time). MPI_Isend/MPI_Irecv, then one MPI_Waitall: no
// neighbourhood collectives (SimGrid's SMPI has none), and any pattern of neighbours works.
// Box `b` of a step's whole output tensor (C x H x W x B, C,H,W,B order) as a committed MPI subarray datatype, for
// moving it in place; the caller frees it.
MPI_Datatype box_datatype(const PlanStep& step, const Box& b) {
  const int sizes[4] = {int(step.out.c), int(step.out.h), int(step.out.w), int(step.batch)};
  const int sub[4] = {int(b.c.count), int(b.h.count), int(b.w.count), int(b.b.count)};
  const int start[4] = {int(b.c.begin), int(b.h.begin), int(b.w.begin), int(b.b.begin)};
  MPI_Datatype type;
  MPI_Type_create_subarray(4, sizes, sub, start, MPI_ORDER_C, MPI_FLOAT, &type);
  MPI_Type_commit(&type);
  return type;
}

class BoxExchange {
 public:
  BoxExchange(const PlanStep& step, int me, int ranks) {
    auto add = [&](std::vector<Transfer>& list, int peer, const std::vector<Box>& boxes) {
      for (std::size_t k = 0; k < boxes.size(); ++k)
        list.push_back(Transfer{peer, int(k), box_datatype(step, boxes[k]), bytes(boxes[k].volume())});
    };
    for (int q = 0; q < ranks; ++q) {
      if (q == me) continue;
      add(recvs_, q, exchange_boxes(step, std::size_t(q), std::size_t(me)));
      add(sends_, q, exchange_boxes(step, std::size_t(me), std::size_t(q)));
    }
    requests_.resize(recvs_.size() + sends_.size());
  }
  ~BoxExchange() {
    for (auto* list : {&sends_, &recvs_})
      for (Transfer& t : *list) MPI_Type_free(&t.type);
  }
  BoxExchange(const BoxExchange&) = delete;
  BoxExchange& operator=(const BoxExchange&) = delete;

  void run(float* tensor, MPI_Comm comm, ConsolidationSample& s) {
    std::size_t n = 0;
    for (const Transfer& t : recvs_) {
      MPI_Irecv(tensor, 1, t.type, t.peer, t.tag, comm, &requests_[n++]);
      s.bytes_received += t.bytes;
    }
    for (const Transfer& t : sends_) {
      MPI_Isend(tensor, 1, t.type, t.peer, t.tag, comm, &requests_[n++]);
      s.bytes_sent += t.bytes;
    }
    MPI_Waitall(static_cast<int>(n), requests_.data(), MPI_STATUSES_IGNORE);
  }

 private:
  struct Transfer {
    int peer, tag;
    MPI_Datatype type;
    std::uint64_t bytes;
  };
  std::vector<Transfer> sends_, recvs_;
  std::vector<MPI_Request> requests_;
};

// ---------------------------------------------------------------------------------------------------------------
// allgatherv: distributed memory, the seed's "consolidate at each layer boundary".
//
// Every rank holds a private copy of every tensor. The activation layout makes each slice one contiguous range
// (kernels.hpp), so MPI_Allgatherv works in place on the layer's output buffer: no pack, no unpack. Rank r receives
// s*(N - n_r) bytes per boundary; the library's algorithm (recursive doubling, Bruck, ring, ...) decides the
// latency term: lg P or P-1 message steps, and (P-1)/P of the tensor through each rank's link. Row-parallel steps
// use reduce-scatter + allgather, ~2(P-1)/P of the (small) output per rank.
class AllgathervConsolidation final : public Consolidation {
 public:
  AllgathervConsolidation(const Topology& topo, std::size_t input_elems, std::vector<PlanStep> steps,
                          double (*clock)())
      : comm_(topo.world()), clock_(clock), steps_(std::move(steps)), input_(input_elems) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    for (const PlanStep& s : steps_) {
      outputs_.emplace_back(s.action == BoundaryAction::allreduce ? s.reduce_elems : s.layout.total_elems());
      partials_.emplace_back(s.action == BoundaryAction::allreduce ? s.reduce_elems : 0);
      reduce_counts_.emplace_back();
      reduce_displs_.emplace_back();
      if (s.action == BoundaryAction::allreduce)
        reduce_blocks(s.reduce_elems, static_cast<std::size_t>(size_), reduce_counts_.back(), reduce_displs_.back());
      exchanges_.push_back(s.action == BoundaryAction::exchange ? std::make_unique<BoxExchange>(s, rank_, size_)
                                                                 : nullptr);
    }
  }

  ConsolidationKind kind() const override { return ConsolidationKind::allgatherv; }
  void stage_input(std::span<const float> in) override { std::copy(in.begin(), in.end(), input_.begin()); }
  std::span<const float> input() override { return input_; }
  std::span<float> output(std::size_t step) override { return outputs_.at(step); }
  std::span<float> partial(std::size_t step) override { return partials_.at(step); }
  std::uint64_t activation_bytes() const override {
    std::size_t floats = input_.size();
    for (std::size_t s = 0; s < outputs_.size(); ++s) floats += outputs_[s].size() + partials_[s].size();
    return bytes(floats);
  }

  ConsolidationSample broadcast_input(int root) override {
    ConsolidationSample s;
    s.enter_s = clock_();
    broadcast(input_.data(), input_.size(), root, rank_, comm_, s);
    s.exit_s = clock_();
    return s;
  }

  ConsolidationSample finish(std::size_t step) override {
    const PlanStep& st = steps_.at(step);
    ConsolidationSample s;
    s.enter_s = clock_();
    if (st.action == BoundaryAction::allgather) {
      allgatherv_in_place(outputs_[step].data(), st.layout.counts, st.layout.displs, rank_, comm_, s);
    } else if (st.action == BoundaryAction::allreduce) {
      reduce_scatter_allgather(partials_[step].data(), outputs_[step].data(), reduce_counts_[step],
                               reduce_displs_[step], rank_, comm_, s);
    } else if (st.action == BoundaryAction::exchange) {
      exchanges_[step]->run(outputs_[step].data(), comm_, s);
    }
    s.exit_s = clock_();
    return s;
  }

 private:
  MPI_Comm comm_;
  double (*clock_)();
  int rank_ = 0, size_ = 1;
  std::vector<PlanStep> steps_;
  AlignedFloats input_;  // cache-line aligned: the kernels read and write whole vectors (aligned.hpp)
  std::vector<AlignedFloats> outputs_, partials_;
  std::vector<std::vector<int>> reduce_counts_, reduce_displs_;
  std::vector<std::unique_ptr<BoxExchange>> exchanges_;  // [step] exchange boundaries only
};

// ---------------------------------------------------------------------------------------------------------------
// Node windows: the MPI-3 shared-memory machinery of the shared and hierarchical kinds.
//
// One window per node holds every buffer (input, each step's output, each allreduce step's per-rank partial slots).
// Node rank 0 allocates it all and the others attach with size 0 and MPI_Win_shared_query(rank 0): one contiguous
// node-wide buffer, no zero-size-slice special case, and the pattern SimGrid's SMPI also handles.
//
// Memory model: the window is opened once for passive-target access (MPI_Win_lock_all, MPI_MODE_NOCHECK) and stays
// open. Ranks write with ordinary stores. To publish: MPI_Win_sync (a memory barrier that makes this rank's stores
// visible in the window), MPI_Barrier on the node (everyone has published), MPI_Win_sync again (this rank's
// subsequent loads see the others' stores). This "sync-barrier-sync" is the MPI-3 idiom for load/store
// communication through a shared window (Hoefler et al., "MPI+MPI", 2013), valid in the unified and separate memory
// models alike. Buffers are never overwritten while others may still read them: a step's output is rewritten only
// in the next forward pass, after this step's and the next step's barriers, which every reader has passed.
class NodeWindow {
 public:
  NodeWindow(MPI_Comm node, std::size_t floats) : node_(node) {
    int node_rank = 0;
    MPI_Comm_rank(node_, &node_rank);
    const MPI_Aint size = node_rank == 0 ? static_cast<MPI_Aint>(floats * sizeof(float)) : 0;
    void* mine = nullptr;
    MPI_Win_allocate_shared(size, sizeof(float), MPI_INFO_NULL, node_, &mine, &win_);
    base_ = shared_segments(win_, node_, mine).front();  // node rank 0's segment: the whole buffer
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win_);
    allocated_ = static_cast<std::uint64_t>(size);
  }
  ~NodeWindow() {
    MPI_Win_unlock_all(win_);
    MPI_Win_free(&win_);
  }
  NodeWindow(const NodeWindow&) = delete;
  NodeWindow& operator=(const NodeWindow&) = delete;

  float* at(std::size_t float_offset) const { return static_cast<float*>(base_) + float_offset; }
  void publish() const {
    MPI_Win_sync(win_);
    MPI_Barrier(node_);
    MPI_Win_sync(win_);
  }
  std::uint64_t allocated_bytes() const { return allocated_; }

 private:
  MPI_Comm node_;
  MPI_Win win_ = MPI_WIN_NULL;
  void* base_ = nullptr;
  std::uint64_t allocated_ = 0;
};

}  // namespace

std::vector<char*> shared_segments(MPI_Win win, MPI_Comm node, void* mine) {
  int size = 1;
  MPI_Comm_size(node, &size);
  MPI_Aint bytes0 = 0;
  int disp_unit = 0;
  char* base0 = nullptr;
  MPI_Win_shared_query(win, 0, &bytes0, &disp_unit, &base0);
  long long offset = static_cast<char*>(mine) - base0;
  std::vector<long long> offsets(static_cast<std::size_t>(size));
  MPI_Allgather(&offset, 1, MPI_LONG_LONG, offsets.data(), 1, MPI_LONG_LONG, node);
  std::vector<char*> segments;
  for (long long o : offsets) segments.push_back(base0 + o);
  return segments;
}

namespace {

// The buffers of the plan placed in one node window, each region 64-byte aligned.
struct WindowLayout {
  std::size_t input = 0, total = 0;
  std::vector<std::size_t> output, partial_slots;  // per step; partial slots: node_size regions of reduce_elems
  WindowLayout(std::size_t input_elems, const std::vector<PlanStep>& steps, std::size_t node_size) {
    auto place = [this](std::size_t floats) {
      const std::size_t at = total;
      total += (floats + 15) / 16 * 16;
      return at;
    };
    input = place(input_elems);
    for (const PlanStep& s : steps) {
      const bool reduce = s.action == BoundaryAction::allreduce;
      output.push_back(place(reduce ? s.reduce_elems : s.layout.total_elems()));
      partial_slots.push_back(reduce ? place(s.reduce_elems * node_size) : 0);
    }
  }
};

// Floats [f.begin, f.end()) of a tensor of `shape` x `batch` in the C,H,W,B layout (an allreduce block) as boxes: a
// partial run of samples at either end, whole elements (every sample) between them.
std::vector<Box> float_range_boxes(const Shape& shape, std::size_t batch, Slice f) {
  const std::size_t plane = shape.h * shape.w;
  auto element = [&](std::size_t e, Slice samples) {
    return Box{Slice{e / plane, 1}, Slice{e % plane / shape.w, 1}, Slice{e % shape.w, 1}, samples};
  };
  if (f.empty()) return {};
  std::size_t first = f.begin / batch;
  const std::size_t last = f.end() / batch;  // the element the range ends in (or just after it)
  if (first == last) return {element(first, Slice{f.begin % batch, f.count})};
  std::vector<Box> out;
  if (f.begin % batch != 0) out.push_back(element(first++, Slice{f.begin % batch, batch - f.begin % batch}));
  for (const Box& b : boxes_of_range(shape.c, shape.h, shape.w, batch, Slice{first, last - first})) out.push_back(b);
  if (f.end() % batch != 0) out.push_back(element(last, Slice{0, f.end() % batch}));
  return out;
}

// One stage's reads in place on one rank (ConsolidationSample): bytes per writer and their total.
struct ReadLedger {
  std::vector<std::uint64_t> from;  // [world rank]
  std::uint64_t total = 0;
};

// Boxes of a window buffer one rank stored.
struct Stored {
  std::vector<Box> boxes;
  int writer = 0;  // world rank
};

// Rank `me` loads `reads` from a buffer whose parts `stored` names the writers of. A read element counts towards
// the rank that stored it, unless `me` stored it as well (a replicated step: every rank stores the same values, and
// each reads its own). The total is counted apart, as what the reads cover minus what `me` stored: a part nobody
// stored, or two other ranks claim, then shows as a difference between the total and the sum over writers.
void add_reads(const std::vector<Box>& reads, const std::vector<Stored>& stored, int me, ReadLedger& ledger) {
  std::vector<Box> mine;
  for (const Stored& st : stored)
    if (st.writer == me) mine.insert(mine.end(), st.boxes.begin(), st.boxes.end());
  auto not_mine = [&mine](const Box& x) {
    std::size_t n = x.volume();
    for (const Box& m : mine) n -= intersect(x, m).volume();  // a rank's boxes are disjoint
    return n;
  };
  for (const Box& r : reads) {
    ledger.total += bytes(not_mine(r));
    for (const Stored& st : stored) {
      if (st.writer == me) continue;
      for (const Box& b : st.boxes) ledger.from[static_cast<std::size_t>(st.writer)] += bytes(not_mine(intersect(r, b)));
    }
  }
}

// Shared-window consolidation within each node. `shared` uses it on a single node; `hierarchical` adds the
// exchange between node leaders on top (see below).
//
// shared: a rank writes its slice straight into the node's tensor, publish() makes it visible, and the next layer
// reads the window in place: no copy-out, nothing through MPI. The cost is two memory barriers and one node barrier
// per boundary, plus the cache-line transfers the next layer's loads trigger (they show up in its compute time).
// The input "broadcast" is the root copying the batch into the window once per pass. A row-parallel step writes
// per-rank partial sums into slots; after publish() each rank sums one block of the output over the slots in rank
// order (deterministic, identical on every rank) and publishes again.
//
// Every stage's reads in place (ConsolidationSample::read_from) are set out once, in the constructor, from the boxes
// each rank stores and the boxes each rank's next step reads, and handed out with every sample of that stage.
class WindowConsolidation : public Consolidation {
 public:
  WindowConsolidation(ConsolidationKind kind, const Topology& topo, std::size_t input_elems,
                      std::vector<PlanStep> steps, double (*clock)())
      : kind_(kind),
        topo_(topo),
        clock_(clock),
        steps_(std::move(steps)),
        node_size_(comm_size(topo.node())),
        across_nodes_(kind == ConsolidationKind::hierarchical && topo.map().nodes() > 1),
        layout_(input_elems, steps_, node_size_),
        window_(topo.node(), layout_.total),
        input_elems_(input_elems) {
    MPI_Comm_rank(topo.world(), &rank_);
    MPI_Comm_rank(topo.node(), &node_rank_);
    if (topo.leaders() != MPI_COMM_NULL) {
      MPI_Comm_rank(topo.leaders(), &leader_rank_);
      MPI_Comm_size(topo.leaders(), &leader_count_);
    }
    for (const PlanStep& s : steps_) {
      node_reduce_counts_.emplace_back();
      node_reduce_displs_.emplace_back();
      leader_counts_.emplace_back();
      leader_displs_.emplace_back();
      if (s.action == BoundaryAction::allreduce) {
        reduce_blocks(s.reduce_elems, node_size_, node_reduce_counts_.back(), node_reduce_displs_.back());
        if (leader_count_ > 0)
          reduce_blocks(s.reduce_elems, static_cast<std::size_t>(leader_count_), leader_counts_.back(),
                        leader_displs_.back());
      } else if (s.action == BoundaryAction::allgather) {
        // A node's ranks are consecutive, so its slices form one block: [first rank's offset, sum of counts).
        const auto& node_of = topo.map().node_of_rank;
        leader_counts_.back().assign(static_cast<std::size_t>(topo.map().nodes()), 0);
        leader_displs_.back().assign(static_cast<std::size_t>(topo.map().nodes()), 0);
        for (std::size_t r = node_of.size(); r-- > 0;) {
          const auto n = static_cast<std::size_t>(node_of[r]);
          leader_counts_.back()[n] += s.layout.counts[r];
          leader_displs_.back()[n] = s.layout.displs[r];
        }
      }
    }
    if (is_leader()) scratch_.resize(max_reduce_elems());
    int world_rank = rank_;
    node_world_.resize(node_size_);
    MPI_Allgather(&world_rank, 1, MPI_INT, node_world_.data(), 1, MPI_INT, topo.node());
    set_out_reads();
  }

  ConsolidationKind kind() const override { return kind_; }
  void stage_input(std::span<const float> in) override { staged_.assign(in.begin(), in.end()); }
  std::span<const float> input() override { return {window_.at(layout_.input), input_elems_}; }
  std::span<float> output(std::size_t step) override {
    const PlanStep& s = steps_.at(step);
    return {window_.at(layout_.output[step]),
            s.action == BoundaryAction::allreduce ? s.reduce_elems : s.layout.total_elems()};
  }
  std::span<float> partial(std::size_t step) override {
    const PlanStep& s = steps_.at(step);
    if (s.action != BoundaryAction::allreduce) return {};
    return {window_.at(layout_.partial_slots[step] + static_cast<std::size_t>(node_rank_) * s.reduce_elems),
            s.reduce_elems};
  }
  std::uint64_t activation_bytes() const override {
    return window_.allocated_bytes() + bytes(staged_.size() + scratch_.size());
  }

  ConsolidationSample broadcast_input(int root) override {
    ConsolidationSample s;
    s.enter_s = clock_();
    if (rank_ == root) std::memcpy(window_.at(layout_.input), staged_.data(), bytes(staged_.size()));
    if (across_nodes_ && is_leader()) {
      // The root is world rank 0, the leader of node 0: one copy crosses to each other node's leader.
      broadcast(window_.at(layout_.input), input_elems_, 0, leader_rank_, topo_.leaders(), s);
    }
    window_.publish();
    s.exit_s = clock_();
    if (root != ledger_root_) {
      ledgers_[0] = input_reads(root);
      ledger_root_ = root;
    }
    s.read_from = ledgers_[0].from;
    s.bytes_read_in_place = ledgers_[0].total;
    return s;
  }

  ConsolidationSample finish(std::size_t step) override {
    const PlanStep& st = steps_.at(step);
    ConsolidationSample s;
    s.read_from = ledgers_[step + 1].from;
    s.bytes_read_in_place = ledgers_[step + 1].total;
    s.enter_s = clock_();
    if (st.action == BoundaryAction::exchange) {
      window_.publish();  // one node (why_unavailable): every box the next step reads is in the window already
    } else if (st.action == BoundaryAction::allgather) {
      window_.publish();
      if (across_nodes_) {
        // hierarchical: each leader contributes its node's block of the window; the others' blocks land in place.
        if (is_leader())
          allgatherv_in_place(window_.at(layout_.output[step]), leader_counts_[step], leader_displs_[step],
                              leader_rank_, topo_.leaders(), s);
        window_.publish();
      }
    } else if (st.action == BoundaryAction::allreduce) {
      window_.publish();  // every partial is in its slot
      const auto& counts = node_reduce_counts_[step];
      const auto& displs = node_reduce_displs_[step];
      const auto begin = static_cast<std::size_t>(displs[static_cast<std::size_t>(node_rank_)]);
      const auto count = static_cast<std::size_t>(counts[static_cast<std::size_t>(node_rank_)]);
      float* out = window_.at(layout_.output[step]);
      const float* slots = window_.at(layout_.partial_slots[step]);
      for (std::size_t i = begin; i < begin + count; ++i) {
        float sum = slots[i];
        for (std::size_t q = 1; q < node_size_; ++q) sum += slots[q * st.reduce_elems + i];
        out[i] = sum;
      }
      window_.publish();
      if (across_nodes_) {
        // hierarchical: the node sums are reduced across the leaders (reduce-scatter + allgather) into the window.
        if (is_leader()) {
          std::copy(out, out + st.reduce_elems, scratch_.begin());
          reduce_scatter_allgather(scratch_.data(), out, leader_counts_[step], leader_displs_[step], leader_rank_,
                                   topo_.leaders(), s);
        }
        window_.publish();
      }
    }
    s.exit_s = clock_();
    return s;
  }

 private:
  static std::size_t comm_size(MPI_Comm c) {
    int n = 0;
    MPI_Comm_size(c, &n);
    return static_cast<std::size_t>(n);
  }
  bool is_leader() const { return node_rank_ == 0; }

  // What this rank's part of step s loads of its input: needed_boxes, or nothing when the part is empty (more ranks
  // than channels, rows or images: its kernel runs over no output). After the last step (s = steps): the whole
  // output, which every rank reads to hash its copy.
  std::vector<Box> step_reads(std::size_t s) const {
    const auto me = static_cast<std::size_t>(rank_);
    if (s == steps_.size()) return steps_.back().wanted[me];
    return steps_[s].own[me].empty() ? std::vector<Box>{} : steps_[s].needed[me];
  }
  ReadLedger empty_ledger() const {
    return ReadLedger{std::vector<std::uint64_t>(topo_.map().node_of_rank.size(), 0), 0};
  }

  // Stage 0: one rank per node stores the batch in the window (the root on its node; elsewhere the leader, into
  // whose window the broadcast between leaders lands), and step 0 reads its part of it.
  ReadLedger input_reads(int root) const {
    const std::vector<int>& node_of = topo_.map().node_of_rank;
    const bool roots_node = node_of[static_cast<std::size_t>(root)] == node_of[static_cast<std::size_t>(rank_)];
    const int writer = roots_node ? root : node_world_.front();
    ReadLedger ledger = empty_ledger();
    if (writer == rank_) return ledger;
    for (const Box& b : step_reads(0)) {
      ledger.from[static_cast<std::size_t>(writer)] += bytes(b.volume());
      ledger.total += bytes(b.volume());
    }
    return ledger;
  }

  // Stage s + 1, the boundary of step s: who stored which part of its output in this node's window, what the
  // boundary itself loads of others' parts, and what step s + 1 reads.
  void set_out_reads() {
    ledgers_.assign(steps_.size() + 1, empty_ledger());
    ledgers_[0] = input_reads(ledger_root_);
    const std::vector<int>& node_of = topo_.map().node_of_rank;
    const int my_node = node_of[static_cast<std::size_t>(rank_)], leader = node_world_.front();
    for (std::size_t s = 0; s < steps_.size(); ++s) {
      const PlanStep& st = steps_[s];
      ReadLedger& ledger = ledgers_[s + 1];
      const std::vector<Box> next = step_reads(s + 1);
      const std::vector<Box> whole = {Box{Slice{0, st.out.c}, Slice{0, st.out.h}, Slice{0, st.out.w},
                                          Slice{0, st.batch}}};
      if (st.action == BoundaryAction::allreduce) {
        // This rank sums its block over every node rank's partial sums: it loads that block of each other slot.
        const auto mine = static_cast<std::size_t>(node_reduce_counts_[s][static_cast<std::size_t>(node_rank_)]);
        for (std::size_t k = 0; k < node_size_; ++k) {
          if (static_cast<int>(k) == node_rank_) continue;
          ledger.from[static_cast<std::size_t>(node_world_[k])] += bytes(mine);
          ledger.total += bytes(mine);
        }
        std::vector<Stored> sums;  // node rank k stored the node sum of block k
        for (std::size_t k = 0; k < node_size_; ++k)
          sums.push_back(Stored{float_range_boxes(st.out, st.batch,
                                                  Slice{static_cast<std::size_t>(node_reduce_displs_[s][k]),
                                                        static_cast<std::size_t>(node_reduce_counts_[s][k])}),
                                node_world_[k]});
        if (across_nodes_) {
          // The leader loads the node sums to hand them to MPI; its reduce-scatter and allgather then store the
          // whole result, which is what the next step reads.
          if (is_leader()) add_reads(whole, sums, rank_, ledger);
          add_reads(next, {Stored{whole, leader}}, rank_, ledger);
        } else {
          add_reads(next, sums, rank_, ledger);
        }
        continue;
      }
      // Every rank stores its own boxes; hierarchical's gather between leaders stores the other nodes' boxes into
      // the leader's window.
      const bool gathered = across_nodes_ && st.action == BoundaryAction::allgather;
      std::vector<Stored> stored;
      std::vector<Box> node_block;
      for (std::size_t q = 0; q < st.own.size(); ++q) {
        if (node_of[q] == my_node) {
          stored.push_back(Stored{st.own[q], static_cast<int>(q)});
          node_block.insert(node_block.end(), st.own[q].begin(), st.own[q].end());
        } else if (gathered) {
          stored.push_back(Stored{st.own[q], leader});
        }
      }
      if (gathered && is_leader()) add_reads(node_block, stored, rank_, ledger);  // handed to MPI from the window
      add_reads(next, stored, rank_, ledger);
    }
  }

  std::size_t max_reduce_elems() const {
    std::size_t m = 0;
    for (const PlanStep& s : steps_) m = std::max(m, s.reduce_elems);
    return m;
  }

  ConsolidationKind kind_;
  const Topology& topo_;
  double (*clock_)();
  std::vector<PlanStep> steps_;
  std::size_t node_size_;
  bool across_nodes_;  // hierarchical with more than one node: leaders exchange (every rank must know, to publish)
  WindowLayout layout_;
  NodeWindow window_;
  std::size_t input_elems_;
  int rank_ = 0, node_rank_ = 0, leader_rank_ = 0, leader_count_ = 0;
  std::vector<float> staged_, scratch_;
  std::vector<std::vector<int>> node_reduce_counts_, node_reduce_displs_, leader_counts_, leader_displs_;
  std::vector<int> node_world_;    // [node rank] world rank
  std::vector<ReadLedger> ledgers_;  // [stage] this rank's reads in place
  int ledger_root_ = 0;            // the input root ledgers_[0] was set out for
};

}  // namespace

namespace {

// What a pass does to a gather's buffer before the call (outside its time): the next layer reads the whole tensor
// (read_whole), and later the kernel rewrites the rank's own block (rewrite_block, with the sum read, so that the
// reads are not optimised away: a finite sum adds 0). `stamp` changes every call so that the writes are real.
float read_whole(const std::vector<float>& buffer) {
  float sum = 0.0f;
  for (const float v : buffer) sum += v;
  return sum;
}

void rewrite_block(std::vector<float>& buffer, std::size_t first, std::size_t mine, float& stamp, float sum) {
  stamp = stamp < 1000.0f ? stamp + 1.0f : 1.0f;
  for (std::size_t i = first; i < first + mine; ++i) buffer[i] = stamp + (sum != sum ? 1.0f : 0.0f);
}

// Reads and rewrites every float of `scratch`, as a kernel streams through its input and output: what was in the
// caches before is evicted (dirty lines included, as a kernel's written output leaves them).
void stream_through(std::vector<float>& scratch) {
  for (float& v : scratch) v = v * 0.5f + 1.0f;
}

// `warmup` untimed calls, then `repetitions` calls each preceded by `before` (outside the time) and a barrier, the
// clock around the call only; rank 0 appends the slowest rank's time of each to `times`.
template <class Before, class Call>
void time_calls(MPI_Comm comm, std::size_t repetitions, std::size_t warmup, double (*clock)(), Before before,
                Call call, std::vector<double>& times) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  for (std::size_t i = 0; i < warmup; ++i) {
    before();
    call();
  }
  for (std::size_t i = 0; i < repetitions; ++i) {
    before();  // before the barrier: the timed call starts from the state it left
    MPI_Barrier(comm);
    const double t0 = clock();
    call();
    const double mine = clock() - t0;
    double slowest = 0;
    MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, comm);
    if (rank == 0) times.push_back(slowest);
  }
}

}  // namespace

CollectiveTimings time_collectives(MPI_Comm comm, const std::vector<std::uint64_t>& sizes,
                                   std::size_t repetitions, std::size_t warmup, double (*clock)(),
                                   const std::vector<InPassGather>& in_pass) {
  int rank = 0, P = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);
  const auto me = static_cast<std::size_t>(rank);
  CollectiveTimings t;
  // allgatherv_fresh is the same Allgatherv with, before every call, each rank reading the whole tensor (as the next
  // layer of a pass does) and rewriting its own block (as its kernel does): a pass gathers data just written by
  // another core, and on a shared-memory node that costs up to twice the gather of warm, unchanged buffers (cache
  // lines move between the cores' caches). The model fits it when present (analysis/model.py).
  t.collectives = {"allgatherv", "allreduce", "bcast", "allgatherv_fresh"};
  t.bytes = sizes;
  t.repetitions = repetitions;
  for (std::size_t k = 0; k < t.collectives.size(); ++k) {
    for (const std::uint64_t n_bytes : sizes) {
      const std::size_t n = n_bytes / sizeof(float);
      std::vector<float> buffer(n, 1.0f), result(n);
      std::vector<int> counts, displs;
      reduce_blocks(n, static_cast<std::size_t>(P), counts, displs);
      const bool fresh = t.collectives[k] == "allgatherv_fresh";
      float stamp = 1.0f;
      auto before = [&] {
        if (fresh)
          rewrite_block(buffer, static_cast<std::size_t>(displs[me]), static_cast<std::size_t>(counts[me]), stamp,
                        read_whole(buffer));
      };
      auto call = [&] {
        if (k == 0 || fresh)
          MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer.data(), counts.data(), displs.data(), MPI_FLOAT,
                         comm);
        else if (k == 1)
          MPI_Allreduce(buffer.data(), result.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm);
        else
          MPI_Bcast(buffer.data(), static_cast<int>(n), MPI_FLOAT, 0, comm);
      };
      time_calls(comm, repetitions, warmup, clock, before, call, t.time_s);
    }
  }
  for (const InPassGather& g : in_pass) {
    CollectiveTimings::InPass entry;
    entry.layers = g.layers;
    entry.bytes = g.bytes;
    // The run's own blocks (its plan's slices), not an even split: the call is the boundary's.
    std::vector<float> buffer(g.bytes / sizeof(float), 1.0f), scratch(g.evicted_bytes / sizeof(float), 1.0f);
    float stamp = 1.0f;
    auto before = [&] {
      const float sum = read_whole(buffer);
      stream_through(scratch);
      rewrite_block(buffer, static_cast<std::size_t>(g.displs[me]), static_cast<std::size_t>(g.counts[me]), stamp,
                    sum);
    };
    auto call = [&] {
      MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer.data(), g.counts.data(), g.displs.data(), MPI_FLOAT,
                     comm);
    };
    time_calls(comm, repetitions, warmup, clock, before, call, entry.time_s);
    // Every rank streams its own bytes; rank 0 records them all.
    entry.evicted_bytes.resize(static_cast<std::size_t>(P));
    std::uint64_t evicted = g.evicted_bytes;
    MPI_Gather(&evicted, 1, MPI_UINT64_T, entry.evicted_bytes.data(), 1, MPI_UINT64_T, 0, comm);
    t.in_pass.push_back(std::move(entry));
  }
  if (rank != 0) return {};
  return t;
}

std::vector<float> collect_output(Consolidation& consolidation, std::size_t step, const PlanStep& plan_step,
                                  const Topology& topology) {
  int rank = 0, size = 1;
  MPI_Comm_rank(topology.world(), &rank);
  MPI_Comm_size(topology.world(), &size);
  const std::span<const float> mine = consolidation.output(step);
  const bool whole_everywhere = plan_step.partial() || plan_step.split == SplitKind::replicated;
  if (whole_everywhere) {
    if (rank != 0) return {};
    return std::vector<float>(mine.begin(), mine.end());
  }
  const BoundaryLayout& layout = plan_step.layout;
  const auto me = static_cast<std::size_t>(rank);
  if (!plan_step.contiguous()) {
    // Rows and sample regions are boxes: each goes to rank 0 as a subarray, in place on both sides.
    std::vector<float> whole(rank == 0 ? layout.total_elems() : 0);
    for (std::size_t q = 0; q < plan_step.own.size(); ++q) {
      if (rank != 0 && q != me) continue;  // only rank 0 and the owner take part in a box's move
      for (const Box& b : plan_step.own[q]) {
        MPI_Datatype type = box_datatype(plan_step, b);
        if (q == 0)  // rank 0's own boxes: a local copy through the same datatype
          MPI_Sendrecv(mine.data(), 1, type, 0, 0, whole.data(), 1, type, 0, 0, MPI_COMM_SELF, MPI_STATUS_IGNORE);
        else if (rank == 0)
          MPI_Recv(whole.data(), 1, type, int(q), 0, topology.world(), MPI_STATUS_IGNORE);
        else
          MPI_Send(mine.data(), 1, type, 0, 0, topology.world());
        MPI_Type_free(&type);
      }
    }
    return whole;
  }
  std::vector<float> whole(rank == 0 ? layout.total_elems() : 0);
  MPI_Gatherv(mine.data() + layout.displs[me], layout.counts[me], MPI_FLOAT, whole.data(), layout.counts.data(),
              layout.displs.data(), MPI_FLOAT, 0, topology.world());
  return whole;
}

std::unique_ptr<Consolidation> make_consolidation(ConsolidationKind kind, const Topology& topology,
                                                  std::size_t input_elems, std::vector<PlanStep> steps,
                                                  double (*clock)()) {
  if (const std::string why = why_unavailable(kind, topology.map(), steps); !why.empty())
    throw std::invalid_argument(why);
  if (kind == ConsolidationKind::allgatherv)
    return std::make_unique<AllgathervConsolidation>(topology, input_elems, std::move(steps), clock);
  return std::make_unique<WindowConsolidation>(kind, topology, input_elems, std::move(steps), clock);
}

}  // namespace cnnpar
