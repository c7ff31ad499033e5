// Every consolidation kind delivers exactly what each plan step promises, with the bytes of the model: payloads are
// stamped with the sender's rank and the element's index, so every element proves where it came from. Run at several
// rank counts (ctest: 1, 2, 3, 4, 5 and 33, more ranks than channels), on one node and on emulated nodes.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "cnnpar/consolidation.hpp"
#include "cnnpar/mpi_runtime.hpp"
#include "mpi_test_env.hpp"

using namespace cnnpar;
using cnnpar::testing::runtime;

namespace {

// A value that names its sender and position exactly (both well inside float's 24-bit integer range here).
float stamp(std::size_t rank, std::size_t elem) {
  return static_cast<float>(rank % 4096) * 4096.0f + static_cast<float>(elem % 4096);
}

struct Case {
  ConsolidationKind kind;
  std::size_t ranks_per_node;  // 0: the real node
};

std::vector<Case> cases() {
  return {{ConsolidationKind::allgatherv, 0}, {ConsolidationKind::shared, 0}, {ConsolidationKind::hierarchical, 0},
          {ConsolidationKind::hierarchical, 1}, {ConsolidationKind::hierarchical, 2}};
}

std::string name(const Case& c, PlanKind plan) {
  return std::string(to_string(c.kind)) + "/" + std::string(to_string(plan)) + " ranks-per-node " +
         std::to_string(c.ranks_per_node);
}

void check_plan(const std::vector<LayerInfo>& layers, std::size_t batch) {
  const auto P = static_cast<std::size_t>(runtime->size()), me = static_cast<std::size_t>(runtime->rank());
  for (const Case& c : cases()) {
    const Topology topo(runtime->comm(), c.ranks_per_node);
    if (!why_unavailable(c.kind, topo.map()).empty()) continue;  // e.g. shared across emulated nodes
    for (PlanKind plan : kAllPlans) {
      SCOPED_TRACE(name(c, plan));
      const std::vector<PlanStep> steps = make_plan(plan, layers, batch, P);
      const std::size_t input_elems = layers[0].in.elements() * batch;
      auto cons = make_consolidation(c.kind, topo, input_elems, steps, &steady_seconds);

      std::vector<float> input(input_elems);
      for (std::size_t i = 0; i < input.size(); ++i) input[i] = float(i);
      if (me == 0) cons->stage_input(input);
      const ConsolidationSample b = cons->broadcast_input(0);
      ASSERT_TRUE(std::equal(input.begin(), input.end(), cons->input().begin()));
      const ByteCount want_b = expected_broadcast_bytes(c.kind, input_elems * 4, topo.map(), me);
      EXPECT_EQ((ByteCount{b.bytes_sent, b.bytes_received}), want_b);

      for (std::size_t s = 0; s < steps.size(); ++s) {
        const PlanStep& st = steps[s];
        SCOPED_TRACE("step " + std::to_string(s) + " " + std::string(to_string(st.action)));
        const BoundaryLayout& L = st.layout;
        const auto lo = static_cast<std::size_t>(L.displs[me]), n = static_cast<std::size_t>(L.counts[me]);
        if (st.action == BoundaryAction::allreduce) {
          std::span<float> part = cons->partial(s);
          ASSERT_EQ(part.size(), st.reduce_elems);
          for (std::size_t i = 0; i < part.size(); ++i) part[i] = float(me + 1) * float(i % 7);
        } else {
          std::span<float> out = cons->output(s);
          ASSERT_EQ(out.size(), L.total_elems());
          for (std::size_t e = lo; e < lo + n; ++e) out[e] = stamp(me, e);
        }
        const ConsolidationSample got = cons->finish(s);
        EXPECT_EQ((ByteCount{got.bytes_sent, got.bytes_received}), expected_step_bytes(c.kind, st, topo.map(), me));
        EXPECT_LE(got.enter_s, got.exit_s);
        const std::span<const float> out = cons->output(s);
        if (st.action == BoundaryAction::allreduce) {
          const float ranks_sum = float(P * (P + 1) / 2);  // 1 + 2 + ... + P, exact in float
          for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], ranks_sum * float(i % 7)) << "element " << i;
        } else if (st.action == BoundaryAction::allgather) {
          for (std::size_t e = 0; e < out.size(); ++e) {
            std::size_t owner = 0;
            while (!(e >= static_cast<std::size_t>(L.displs[owner]) &&
                     e < static_cast<std::size_t>(L.displs[owner] + L.counts[owner])))
              ++owner;
            ASSERT_EQ(out[e], stamp(owner, e)) << "element " << e << " should come from rank " << owner;
          }
        } else {  // none: this rank's part is its own, untouched
          for (std::size_t e = lo; e < lo + n; ++e) ASSERT_EQ(out[e], stamp(me, e));
        }
      }
    }
  }
}

// Exchange boundaries (rows with halos, sample blocks, and the redistributions between them): every element a rank
// must hold after the boundary carries the stamp of the rank that owns it and of its position, and the bytes equal
// the model. Kinds that can run it here (hierarchical across emulated nodes cannot).
void check_exchanges(const std::vector<LayerInfo>& layers, std::size_t batch, const std::string& choices) {
  const auto P = static_cast<std::size_t>(runtime->size()), me = static_cast<std::size_t>(runtime->rank());
  const std::vector<PlanStep> steps = make_plan(PlanKind::per_layer, layers, batch, P, parse_split_choices(choices));
  for (const Case& c : cases()) {
    const Topology topo(runtime->comm(), c.ranks_per_node);
    if (!why_unavailable(c.kind, topo.map(), steps).empty()) continue;
    SCOPED_TRACE(name(c, PlanKind::per_layer) + " " + choices);
    auto cons = make_consolidation(c.kind, topo, layers[0].in.elements() * batch, steps, &steady_seconds);
    for (std::size_t s = 0; s < steps.size(); ++s) {
      const PlanStep& st = steps[s];
      if (st.action != BoundaryAction::exchange) continue;
      SCOPED_TRACE("step " + std::to_string(s));
      const Shape& o = st.out;
      auto index = [&](std::size_t ch, std::size_t h, std::size_t w, std::size_t b) {
        return ((ch * o.h + h) * o.w + w) * batch + b;
      };
      auto for_each = [&](const Box& x, auto f) {
        for (std::size_t ch = x.c.begin; ch < x.c.end(); ++ch)
          for (std::size_t h = x.h.begin; h < x.h.end(); ++h)
            for (std::size_t w = x.w.begin; w < x.w.end(); ++w)
              for (std::size_t b = x.b.begin; b < x.b.end(); ++b) f(index(ch, h, w, b));
      };
      std::span<float> out = cons->output(s);
      for (const Box& x : st.own[me]) for_each(x, [&](std::size_t e) { out[e] = stamp(me, e); });
      const ConsolidationSample got = cons->finish(s);
      EXPECT_EQ((ByteCount{got.bytes_sent, got.bytes_received}), expected_step_bytes(c.kind, st, topo.map(), me));
      for (const Box& want : st.wanted[me])
        for (std::size_t q = 0; q < P; ++q)
          for (const Box& x : st.own[q])
            for_each(intersect(x, want), [&](std::size_t e) {
              ASSERT_EQ(out[e], stamp(q, e)) << "element " << e << " should come from rank " << q;
            });
    }
  }
}

// Reads in place (ConsolidationSample::read_from): every stage's count per writer must equal a tally made here
// element by element, on other grounds than the consolidation's box intersections. Where ranks write their own boxes,
// each element they store carries their stamp, so the tally reads the window itself and names whoever stored what the
// reader loads (an element from another node names that node's rank, and counts towards this node's leader, into
// whose window the gather between leaders put it). Sums and the input have no stamp: the tally follows the rules of
// consolidation.hpp float by float (node rank k stores block k of a sum; one rank per node stores the batch).
// Where the next step reads exactly what the boundary delivers, a shared window's reads in place equal what
// allgatherv receives through MPI, its byte model: the one comparison between the model and the counts.
void check_reads(const std::vector<LayerInfo>& layers, std::size_t batch, PlanKind plan, const std::string& choices) {
  const auto P = static_cast<std::size_t>(runtime->size()), me = static_cast<std::size_t>(runtime->rank());
  const std::vector<PlanStep> steps =
      make_plan(plan, layers, batch, P, choices.empty() ? std::vector<SplitChoice>{} : parse_split_choices(choices));
  for (const Case& c : cases()) {
    const Topology topo(runtime->comm(), c.ranks_per_node);
    if (!why_unavailable(c.kind, topo.map(), steps).empty()) continue;
    SCOPED_TRACE(name(c, plan) + " " + choices);
    const std::vector<int>& node_of = topo.map().node_of_rank;
    std::vector<std::size_t> mates;  // this rank's node, by node rank
    for (std::size_t q = 0; q < P; ++q)
      if (node_of[q] == node_of[me]) mates.push_back(q);
    const std::size_t leader = mates.front(), node_rank = std::size_t(std::find(mates.begin(), mates.end(), me) -
                                                                      mates.begin());
    const bool window = c.kind != ConsolidationKind::allgatherv;
    const bool across = c.kind == ConsolidationKind::hierarchical && topo.map().nodes() > 1;
    // What a step's part on this rank reads: nothing if it computes nothing; after the last step, the whole output.
    auto reads_of = [&](std::size_t s) -> std::vector<Box> {
      if (s == steps.size()) {
        const Shape& o = steps.back().out;
        return {Box{Slice{0, o.c}, Slice{0, o.h}, Slice{0, o.w}, Slice{0, batch}}};
      }
      const LayerInfo& li = layers[steps[s].layer];
      return output_boxes(li, steps[s], me).empty() ? std::vector<Box>{} : needed_boxes(li, steps[s], me);
    };
    auto check = [&](const ConsolidationSample& got, const std::vector<std::uint64_t>& want, const std::string& what) {
      SCOPED_TRACE(what);
      std::uint64_t total = 0;
      for (std::uint64_t b : want) total += b;
      EXPECT_EQ(got.bytes_read_in_place, total);
      if (!window) {
        EXPECT_TRUE(got.read_from.empty()) << "allgatherv reads nothing in place";
        return;
      }
      ASSERT_EQ(got.read_from.size(), P);
      for (std::size_t q = 0; q < P; ++q) EXPECT_EQ(got.read_from[q], want[q]) << "bytes read of rank " << q;
    };
    auto cons = make_consolidation(c.kind, topo, layers[0].in.elements() * batch, steps, &steady_seconds);

    std::vector<float> input(layers[0].in.elements() * batch, 1.0f);
    if (me == 0) cons->stage_input(input);
    const ConsolidationSample b = cons->broadcast_input(0);
    std::vector<std::uint64_t> want(P, 0);
    const std::size_t input_writer = node_of[0] == node_of[me] ? 0 : leader;
    for (const Box& x : reads_of(0))
      if (window && input_writer != me) want[input_writer] += 4 * x.volume();
    check(b, want, "input");

    for (std::size_t s = 0; s < steps.size(); ++s) {
      const PlanStep& st = steps[s];
      const LayerInfo& li = layers[st.layer];
      const Shape& o = st.out;
      auto for_each = [&](const Box& x, auto f) {
        for (std::size_t ch = x.c.begin; ch < x.c.end(); ++ch)
          for (std::size_t h = x.h.begin; h < x.h.end(); ++h)
            for (std::size_t w = x.w.begin; w < x.w.end(); ++w)
              for (std::size_t k = x.b.begin; k < x.b.end(); ++k) f(((ch * o.h + h) * o.w + w) * batch + k);
      };
      // Replicated steps: every rank would store the same floats; here nobody does, and each rank reads only what
      // it stored itself.
      const bool replicated = st.split == SplitKind::replicated;
      if (st.action == BoundaryAction::allreduce) {
        std::span<float> part = cons->partial(s);
        std::fill(part.begin(), part.end(), 1.0f);
      } else if (!replicated) {
        std::span<float> out = cons->output(s);
        for (const Box& x : output_boxes(li, st, me)) for_each(x, [&](std::size_t e) { out[e] = stamp(me, e); });
      }
      const ConsolidationSample got = cons->finish(s);
      std::fill(want.begin(), want.end(), 0);
      const std::vector<Box> next = reads_of(s + 1);
      const std::span<const float> out = cons->output(s);
      if (!window || replicated) {
        // nothing read in place
      } else if (st.action == BoundaryAction::allreduce) {
        const std::size_t n = st.reduce_elems, m = mates.size();
        for (std::size_t k = 0; k < m; ++k)  // the block sum: this rank's block of every other partial
          if (k != node_rank) want[mates[k]] += 4 * block_slice(n, m, node_rank).count;
        if (across && me == leader)  // the node sums, handed to MPI
          for (std::size_t k = 1; k < m; ++k) want[mates[k]] += 4 * block_slice(n, m, k).count;
        for (const Box& x : next)
          for_each(x, [&](std::size_t f) {
            const std::size_t writer = across ? leader : mates[block_owner(n, m, f)];
            if (writer != me) want[writer] += 4;
          });
      } else {
        if (across && me == leader && st.action == BoundaryAction::allgather)  // the node's block, handed to MPI
          for (std::size_t q : mates)
            if (q != me)
              for (const Box& x : output_boxes(li, st, q)) want[q] += 4 * x.volume();
        for (const Box& x : next)
          for_each(x, [&](std::size_t e) {
            ASSERT_TRUE(out[e] >= 0.0f && out[e] < 4096.0f * float(P)) << "element " << e << " was never stored";
            const auto q = static_cast<std::size_t>(out[e] / 4096.0f);
            ASSERT_EQ(out[e], stamp(q, e)) << "element " << e << " was never stored";
            const std::size_t writer = node_of[q] == node_of[me] ? q : leader;
            if (writer != me) want[writer] += 4;
          });
      }
      check(got, want, "step " + std::to_string(s) + " " + std::string(to_string(st.action)));

      // The model: where the boundary delivers exactly what the next step reads (a gather or a sum: the whole
      // tensor; an exchange: the boxes wanted), a window reads in place what allgatherv receives.
      const std::vector<Box> whole = {Box{Slice{0, o.c}, Slice{0, o.h}, Slice{0, o.w}, Slice{0, batch}}};
      const bool delivers_reads = st.action == BoundaryAction::none || s + 1 == steps.size() ||
                                  next == (st.action == BoundaryAction::exchange ? st.wanted[me] : whole);
      if (c.kind == ConsolidationKind::shared && delivers_reads && !replicated) {
        EXPECT_EQ(got.bytes_read_in_place,
                  expected_step_bytes(ConsolidationKind::allgatherv, st, topo.map(), me).received)
            << "step " << s;
      }
    }
  }
}

}  // namespace

TEST(Consolidation, ReadsInPlaceAreWhatTheNextStepReadsOfOthersData) {
  const auto seed = describe(seed_network());
  for (PlanKind plan : kAllPlans) check_reads(seed, 1, plan, "");
  check_reads(seed, 2, PlanKind::per_layer, "conv=rows,pool=rows,gelu=rows");  // halos only
  check_reads(seed, 3, PlanKind::per_layer, "conv=tiles,pool=tiles,gelu=sample");
  check_reads(describe(letters_network()), 3, PlanKind::fused, "gelu4=sample");  // a sum read in boxes of images
  const auto odd = describe(seed_network(28, 28, 7, 5, GeluForm::tanh, 3, 2));
  for (PlanKind plan : kAllPlans) check_reads(odd, 3, plan, "");
}

TEST(Consolidation, RowHalosAndSampleBlocksArriveFromTheirOwners) {
  const auto seed = describe(seed_network());
  check_exchanges(seed, 2, "conv=rows,pool=rows,gelu=rows");
  check_exchanges(seed, 3, "conv=sample,pool=sample,gelu=sample,fc=sample");
  check_exchanges(seed, 2, "conv=rows,pool=channel,gelu=rows");  // rows -> channels -> rows
  check_exchanges(seed, 5, "conv=sample,pool=rows,gelu=sample");
  check_exchanges(seed, 2, "conv=tiles,pool=tiles,gelu=tiles");  // halos on both axes, corners included
  check_exchanges(seed, 3, "conv=rows-channel,pool=rows-channel,gelu=sample-channel,fc=sample-channel");
  check_exchanges(seed, 4, "conv=tiles,pool=rows,gelu=sample-channel");
  // Overlapping pooling windows (3x3, stride 2): halos between pool row blocks as well.
  check_exchanges(describe(NetworkSpec{"odd", Shape{1, 20, 9}, {Conv2dSpec{3, 3, 1}, MaxPool2dSpec{3, 2},
                                                              GeluSpec{}, LinearSpec{4}}}),
                  2, "conv=rows,pool=rows,gelu=rows");
}

TEST(Consolidation, EveryKindAndPlanSeedNetwork) { check_plan(describe(seed_network()), 1); }

TEST(Consolidation, EveryKindAndPlanBatchedOddNetwork) {
  check_plan(describe(seed_network(28, 28, 7, 5, GeluForm::tanh, 3, 2)), 3);
}

TEST(Consolidation, TopologyEmulatesNodesOfConsecutiveRanks) {
  const auto P = static_cast<std::size_t>(runtime->size());
  for (std::size_t k : {1u, 2u, 3u}) {
    const Topology topo(runtime->comm(), k);
    EXPECT_EQ(topo.map().node_of_rank, uniform_node_map(P, k).node_of_rank) << "ranks per node " << k;
    EXPECT_TRUE(topo.map().consecutive());
  }
  const Topology real(runtime->comm(), 0);
  EXPECT_EQ(real.map().nodes(), 1) << "ctest runs every rank on this machine";
}
