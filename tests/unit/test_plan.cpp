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
    EXPECT_FALSE(steps[l].partial());
  }
  EXPECT_EQ(steps[0].layout.slices, make_boundary(32, 1, 3).slices);
  EXPECT_EQ(steps[0].layout.item_elems, 26u * 26u * 2u);
  EXPECT_EQ(steps[2].layout.slices, make_boundary(5408, 1, 3).slices);
  EXPECT_EQ(steps[2].layout.item_elems, 2u);
  EXPECT_EQ(steps[3].layout.slices, make_boundary(128, 1, 3).slices);
  EXPECT_EQ(split_name(steps[2]), "elements");
}

TEST(Plan, BytesAStepTouchesAreItsInputReadOutputWrittenAndParameters) {
  // The seed at P = 2, B = 64, per-layer: what --calibrate's in-pass gathers stream through (the printed table).
  const auto layers = describe(seed_network());
  const std::size_t B = 64;
  const auto steps = make_plan(PlanKind::per_layer, layers, B, 2);
  const std::uint64_t conv_weights = 16u * (9u + 1u) * 4u;  // 16 filters of 3x3x1 and their biases
  // conv reads the whole input and writes its 16 channels
  EXPECT_EQ(step_touched_bytes(steps[0], 0, conv_weights),
            28u * 28u * B * 4u + 16u * 26u * 26u * B * 4u + conv_weights);
  EXPECT_EQ(step_touched_bytes(steps[0], 0, conv_weights), 2'970'240u);
  // pool reads its 16 channels of the conv output and writes them pooled
  EXPECT_EQ(step_touched_bytes(steps[1], 1, 0), 16u * 26u * 26u * B * 4u + 16u * 13u * 13u * B * 4u);
  EXPECT_EQ(step_touched_bytes(steps[1], 1, 0), 3'461'120u);
  // GELU (by element) reads and writes its 2,704 elements of every image
  EXPECT_EQ(step_touched_bytes(steps[2], 0, 0), 2u * 2704u * B * 4u);
  // fc (by feature) reads every input feature; its parameters are what the rank holds
  EXPECT_EQ(step_touched_bytes(steps[3], 0, 7), 5408u * B * 4u + 64u * B * 4u + 7u);
  // uneven: conv's 32 channels over 3 ranks are 11, 11, 10
  const auto three = make_plan(PlanKind::per_layer, layers, 1, 3);
  EXPECT_EQ(step_touched_bytes(three[0], 2, 0), 28u * 28u * 4u + 10u * 26u * 26u * 4u);
}

TEST(Plan, FusedKeepsChannelsAndReducesTheLinearLayer) {
  const auto steps = make_plan(PlanKind::fused, describe(seed_network()), 1, 3);
  EXPECT_EQ(steps[0].action, BoundaryAction::none);
  EXPECT_EQ(steps[1].action, BoundaryAction::none);
  EXPECT_EQ(steps[2].action, BoundaryAction::none);
  // GELU follows the channel split (11/11/10 channels of 169 elements), not an even element split.
  EXPECT_EQ(steps[2].split, SplitKind::channel);
  EXPECT_EQ(steps[2].layout.slices, (std::vector<Slice>{{0, 11}, {11, 11}, {22, 10}}));
  EXPECT_EQ(output_elements(steps[2], 2), 1690u);  // 10 channels of 13 x 13
  EXPECT_TRUE(steps[3].partial());
  EXPECT_EQ(steps[3].action, BoundaryAction::allreduce);
  EXPECT_EQ(steps[3].reduce_elems, 128u);
  EXPECT_EQ(steps[3].layout.slices, (std::vector<Slice>{{0, 1859}, {1859, 1859}, {3718, 1690}}))
      << "row-parallel on the rank's own channels";
  EXPECT_EQ(split_name(steps[3]), "input-features");
  const auto column = make_plan(PlanKind::fused_column, describe(seed_network()), 1, 3);
  EXPECT_EQ(column[2].action, BoundaryAction::allgather);
  EXPECT_EQ(column[3].action, BoundaryAction::allgather);
  EXPECT_FALSE(column[3].partial());
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

namespace {

std::vector<std::string> describe_plan(const std::vector<PlanStep>& steps) {
  std::vector<std::string> out;
  for (const PlanStep& s : steps) out.push_back(std::string(to_string(s.split)) + "/" + std::string(to_string(s.action)));
  return out;
}

}  // namespace

TEST(Plan, LettersFusedPairsLinearLayersAsMegatronDoes) {
  const auto layers = describe(letters_network());
  const std::vector<std::string> want = {
      "channel/none",       "channel/none",      "channel/allgather",  // conv2 needs every channel of gelu1
      "channel/none",       "channel/none",      "channel/allgather",  // conv3 likewise
      "channel/none",       "channel/none",      "channel/none",       // fc1 reads the rank's own channels
      "input-feature/allreduce",                                       // fc1 row-parallel: one reduction
      "replicated/none",                                               // gelu4 on the whole reduced vector
      "feature/none",       "channel/none",                            // fc2 column-parallel, gelu5 on its features
      "input-feature/allreduce",                                       // fc3 row-parallel: the pair's one reduction
      "replicated/none"};                                              // logsoftmax everywhere, nothing to gather
  EXPECT_EQ(describe_plan(make_plan(PlanKind::fused, layers, 4, 3)), want);
  for (const PlanStep& s : make_plan(PlanKind::fused_column, layers, 4, 3)) EXPECT_FALSE(s.partial());
  const auto column = make_plan(PlanKind::fused_column, layers, 4, 3);
  EXPECT_EQ(column[13].action, BoundaryAction::allgather) << "LogSoftmax reads every logit";
  EXPECT_EQ(column[14].split, SplitKind::replicated);
  const auto per_layer = make_plan(PlanKind::per_layer, layers, 4, 3);
  EXPECT_EQ(per_layer[14].split, SplitKind::feature);
  for (const PlanStep& s : per_layer) EXPECT_EQ(s.action, BoundaryAction::allgather);
}

TEST(Plan, MoreRanksThanTheNarrowestSplitLeavesEmptySlices) {
  const auto layers = describe(letters_network());
  const auto steps = make_plan(PlanKind::per_layer, layers, 1, 33);  // 26 logits over 33 ranks
  EXPECT_EQ(steps[13].layout.slices[32].count, 0u);
  EXPECT_EQ(output_elements(steps[13], 30), 0u);
}

TEST(Plan, SplitChoicesOverrideThePlanPerLayerOrKind) {
  EXPECT_EQ(parse_split_choices("conv=channel,gelu=element,fc=feature"),
            (std::vector<SplitChoice>{{"conv", SplitKind::channel}, {"gelu", SplitKind::element},
                                      {"fc", SplitKind::feature}}));
  EXPECT_THROW(parse_split_choices("conv"), std::invalid_argument);
  EXPECT_THROW(parse_split_choices("conv=diagonal"), std::invalid_argument);
  EXPECT_THROW(parse_split_choices("conv=channel,"), std::invalid_argument);
  const auto layers = describe(letters_network());
  // A kind applies to every layer of it; a name wins over a kind.
  const auto steps = make_plan(PlanKind::per_layer, layers, 1, 2,
                               parse_split_choices("gelu=replicated,gelu2=channel,fc3=input-feature"));
  EXPECT_EQ(steps[2].split, SplitKind::replicated);
  EXPECT_EQ(steps[2].action, BoundaryAction::none);
  EXPECT_EQ(steps[5].split, SplitKind::channel);
  EXPECT_EQ(steps[13].split, SplitKind::input_feature);
  EXPECT_EQ(steps[13].action, BoundaryAction::allreduce);
  try {
    make_plan(PlanKind::per_layer, layers, 1, 2, parse_split_choices("conv2=element"));
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer conv2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("it allows channel, rows, sample, tiles, rows-channel, sample-channel, replicated"), std::string::npos) << e.what();
  }
  try {
    make_plan(PlanKind::per_layer, describe(seed_network()), 1, 2, parse_split_choices("conv9=channel"));
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no layer of this network (conv, pool, gelu, fc)"), std::string::npos)
        << e.what();
  }
}

TEST(Plan, RowsStepsExchangeExactlyTheirHalo) {
  // Seed conv by rows at P = 3 over 26 output rows (9, 9, 8): a conv reads K - 1 = 2 more input rows than it has
  // outputs; pool by rows (13 rows: 5, 4, 4) reads rows [2*h0, 2*h1) of the conv output.
  const auto layers = describe(seed_network());
  const std::size_t B = 2, P = 3;
  const auto steps = make_plan(PlanKind::per_layer, layers, B, P, parse_split_choices("conv=rows,pool=rows,gelu=rows"));
  EXPECT_EQ(needed_boxes(layers[0], steps[0], 1), (std::vector<Box>{{{0, 1}, {9, 11}, {0, 28}, {0, 2}}}));
  EXPECT_EQ(needed_boxes(layers[1], steps[1], 1), (std::vector<Box>{{{0, 32}, {10, 8}, {0, 26}, {0, 2}}}));
  // conv owns rows 0-8 | 9-17 | 18-25, pool on rank 1 needs conv rows 10-17: held. Rank 0 needs 0-9: row 9 comes
  // from rank 1, one row of every channel: 32 x 26 x 4 B x B.
  EXPECT_EQ(steps[0].action, BoundaryAction::exchange);
  EXPECT_EQ(exchange_boxes(steps[0], 1, 0), (std::vector<Box>{{{0, 32}, {9, 1}, {0, 26}, {0, 2}}}));
  EXPECT_TRUE(exchange_boxes(steps[0], 0, 1).empty());
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::allgatherv, steps[0], uniform_node_map(P, P), 0).received,
            32u * 26u * 4u * B);
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::shared, steps[0], uniform_node_map(P, P), 0).received, 0u);
  // pool and GELU share the rows: nothing moves between them; the linear layer needs everything: rows are gathered.
  EXPECT_EQ(steps[1].action, BoundaryAction::none);
  EXPECT_EQ(steps[2].action, BoundaryAction::exchange);
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::allgatherv, steps[2], uniform_node_map(P, P), 2).received,
            (13u - 4u) * 13u * 32u * 4u * B);
}

TEST(Plan, SampleStepsMoveNothingUntilTheEndAndAllowMoreRanksThanImages) {
  const auto layers = describe(letters_network());
  std::string all;
  for (const LayerInfo& li : layers) all += (all.empty() ? "" : ",") + li.name + "=sample";
  const std::size_t B = 3, P = 5;  // two ranks without an image
  const auto steps = make_plan(PlanKind::per_layer, layers, B, P, parse_split_choices(all));
  for (std::size_t s = 0; s + 1 < steps.size(); ++s) EXPECT_EQ(steps[s].action, BoundaryAction::none) << s;
  EXPECT_EQ(steps.back().action, BoundaryAction::exchange) << "every rank ends with every image's output";
  EXPECT_TRUE(steps[0].own[4].empty());
  EXPECT_EQ(step_ops(layers[0], steps[0], 4, B), 0u);
  EXPECT_EQ(step_ops(layers[0], steps[0], 0, B), layer_ops(layers[0], 1));
  EXPECT_EQ(weight_rows(layers[3], steps[3], 2), (Slice{0, 64})) << "whole weights on every rank";
  const NodeMap one = uniform_node_map(P, P);
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::allgatherv, steps.back(), one, 0).received, 2u * 26u * 4u);
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::allgatherv, steps.back(), one, 0).sent, 4u * 26u * 4u);
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::allgatherv, steps.back(), one, 4).sent, 0u);
}

TEST(Plan, RowsWithMoreRanksThanRowsAndUnalignedPooling) {
  // 3x3 pooling with stride 2 on 26 rows: 12 output rows whose windows overlap, at P = 30 (empty blocks).
  const NetworkSpec net{"odd", Shape{1, 28, 28}, {Conv2dSpec{4, 3, 1}, MaxPool2dSpec{3, 2}, LinearSpec{5}}};
  const auto layers = describe(net);
  const auto steps = make_plan(PlanKind::per_layer, layers, 1, 30, parse_split_choices("conv=rows,pool=rows"));
  EXPECT_EQ(layers[1].out.h, 12u);
  EXPECT_TRUE(needed_boxes(layers[1], steps[1], 20).empty());
  // Pool row 3 (rank 3) reads conv rows 6-8, which ranks 6, 7 and 8 own (one conv row each; rank 3 holds row 3).
  EXPECT_EQ(needed_boxes(layers[1], steps[1], 3).front().h, (Slice{6, 3}));
  std::uint64_t received = 0;
  for (std::size_t q = 0; q < 30; ++q) received += exchange_boxes(steps[0], q, 3).size();
  EXPECT_EQ(received, 3u) << "rows 6, 7 and 8 from their owners";
}

TEST(Plan, TilesOnAGridExchangeHalosOnBothAxesCornersIncluded) {
  const auto layers = describe(seed_network());
  const std::size_t B = 2;
  const auto steps = make_plan(PlanKind::per_layer, layers, B, 4, parse_split_choices("conv=tiles,pool=tiles,gelu=tiles"),
                               Grid{2, 2});
  ASSERT_EQ(steps[0].grid_rows, 2u);
  // Conv tile 0 owns rows 0-12 x cols 0-12; pool tile 0 (rows 0-6 x cols 0-6) reads conv rows 0-13 x cols 0-13:
  // row 13 from tile 2, column 13 from tile 1, the corner (13, 13) from tile 3.
  EXPECT_EQ(steps[0].own[0], (std::vector<Box>{{{0, 32}, {0, 13}, {0, 13}, {0, 2}}}));
  EXPECT_EQ(exchange_boxes(steps[0], 1, 0), (std::vector<Box>{{{0, 32}, {0, 13}, {13, 1}, {0, 2}}}));
  EXPECT_EQ(exchange_boxes(steps[0], 2, 0), (std::vector<Box>{{{0, 32}, {13, 1}, {0, 13}, {0, 2}}}));
  EXPECT_EQ(exchange_boxes(steps[0], 3, 0), (std::vector<Box>{{{0, 32}, {13, 1}, {13, 1}, {0, 2}}}));
  EXPECT_EQ(expected_step_bytes(ConsolidationKind::allgatherv, steps[0], uniform_node_map(4, 4), 0).received,
            32u * (13u + 13u + 1u) * 4u * B);
  EXPECT_EQ(steps[1].action, BoundaryAction::none) << "pool and GELU tiles coincide";
}

TEST(Plan, TwoDimensionalGridsSplitChannelsAndWeights) {
  const auto layers = describe(seed_network());
  const auto steps = make_plan(PlanKind::per_layer, layers, 6, 6,
                               parse_split_choices("conv=sample-channel,pool=sample-channel,gelu=sample-channel,"
                                                   "fc=sample-channel"),
                               Grid{2, 3});
  // Rank 4 sits at (1, 1): images 3-5, conv channels 11-21 (32 over 3: 11, 11, 10), fc features 43-85.
  EXPECT_EQ(steps[0].own[4], (std::vector<Box>{{{11, 11}, {0, 26}, {0, 26}, {3, 3}}}));
  EXPECT_EQ(weight_rows(layers[0], steps[0], 4), (Slice{11, 11}));
  EXPECT_EQ(weight_rows(layers[3], steps[3], 4), (Slice{43, 43}));
  EXPECT_EQ(steps[0].action, BoundaryAction::none) << "pool reads the same channels and images";
  EXPECT_EQ(steps[2].action, BoundaryAction::exchange) << "the linear layer reads every channel of its images";
  EXPECT_EQ(parse_grid("2x3").cols, 3u);
  EXPECT_THROW(parse_grid("2x"), std::invalid_argument);
  EXPECT_THROW(parse_grid("0x4"), std::invalid_argument);
  EXPECT_THROW(grid_for(Grid{2, 2}, 6), std::invalid_argument);
  EXPECT_EQ(grid_for(Grid{}, 6).rows, 2u);
  EXPECT_EQ(grid_for(Grid{}, 7).rows, 1u);
  EXPECT_EQ(grid_for(Grid{}, 16).cols, 4u);
}

// Halo ranges against brute force: for many image heights, kernels, strides and rank counts (more ranks than rows
// included), the input rows a rows step reads are the hull of its output rows' windows (exactly their union when
// K >= S; with K < S the rows a stride skips inside the hull travel too, so the needed input stays one box), and the
// rows it receives are those minus the rows its predecessor's block already holds.
TEST(Plan, HaloRangesEqualBruteForceOverManySizes) {
  for (std::size_t H : {5u, 9u, 16u, 28u})
    for (std::size_t K : {1u, 2u, 3u, 5u})
      for (std::size_t S : {1u, 2u, 3u}) {
        if (K > H) continue;
        const NetworkSpec net{"sweep", Shape{2, H, 7}, {MaxPool2dSpec{1, 1}, Conv2dSpec{3, K, S}, LinearSpec{2}}};
        const auto layers = describe(net);
        for (std::size_t P : {1u, 2u, 3u, 4u, 7u, 40u}) {
          const auto steps = make_plan(PlanKind::per_layer, layers, 1, P, parse_split_choices("pool=rows,conv=rows"));
          for (std::size_t r = 0; r < P; ++r) {
            const Slice out = steps[1].layout.slices[r];
            std::vector<bool> read(H, false);
            for (std::size_t o = out.begin; o < out.end(); ++o)
              for (std::size_t k = 0; k < K; ++k) read[o * S + k] = true;
            if (!out.empty())  // the hull
              for (std::size_t h = out.begin * S; h < (out.end() - 1) * S + K; ++h) read[h] = true;
            const auto need = needed_boxes(layers[1], steps[1], r);
            std::vector<bool> got(H, false);
            for (const Box& b : need)
              for (std::size_t h = b.h.begin; h < b.h.end(); ++h) got[h] = true;
            ASSERT_EQ(got, read) << "H=" << H << " K=" << K << " S=" << S << " P=" << P << " r=" << r;
            // Received rows = needed rows outside the pool block this rank owns.
            std::size_t halo_rows = 0;
            const Slice mine = steps[0].layout.slices[r];
            for (std::size_t h = 0; h < H; ++h) halo_rows += read[h] && !(h >= mine.begin && h < mine.end());
            std::size_t received = 0;
            for (std::size_t q = 0; q < P; ++q)
              for (const Box& b : exchange_boxes(steps[0], q, r)) received += b.volume();
            const std::size_t cols_read = (layers[1].out.w - 1) * S + K;  // a stride may leave the last columns unread
            ASSERT_EQ(received, halo_rows * 2 * cols_read) << "H=" << H << " K=" << K << " S=" << S << " P=" << P;
          }
        }
      }
}

TEST(Plan, TwoDimensionalBlocksCoverEveryOutputOnceForManyGrids) {
  const auto layers = describe(seed_network(20, 17, 5, 3));
  for (std::size_t P : {1u, 2u, 3u, 4u, 6u, 9u, 12u, 30u})
    for (const SplitKind k : {SplitKind::tiles, SplitKind::rows_channel, SplitKind::sample_channel}) {
      const std::size_t B = 4;
      const PlanStep st = make_plan(PlanKind::per_layer, layers, B, P, {SplitChoice{"conv", k}})[0];
      EXPECT_EQ(st.grid_rows * st.grid_cols, P);
      std::vector<int> hits(layers[0].out.elements() * B, 0);
      for (std::size_t r = 0; r < P; ++r)
        for (const Box& b : st.own[r])
          for (std::size_t c = b.c.begin; c < b.c.end(); ++c)
            for (std::size_t h = b.h.begin; h < b.h.end(); ++h)
              for (std::size_t w = b.w.begin; w < b.w.end(); ++w)
                for (std::size_t i = b.b.begin; i < b.b.end(); ++i)
                  ++hits[((c * layers[0].out.h + h) * layers[0].out.w + w) * B + i];
      for (const int h : hits) ASSERT_EQ(h, 1) << to_string(k) << " P=" << P;
    }
}

TEST(Plan, ConvAndMaxPoolFuseOnlyWhenNothingMovesBetweenThemAndEachRankPoolsItsOwnChannels) {
  const auto seed = describe(seed_network());
  const auto fuses = [](const std::vector<LayerInfo>& layers, PlanKind plan, std::size_t P, const std::string& splits) {
    const auto steps = make_plan(plan, layers, 4, P, splits.empty() ? std::vector<SplitChoice>{}
                                                                    : parse_split_choices(splits));
    std::vector<bool> out;
    for (std::size_t s = 0; s < steps.size(); ++s) out.push_back(fuses_with_next(layers, steps, s));
    return out;
  };
  // conv fuses with pool, and pool with GELU (the chain conv + pool + GELU); the linear layer never.
  const std::vector<bool> chain{true, true, false, false}, conv_pool{true, false, false, false}, none(4, false);
  EXPECT_EQ(fuses(seed, PlanKind::per_layer, 1, ""), chain);        // one rank: the gathers move nothing
  EXPECT_EQ(fuses(seed, PlanKind::per_layer, 2, ""), none);         // the seed gathers the conv output
  EXPECT_EQ(fuses(seed, PlanKind::fused, 3, ""), chain);            // channels stay on their rank
  EXPECT_EQ(fuses(seed, PlanKind::fused_column, 33, ""), chain);    // empty slices too
  EXPECT_EQ(fuses(seed, PlanKind::per_layer, 1, "conv=replicated"), chain);
  EXPECT_EQ(fuses(seed, PlanKind::fused, 2, "conv=replicated"), none);  // pool by channel reads a replicated conv
  EXPECT_EQ(fuses(seed, PlanKind::fused, 2, "conv=replicated,pool=replicated"), conv_pool);  // GELU by channel
  EXPECT_EQ(fuses(seed, PlanKind::fused, 2, "conv=replicated,pool=replicated,gelu=replicated"), chain);
  EXPECT_EQ(fuses(seed, PlanKind::fused, 2, "gelu=element"), conv_pool);  // element slices are not the channels
  EXPECT_EQ(fuses(seed, PlanKind::per_layer, 1, "gelu=rows"), conv_pool);  // a box GELU
  EXPECT_EQ(fuses(seed, PlanKind::per_layer, 1, "conv=rows,pool=rows"), none);  // box regions
  EXPECT_EQ(fuses(seed, PlanKind::per_layer, 2, "conv=sample,pool=sample"), none);
  // Overlapping pool windows would compute conv rows twice: not fused.
  NetworkSpec overlapping = seed_network();
  overlapping.layers[1] = MaxPool2dSpec{3, 2};
  EXPECT_EQ(fuses(describe(overlapping), PlanKind::fused, 2, ""), none);  // and so no GELU either
  // Letters: every conv with the pool after it, and each pool with its GELU.
  const auto letters = describe(letters_network());
  const auto fused_letters = fuses(letters, PlanKind::fused, 2, "");
  for (std::size_t s = 0; s < letters.size(); ++s)
    EXPECT_EQ(fused_letters[s], std::holds_alternative<Conv2dSpec>(letters[s].spec) ||
                                    std::holds_alternative<MaxPool2dSpec>(letters[s].spec))
        << letters[s].name;
}
