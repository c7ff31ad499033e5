// The execution plan: which slice each rank computes at every layer, and what happens at each layer boundary.
// Pure data and integer math, no MPI, so the command line, reports, tests and the results file share it.
//
//   per-layer     the seed's plan: every layer's output is gathered on every rank (conv and pool split by channel,
//                 GELU re-split by element, linear by output feature).
//   fused         conv -> pool -> GELU stay on each rank's output channels with no communication; the linear layer
//                 is row-parallel: each rank multiplies its channel block of the C,H,W-flattened input by the
//                 matching columns of the weight matrix, and the partial outputs are summed across ranks
//                 (reduce-scatter + allgather). Moves ~2(P-1)/P of the output instead of four whole tensors, but
//                 changes the summation order, so it is not bit-for-bit (see verify_bound in report.hpp).
//   fused-column  as fused up to GELU, then one gather of the GELU output and the usual column-parallel linear
//                 layer (split by output feature) and its gather: bit-for-bit equal to the serial reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cnnpar/network.hpp"
#include "cnnpar/partition.hpp"

namespace cnnpar {

// How slices become whole tensors on every rank (consolidation.hpp has the implementations).
enum class ConsolidationKind { allgatherv, shared, hierarchical };
enum class PlanKind { per_layer, fused, fused_column };

std::string_view to_string(ConsolidationKind kind);
std::string_view to_string(PlanKind kind);
std::optional<ConsolidationKind> parse_consolidation_kind(std::string_view name);
std::optional<PlanKind> parse_plan_kind(std::string_view name);
inline constexpr ConsolidationKind kAllConsolidations[] = {ConsolidationKind::allgatherv, ConsolidationKind::shared,
                                                          ConsolidationKind::hierarchical};
inline constexpr PlanKind kAllPlans[] = {PlanKind::per_layer, PlanKind::fused, PlanKind::fused_column};

// What a layer boundary does after the layer's compute.
enum class BoundaryAction {
  none,       // the output stays sliced: the next layer reads only this rank's part
  allgather,  // every rank's slice is gathered into the whole tensor on every rank
  allreduce,  // every rank computed partial sums of the whole output; they are summed on every rank
};
std::string_view to_string(BoundaryAction action);

struct PlanStep {
  std::size_t layer = 0;
  // Linear layer computed over a range of its *input* features (partial sums of every output), not over outputs.
  bool row_partial = false;
  SplitKind split = SplitKind::channels;  // what the slices count (row_partial: input features, as "elements")
  BoundaryLayout layout;                  // slices per rank over `layout.items` items of `layout.item_elems` floats
  BoundaryAction action = BoundaryAction::allgather;
  std::size_t reduce_elems = 0;           // allreduce: floats of the reduced output (O * B)
};

// What a step's slices count: "channels", "elements", "features", or "input-features" for a row-parallel step.
std::string_view split_name(const PlanStep& step);

std::vector<PlanStep> make_plan(PlanKind plan, const std::vector<LayerInfo>& layers, std::size_t batch,
                                std::size_t ranks);

// Operations a rank performs at a step for the batch (closed forms: network.hpp). A row-parallel step counts its
// input features times every output (the same total as the column split; the reduction's adds are not counted).
std::uint64_t step_ops(const LayerInfo& layer, const PlanStep& step, std::size_t rank, std::size_t batch);

// Which node every rank is on (nodes hold consecutive ranks: see consolidation.hpp for why).
struct NodeMap {
  std::vector<int> node_of_rank;
  int nodes() const { return node_of_rank.empty() ? 0 : node_of_rank.back() + 1; }
  bool leader(std::size_t rank) const { return rank == 0 || node_of_rank[rank] != node_of_rank[rank - 1]; }
  // Every node's ranks are consecutive (how Open MPI and Slurm place ranks by default). The hierarchical gather
  // relies on it: a node's slices then form one contiguous block.
  bool consecutive() const;
};

// Why `kind` cannot run on these nodes ("" if it can): shared needs one node, hierarchical consecutive nodes.
std::string why_unavailable(ConsolidationKind kind, const NodeMap& nodes);
// Nodes of `ranks_per_node` consecutive ranks (the last may be smaller).
NodeMap uniform_node_map(std::size_t ranks, std::size_t ranks_per_node);

// Bytes a rank hands to MPI in one boundary or one input broadcast: the model the measured records are checked
// against. Shared windows move nothing through MPI (ranks read the node's buffer in place), so only what crosses
// between nodes is counted for them.
struct ByteCount {
  std::uint64_t sent = 0, received = 0;
  bool operator==(const ByteCount&) const = default;
};
ByteCount expected_step_bytes(ConsolidationKind kind, const PlanStep& step, const NodeMap& nodes, std::size_t rank);
ByteCount expected_broadcast_bytes(ConsolidationKind kind, std::size_t input_bytes, const NodeMap& nodes,
                                   std::size_t rank, std::size_t root = 0);

// The gather ledger of an allgather over `ranks` participants (floats): rank r receives the others' elements and
// its own go to everyone else. Exposed for the implementations, which count what they pass to MPI with it.
ByteCount allgather_bytes(const std::vector<std::size_t>& elems_per_participant, std::size_t participant);
// Reduce-scatter over a block partition of `elems` floats, then allgather of the reduced blocks.
ByteCount reduce_scatter_allgather_bytes(std::size_t elems, std::size_t participants, std::size_t participant);

}  // namespace cnnpar
