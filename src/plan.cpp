// Execution plans and their byte model (see plan.hpp).
#include "cnnpar/plan.hpp"

#include <stdexcept>

namespace cnnpar {

std::string_view to_string(ConsolidationKind kind) {
  switch (kind) {
    case ConsolidationKind::allgatherv: return "allgatherv";
    case ConsolidationKind::shared: return "shared";
    case ConsolidationKind::hierarchical: return "hierarchical";
  }
  return "unknown";
}

std::string_view to_string(PlanKind kind) {
  switch (kind) {
    case PlanKind::per_layer: return "per-layer";
    case PlanKind::fused: return "fused";
    case PlanKind::fused_column: return "fused-column";
  }
  return "unknown";
}

std::string_view to_string(BoundaryAction action) {
  switch (action) {
    case BoundaryAction::none: return "none";
    case BoundaryAction::allgather: return "allgather";
    case BoundaryAction::allreduce: return "allreduce";
  }
  return "unknown";
}

std::string_view split_name(const PlanStep& step) {
  if (step.row_partial) return "input-features";
  switch (step.split) {
    case SplitKind::channels: return "channels";
    case SplitKind::elements: return "elements";
    case SplitKind::features: return "features";
  }
  return "unknown";
}

std::optional<ConsolidationKind> parse_consolidation_kind(std::string_view name) {
  for (ConsolidationKind k : kAllConsolidations)
    if (to_string(k) == name) return k;
  return std::nullopt;
}

std::optional<PlanKind> parse_plan_kind(std::string_view name) {
  for (PlanKind k : kAllPlans)
    if (to_string(k) == name) return k;
  return std::nullopt;
}

namespace {

// A layout over explicit slices (items may be split in any contiguous way, e.g. channel-aligned element ranges).
BoundaryLayout layout_from_slices(std::size_t items, std::size_t item_elems, std::vector<Slice> slices) {
  BoundaryLayout b = make_boundary(items, item_elems, slices.size());
  b.slices = std::move(slices);
  for (std::size_t r = 0; r < b.slices.size(); ++r) {
    b.counts[r] = static_cast<int>(b.slices[r].count * item_elems);
    b.displs[r] = static_cast<int>(b.slices[r].begin * item_elems);
  }
  return b;
}

}  // namespace

std::vector<PlanStep> make_plan(PlanKind plan, const std::vector<LayerInfo>& layers, std::size_t batch,
                                std::size_t ranks) {
  std::vector<PlanStep> steps;
  if (plan == PlanKind::per_layer) {
    for (std::size_t l = 0; l < layers.size(); ++l) {
      PlanStep s;
      s.layer = l;
      s.split = layers[l].split;
      s.layout = make_boundary(layers[l].split_items, layers[l].item_elems_per_image * batch, ranks);
      s.action = BoundaryAction::allgather;
      steps.push_back(std::move(s));
    }
    return steps;
  }
  // Fused plans keep a channel split from the first layer until the linear layer: each rank's channels, the
  // matching element ranges of element-wise layers, and (row-parallel) the matching input features.
  const std::size_t channels = layers.front().out.c;
  std::vector<Slice> channel_slices;
  for (std::size_t r = 0; r < ranks; ++r) channel_slices.push_back(block_slice(channels, ranks, r));
  bool linear_seen = false;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const LayerInfo& li = layers[l];
    PlanStep s;
    s.layer = l;
    const bool is_linear = std::holds_alternative<LinearSpec>(li.spec);
    if (linear_seen) throw std::invalid_argument("fused plans support one linear layer, at the end");
    if (!is_linear && li.out.c != channels)
      throw std::invalid_argument("fused plans need every layer before the linear one to keep the channel count");
    if (is_linear) {
      linear_seen = true;
      const std::size_t hw = li.in.h * li.in.w;
      if (plan == PlanKind::fused) {
        std::vector<Slice> features;
        for (const Slice& c : channel_slices) features.push_back(Slice{c.begin * hw, c.count * hw});
        s.row_partial = true;
        s.split = SplitKind::elements;
        s.layout = layout_from_slices(li.in.elements(), batch, features);
        s.action = BoundaryAction::allreduce;
        s.reduce_elems = li.out.elements() * batch;
      } else {
        s.split = SplitKind::features;
        s.layout = make_boundary(li.split_items, batch, ranks);
        s.action = BoundaryAction::allgather;
      }
    } else if (li.split == SplitKind::channels) {
      s.split = SplitKind::channels;
      s.layout = layout_from_slices(channels, li.item_elems_per_image * batch, channel_slices);
      s.action = BoundaryAction::none;
    } else {  // element-wise: the elements of this rank's channels
      const std::size_t hw = li.out.h * li.out.w;
      std::vector<Slice> elements;
      for (const Slice& c : channel_slices) elements.push_back(Slice{c.begin * hw, c.count * hw});
      s.split = SplitKind::elements;
      s.layout = layout_from_slices(li.split_items, batch, elements);
      s.action = BoundaryAction::none;
    }
    steps.push_back(std::move(s));
  }
  // fused-column: the layer before the linear one is gathered (each rank's channel-aligned part is contiguous).
  if (plan == PlanKind::fused_column && steps.size() >= 2) steps[steps.size() - 2].action = BoundaryAction::allgather;
  return steps;
}

std::uint64_t step_ops(const LayerInfo& layer, const PlanStep& step, std::size_t rank, std::size_t batch) {
  const Slice s = step.layout.slices.at(rank);
  if (step.row_partial) return static_cast<std::uint64_t>(s.count) * layer.out.elements() * batch;
  return static_cast<std::uint64_t>(s.count) * layer.ops_per_item_per_image * batch;
}

bool NodeMap::consecutive() const {
  if (!node_of_rank.empty() && node_of_rank[0] != 0) return false;
  for (std::size_t r = 1; r < node_of_rank.size(); ++r) {
    const int step = node_of_rank[r] - node_of_rank[r - 1];
    if (step != 0 && step != 1) return false;
  }
  return true;
}

std::string why_unavailable(ConsolidationKind kind, const NodeMap& nodes) {
  if (kind == ConsolidationKind::shared && nodes.nodes() > 1)
    return "--consolidation shared needs all ranks on one node, but this job spans " + std::to_string(nodes.nodes()) +
           " nodes; use --consolidation hierarchical (shared windows within each node plus MPI_Allgatherv between "
           "node leaders)";
  if (kind == ConsolidationKind::hierarchical && !nodes.consecutive())
    return "--consolidation hierarchical needs each node's ranks to be consecutive (place ranks by slot, e.g. "
           "mpirun --map-by slot)";
  return "";
}

NodeMap uniform_node_map(std::size_t ranks, std::size_t ranks_per_node) {
  NodeMap m;
  for (std::size_t r = 0; r < ranks; ++r) m.node_of_rank.push_back(static_cast<int>(r / ranks_per_node));
  return m;
}

ByteCount allgather_bytes(const std::vector<std::size_t>& elems, std::size_t participant) {
  std::size_t total = 0;
  for (std::size_t e : elems) total += e;
  const std::size_t mine = elems.at(participant);
  return ByteCount{4 * mine * (elems.size() - 1), 4 * (total - mine)};
}

ByteCount reduce_scatter_allgather_bytes(std::size_t elems, std::size_t participants, std::size_t participant) {
  const std::size_t block = block_slice(elems, participants, participant).count;
  // Reduce-scatter: my block arrives from each of the others, and I send each of them their block; the allgather
  // then spreads the reduced blocks.
  const std::size_t others_blocks = elems - block;
  return ByteCount{4 * (others_blocks + block * (participants - 1)), 4 * (block * (participants - 1) + others_blocks)};
}

namespace {

// Per node: the elements of the step's layout its ranks own together.
std::vector<std::size_t> node_elems(const PlanStep& step, const NodeMap& nodes) {
  std::vector<std::size_t> per_node(static_cast<std::size_t>(nodes.nodes()), 0);
  for (std::size_t r = 0; r < nodes.node_of_rank.size(); ++r)
    per_node[static_cast<std::size_t>(nodes.node_of_rank[r])] += step.layout.slices[r].count * step.layout.item_elems;
  return per_node;
}

}  // namespace

ByteCount expected_step_bytes(ConsolidationKind kind, const PlanStep& step, const NodeMap& nodes, std::size_t rank) {
  if (step.action == BoundaryAction::none || kind == ConsolidationKind::shared) return {};
  const std::size_t P = nodes.node_of_rank.size();
  if (kind == ConsolidationKind::allgatherv) {
    if (step.action == BoundaryAction::allreduce) return reduce_scatter_allgather_bytes(step.reduce_elems, P, rank);
    std::vector<std::size_t> elems;
    for (const Slice& s : step.layout.slices) elems.push_back(s.count * step.layout.item_elems);
    return allgather_bytes(elems, rank);
  }
  // hierarchical: only node leaders talk, one participant per node.
  if (!nodes.leader(rank)) return {};
  const auto node = static_cast<std::size_t>(nodes.node_of_rank[rank]);
  if (step.action == BoundaryAction::allreduce)
    return reduce_scatter_allgather_bytes(step.reduce_elems, static_cast<std::size_t>(nodes.nodes()), node);
  return allgather_bytes(node_elems(step, nodes), node);
}

ByteCount expected_broadcast_bytes(ConsolidationKind kind, std::size_t input_bytes, const NodeMap& nodes,
                                   std::size_t rank, std::size_t root) {
  const std::size_t P = nodes.node_of_rank.size();
  switch (kind) {
    case ConsolidationKind::allgatherv:
      return rank == root ? ByteCount{input_bytes * (P - 1), 0} : ByteCount{0, input_bytes};
    case ConsolidationKind::shared:
      return {};
    case ConsolidationKind::hierarchical: {
      if (!nodes.leader(rank)) return {};
      const auto L = static_cast<std::size_t>(nodes.nodes());
      const bool root_node = nodes.node_of_rank[rank] == nodes.node_of_rank[root];
      return root_node ? ByteCount{input_bytes * (L - 1), 0} : ByteCount{0, input_bytes};
    }
  }
  return {};
}

}  // namespace cnnpar
