// Consolidation: how the slices ranks computed become whole tensors on every rank. This interface, its three
// implementations and the node topology (consolidation.cpp) are the only code that moves activations between ranks;
// the kind is chosen in one place, make_consolidation, from --consolidation.
//
// The consolidation object owns the activation buffers. At plan step s (one per layer, plan.hpp) a rank writes its
// slice of the layer's output straight into output(s) at the slice's offset (or, for a row-parallel step, its
// partial sums into partial(s)), and finish(s) performs the step's boundary action. Owning the buffers is what lets
// the shared-memory implementations hand out window memory that every rank of a node reads in place.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cnnpar/plan.hpp"
#include "cnnpar/records.hpp"

namespace cnnpar {

// Which ranks share memory. Nodes come from MPI_Comm_split_type(SHARED), optionally cut into groups of
// `ranks_per_node` consecutive node ranks so that one machine can emulate several nodes.
class Topology {
 public:
  Topology(MPI_Comm world, std::size_t ranks_per_node);  // collective over `world`
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  MPI_Comm world() const { return world_; }
  MPI_Comm node() const { return node_; }
  MPI_Comm leaders() const { return leaders_; }  // one rank per node (node rank 0); MPI_COMM_NULL elsewhere
  const NodeMap& map() const { return map_; }
  int node_index() const;  // of this rank

 private:
  MPI_Comm world_, node_ = MPI_COMM_NULL, leaders_ = MPI_COMM_NULL;
  NodeMap map_;
  int rank_ = 0;
};

// One boundary action or input broadcast as this rank saw it: entry and exit on this rank's clock (see
// records.hpp), and the bytes it handed to MPI, counted from the very counts it passed (the model they are checked
// against is expected_step_bytes in plan.hpp).
//
// Shared windows move data without MPI: a rank loads what other ranks stored in the node's window. read_from[q]
// counts the bytes of the stage's window data this rank reads in place that world rank q stored there (q on this
// rank's node; 0 for itself), and bytes_read_in_place their total, counted apart (see WindowConsolidation's ledger
// in consolidation.cpp). What is read: the boxes of the stage's tensor the next step's kernel reads on this rank
// (PlanStep::needed; nothing where its part is empty; after the last step the whole output, which every rank
// hashes), plus the boundary's own loads of other ranks' data (an allreduce summing its block of every other
// rank's partial sums; a hierarchical leader handing its node's block or node sums to MPI). Counted from the boxes
// the consolidation hands out, each element once, not measured: no hardware counters see it, and a kernel may load
// an element more than once (overlapping windows) while the caches move whole lines. allgatherv has private buffers
// only: read_from is empty and the total 0.
struct ConsolidationSample {
  double enter_s = 0, exit_s = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;
  std::span<const std::uint64_t> read_from;  // [world rank]; valid while the consolidation lives
  std::uint64_t bytes_read_in_place = 0;
};

class Consolidation {
 public:
  virtual ~Consolidation() = default;
  virtual ConsolidationKind kind() const = 0;
  // The root's input batch (C,H,W,B), kept by the root until each broadcast_input; other ranks pass nothing.
  virtual void stage_input(std::span<const float> input) = 0;
  // The input activation every rank reads, valid after broadcast_input.
  virtual std::span<const float> input() = 0;
  // Step s's whole output tensor (for an allreduce step: the reduced result).
  virtual std::span<float> output(std::size_t step) = 0;
  // Allreduce steps: this rank's partial sums, reduce_elems floats. Empty for other steps.
  virtual std::span<float> partial(std::size_t step) = 0;
  virtual ConsolidationSample broadcast_input(int root) = 0;
  // Every rank has written its part of step s; afterwards the step's action is complete on every rank.
  virtual ConsolidationSample finish(std::size_t step) = 0;
  // Bytes of activation buffers this rank allocated (a node window counts on the rank that allocated it).
  virtual std::uint64_t activation_bytes() const = 0;
};

// Where every node rank's segment of a shared window (MPI_Win_allocate_shared over `node`) is in this process:
// segments[q] = rank 0's segment start plus the offset of q's segment from it, each rank's offset measured from its
// own `mine` (the base pointer MPI_Win_allocate_shared returned) and exchanged with MPI_Allgather. Not
// MPI_Win_shared_query(q) per peer: SimGrid 3.32's returns the window's start for every q. Collective over `node`.
std::vector<char*> shared_segments(MPI_Win win, MPI_Comm node, void* mine);

// One gather boundary of the runs for --calibrate's in-pass timings (CollectiveTimings::InPass).
struct InPassGather {
  std::string layers;               // the steps since the previous boundary ("conv+pool")
  std::uint64_t bytes = 0;          // the whole tensor
  std::vector<int> counts, displs;  // [rank] floats: the boundary's blocks
  std::uint64_t evicted_bytes = 0;  // this rank's (step_touched_bytes summed since the previous boundary)
};

// --calibrate: MPI_Allgatherv (block split of n over the ranks), MPI_Allreduce (sum) and MPI_Bcast (from rank 0) of
// each size n in `bytes`, timed the way the OSU micro-benchmarks time them: `warmup` untimed calls, then
// `repetitions` calls each preceded by a barrier, the clock around the call only, and the slowest rank's time kept.
// Then every gather in `in_pass` the same way, as a pass leaves the caches: the boundary's own blocks, and before
// each call (outside its time) each rank reads the whole tensor, streams through its `evicted_bytes` and then
// rewrites its block (a kernel writes its output as it ends). Collective over `comm`; rank 0 receives the times,
// the others an empty table.
CollectiveTimings time_collectives(MPI_Comm comm, const std::vector<std::uint64_t>& bytes, std::size_t repetitions,
                                   std::size_t warmup, double (*clock)(),
                                   const std::vector<InPassGather>& in_pass = {});

// Outside the timed passes (the dump and the verification): step s's whole output on rank 0, in the activation
// layout, made of every rank's own part of output(s) (its slice; for steps whose output is whole on every rank,
// rank 0's copy), gathered with MPI_Gatherv. Collective over the topology's world; other ranks get an empty vector.
std::vector<float> collect_output(Consolidation& consolidation, std::size_t step, const PlanStep& plan_step,
                                  const Topology& topology);

// `clock` is the clock timestamps are taken with (steady_seconds). Throws std::invalid_argument with
// why_unavailable's reason if `kind` cannot run on this topology (plan.hpp).
std::unique_ptr<Consolidation> make_consolidation(ConsolidationKind kind, const Topology& topology,
                                                  std::size_t input_elems, std::vector<PlanStep> steps,
                                                  double (*clock)());

}  // namespace cnnpar
