// Execution plans and their byte model, without MPI: the ledgers of docs/consolidation.md for every kind and plan.
#include <gtest/gtest.h>

#include "cnnpar/plan.hpp"

using namespace cnnpar;

namespace {

// Bytes rank r receives over a whole pass (every step), seed network at batch B.
std::uint64_t received(ConsolidationKind kind, PlanKind plan, std::size_t P, std::size_t r, const NodeMap& nodes,
                       std::size_t B = 1) {
  std::uint64_t total = 0;
  for (const PlanStep& s : make_plan(plan, describe(seed_network()), B, P))
    total += expected_step_bytes(kind, s, nodes, r).received;
  return total;
}

}  // namespace

TEST(Plan, PerLayerIsTheBlockSplitOfEveryLayerWithGathers) {
  const auto layers = describe(seed_network());
  const auto steps = make_plan(PlanKind::per_layer, layers, 2, 3);
  ASSERT_EQ(steps.size(), 4u);
  for (std::size_t l = 0; l < 4; ++l) {
    EXPECT_EQ(steps[l].action, BoundaryAction::allgather);
    EXPECT_FALSE(steps[l].row_partial);
    EXPECT_EQ(steps[l].layout.slices, make_boundary(layers[l].split_items, 1, 3).slices);
    EXPECT_EQ(steps[l].layout.item_elems, layers[l].item_elems_per_image * 2);
  }
  EXPECT_EQ(split_name(steps[2]), "elements");
}

TEST(Plan, FusedKeepsChannelsAndReducesTheLinearLayer) {
  const auto steps = make_plan(PlanKind::fused, describe(seed_network()), 1, 3);
  EXPECT_EQ(steps[0].action, BoundaryAction::none);
  EXPECT_EQ(steps[1].action, BoundaryAction::none);
  EXPECT_EQ(steps[2].action, BoundaryAction::none);
  // GELU follows the channel split (11/11/10 channels of 169 elements), not an even element split.
  EXPECT_EQ(steps[2].layout.slices, (std::vector<Slice>{{0, 1859}, {1859, 1859}, {3718, 1690}}));
  EXPECT_TRUE(steps[3].row_partial);
  EXPECT_EQ(steps[3].action, BoundaryAction::allreduce);
  EXPECT_EQ(steps[3].reduce_elems, 128u);
  EXPECT_EQ(steps[3].layout.slices, steps[2].layout.slices) << "row-parallel on the rank's own channels";
  EXPECT_EQ(split_name(steps[3]), "input-features");
  const auto column = make_plan(PlanKind::fused_column, describe(seed_network()), 1, 3);
  EXPECT_EQ(column[2].action, BoundaryAction::allgather);
  EXPECT_EQ(column[3].action, BoundaryAction::allgather);
  EXPECT_FALSE(column[3].row_partial);
}

TEST(Plan, ReceivedBytesOfEachPlanMatchTheDocumentedLedger) {
  const NodeMap one2 = uniform_node_map(2, 2), one4 = uniform_node_map(4, 4);
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::per_layer, 2, 0, one2), 65152u);
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::per_layer, 4, 1, one4), 97728u);
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::fused, 2, 0, one2), 512u);
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::fused, 4, 3, one4), 768u);  // 2(P-1)/P * 512
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::fused_column, 2, 0, one2), 11072u);
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::fused_column, 4, 0, one4), 16608u);
  EXPECT_EQ(received(ConsolidationKind::allgatherv, PlanKind::per_layer, 4, 1, one4) /
                received(ConsolidationKind::allgatherv, PlanKind::fused, 4, 1, one4),
            127u);
  for (PlanKind p : kAllPlans) EXPECT_EQ(received(ConsolidationKind::shared, p, 4, 2, one4), 0u);
}

TEST(Plan, HierarchicalCountsOnlyLeadersAndNodeBlocks) {
  const NodeMap two_nodes = uniform_node_map(4, 2);  // ranks 0,1 | 2,3
  EXPECT_TRUE(two_nodes.leader(0));
  EXPECT_FALSE(two_nodes.leader(1));
  EXPECT_TRUE(two_nodes.leader(2));
  // Per-layer at P = 4 over two nodes: each leader receives the other node's half of every tensor.
  EXPECT_EQ(received(ConsolidationKind::hierarchical, PlanKind::per_layer, 4, 0, two_nodes),
            (86528u + 21632u + 21632u + 512u) / 2);
  EXPECT_EQ(received(ConsolidationKind::hierarchical, PlanKind::per_layer, 4, 1, two_nodes), 0u);
  // The input crosses once per other node.
  EXPECT_EQ(expected_broadcast_bytes(ConsolidationKind::hierarchical, 3136, two_nodes, 2).received, 3136u);
  EXPECT_EQ(expected_broadcast_bytes(ConsolidationKind::hierarchical, 3136, two_nodes, 3).received, 0u);
  EXPECT_EQ(expected_broadcast_bytes(ConsolidationKind::hierarchical, 3136, two_nodes, 0).sent, 3136u);
  EXPECT_EQ(expected_broadcast_bytes(ConsolidationKind::allgatherv, 3136, two_nodes, 0).sent, 3u * 3136u);
}

TEST(Plan, WhichConsolidationsCanRunWhere) {
  EXPECT_EQ(why_unavailable(ConsolidationKind::shared, uniform_node_map(4, 4)), "");
  EXPECT_NE(why_unavailable(ConsolidationKind::shared, uniform_node_map(4, 2)).find("spans 2 nodes"),
            std::string::npos);
  NodeMap scattered{{0, 1, 0, 1}};
  EXPECT_FALSE(scattered.consecutive());
  EXPECT_NE(why_unavailable(ConsolidationKind::hierarchical, scattered).find("consecutive"), std::string::npos);
  EXPECT_EQ(why_unavailable(ConsolidationKind::allgatherv, scattered), "");
  EXPECT_EQ(parse_plan_kind("fused-column"), PlanKind::fused_column);
  EXPECT_EQ(parse_consolidation_kind("hierarchical"), ConsolidationKind::hierarchical);
  EXPECT_FALSE(parse_plan_kind("eager"));
}
