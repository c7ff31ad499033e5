// The execution plan: how every layer's work is divided among ranks (its split), which part each rank computes, and
// what happens at each layer boundary, with the byte model of that boundary. Pure data and integer math, no MPI, so
// the command line, reports, tests and the results file share it. A network (network.hpp) says what the layers are;
// only the plan says how they are cut.
//
// Splits (the region a rank computes is a contiguous block of the layer's output in the C,H,W,B layout, so a slice
// is one range of memory and consolidation needs no packing; kernels.hpp):
//   channel        output channels (conv filters, pooled or activated channels; a flat vector's features)
//   element        a range of the C,H,W-flattened output (element-wise layers)
//   feature        output features of a linear layer or LogSoftmax (column-parallel)
//   input-feature  a linear layer's input features: partial sums of every output, summed across ranks (row-parallel)
//   replicated     every rank computes the whole layer (no communication; weights held in full on every rank)
//   rows           a block of output rows of every channel (spatial; conv and pool read a halo of input rows)
//   sample         a block of the batch's images, whole weights on every rank (data parallelism)
//   tiles          2-D blocks of output rows x columns of every channel on an R x C process grid (--grid), with
//                  halos on both axes, corners included (the seed's spatial tiles)
//   rows-channel   2-D: blocks of output rows (grid rows) x blocks of output channels (grid columns)
//   sample-channel 2-D: blocks of images (grid rows) x blocks of output channels or features (grid columns)
// Rows, sample, tiles and 2-D regions are boxes strided in C,H,W,B: the kernels compute them in place in the whole
// tensors (kernels.hpp, the *_box_forward forms), and their boundaries exchange exactly the boxes the next step reads
// (see BoundaryAction::exchange).
//
// Plans (the default split of every layer; --split overrides it per layer):
//   per-layer     the seed's: every layer is split (conv, pool by channel, GELU by element, linear and LogSoftmax
//                 by feature) and its output gathered on every rank afterwards.
//   fused         slices stay where the next layer can use them: chains of channel-local layers (conv -> pool ->
//                 GELU) keep each rank's channels; a conv needs every input channel, so its input is gathered; a
//                 linear layer after a sliced chain is row-parallel (one reduction); after that reduction, element-wise
//                 layers are replicated and the next linear layer is column-parallel, its sliced output feeding a
//                 row-parallel one (Megatron-LM's pairing: one reduction per pair); LogSoftmax is replicated. Row-
//                 parallel sums take the products in another order, so they are checked against a rounding bound,
//                 not bit for bit (verify.hpp).
//   fused-column  as fused, but every linear layer is column-parallel (its input gathered first): bit for bit.
//
// Boundary actions follow from the splits: after a row-parallel step, allreduce; otherwise, in the fused plans, none
// when every rank already holds the part of the output the next step reads (needed_input within output_range), else
// allgather; the per-layer plan gathers every split layer. The last step leaves the whole output on every rank.
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
enum class SplitKind { channel, element, feature, input_feature, replicated, rows, sample, tiles, rows_channel,
                       sample_channel };

std::string_view to_string(ConsolidationKind kind);
std::string_view to_string(PlanKind kind);
std::string_view to_string(SplitKind kind);  // as --split spells it: "channel", "input-feature", ...
std::optional<ConsolidationKind> parse_consolidation_kind(std::string_view name);
std::optional<PlanKind> parse_plan_kind(std::string_view name);
std::optional<SplitKind> parse_split_kind(std::string_view name);
inline constexpr ConsolidationKind kAllConsolidations[] = {ConsolidationKind::allgatherv, ConsolidationKind::shared,
                                                          ConsolidationKind::hierarchical};
inline constexpr PlanKind kAllPlans[] = {PlanKind::per_layer, PlanKind::fused, PlanKind::fused_column};

// The splits a layer can take: conv and pool channel; GELU channel or element; linear feature or input-feature;
// LogSoftmax feature (it needs each image's whole feature vector: every rank that owns features reads all of them and
// recomputes the normalisation, kernels.hpp); every layer replicated.
std::vector<SplitKind> allowed_splits(const LayerInfo& layer);

// --split: per-layer choices, "conv=channel,gelu2=element,fc=input-feature". A target is a layer's name (conv2) or
// kind (conv, pool, gelu, fc, logsoftmax: every layer of that kind); a name wins over a kind.
struct SplitChoice {
  std::string target;
  SplitKind split;
  bool operator==(const SplitChoice&) const = default;
};
// Throws std::invalid_argument naming the offending item.
std::vector<SplitChoice> parse_split_choices(std::string_view text);

// What a layer boundary does after the layer's compute.
enum class BoundaryAction {
  none,       // the output stays sliced (or is whole on every rank already): nothing moves
  allgather,  // every rank's slice is gathered into the whole tensor on every rank
  allreduce,  // every rank computed partial sums of the whole output; they are summed on every rank
  exchange,   // point to point: every rank receives from its owners exactly the boxes the next step reads and it
              // does not hold (a halo of rows, another cut of the batch, ...); shared windows read them in place
};
std::string_view to_string(BoundaryAction action);

// The splits whose regions are boxes strided in C,H,W,B (not one range of memory): their kernels take the box
// (reference.hpp: box_forward).
constexpr bool computes_box(SplitKind k) {
  return k == SplitKind::rows || k == SplitKind::sample || k == SplitKind::tiles || k == SplitKind::rows_channel ||
         k == SplitKind::sample_channel;
}

// The 2-D splits, laid out on the R x C process grid (--grid).
constexpr bool on_grid(SplitKind k) {
  return k == SplitKind::tiles || k == SplitKind::rows_channel || k == SplitKind::sample_channel;
}

struct PlanStep {
  std::size_t layer = 0;
  SplitKind split = SplitKind::channel;
  // Slices per rank over `layout.items` items of `layout.item_elems` floats (B included): channels, elements,
  // features, or for input-feature the input features read; replicated: every rank owns every item (channels).
  BoundaryLayout layout;
  BoundaryAction action = BoundaryAction::allgather;
  std::size_t reduce_elems = 0;  // input-feature: floats of the reduced output (O * B)
  std::size_t batch = 1;
  std::size_t grid_rows = 1, grid_cols = 1;  // 2-D splits: the process grid; rank r sits at (r / cols, r % cols)
  Slice second(std::size_t rank) const;      // 2-D splits: the rank's block on the second axis (columns, channels)
  std::size_t second_items = 0;              // 2-D splits: what that axis counts (output columns, channels)
  Shape out;  // the layer's per-image output shape: the tensor is out x batch
  // [rank]: the boxes of the output the rank writes (the whole output for replicated and input-feature steps), and
  // the boxes it must hold after the boundary (what the next step reads; the whole output after the last step).
  std::vector<std::vector<Box>> own, wanted;
  // [rank]: the boxes of the step's input the rank's kernel reads (needed_boxes). Usually the previous step's
  // `wanted`, but the per-layer plan gathers whole tensors that the next step may read only part of.
  std::vector<std::vector<Box>> needed;
  bool partial() const { return split == SplitKind::input_feature; }
  bool boxed() const { return computes_box(split); }
  bool two_d() const { return on_grid(split); }
  // A 1-D split: every rank's region is one contiguous range, so an allgather works in place.
  bool contiguous() const {
    return split == SplitKind::channel || split == SplitKind::element || split == SplitKind::feature;
  }
};

// The boxes rank `from` sends rank `to` at an exchange boundary: own[from] x wanted[to], none to itself.
std::vector<Box> exchange_boxes(const PlanStep& step, std::size_t from, std::size_t to);

// What a step's slices count, as the results file and reports name it: "channels", "elements", "features",
// "input-features", "replicated".
std::string_view split_name(const PlanStep& step);

// An R x C process grid for the 2-D splits: --grid RxC, or (0 x 0) the most square factorisation of P with R <= C.
struct Grid {
  std::size_t rows = 0, cols = 0;
};
// "2x3" -> {2, 3}; throws std::invalid_argument.
Grid parse_grid(std::string_view text);
// The grid to use for P ranks: `requested` if it has R x C = P (else std::invalid_argument naming both), or the
// default factorisation.
Grid grid_for(Grid requested, std::size_t ranks);

// Throws std::invalid_argument (naming the layer) when a choice names no layer or a split the layer does not allow.
std::vector<PlanStep> make_plan(PlanKind plan, const std::vector<LayerInfo>& layers, std::size_t batch,
                                std::size_t ranks, const std::vector<SplitChoice>& choices = {}, Grid grid = {});

// The boxes of a step's output a rank writes (the whole output for replicated and input-feature steps, whose output
// is partial until reduced), and of its input it reads (a rows step of a conv or pool: its rows' windows, clamped).
std::vector<Box> output_boxes(const LayerInfo& layer, const PlanStep& step, std::size_t rank);
std::vector<Box> needed_boxes(const LayerInfo& layer, const PlanStep& step, std::size_t rank);
// Output elements a rank writes, all images.
std::size_t output_elements(const PlanStep& step, std::size_t rank);
// The rows of the layer's weight tensor a rank holds (output channels or features); input-feature steps hold
// columns instead (their slice), and layers without parameters none.
Slice weight_rows(const LayerInfo& layer, const PlanStep& step, std::size_t rank);

// Whether step s (a convolution) and step s+1 (the max-pooling after it) can be computed together by the fused
// kernel (kernels.hpp: conv2d_maxpool2d_forward), which never writes the conv output: nothing moves between them
// (the boundary is none, or there is one rank), every rank pools exactly the channels it convolved (both split by
// channel, or both replicated, or one rank; no box split), and the pool's windows do not overlap (kernel <=
// stride), so no conv row is computed twice. The conv output then exists only when a pass runs layer by layer.
// Step s (a max-pool fused with the conv before it) and a GELU after it fuse on the same terms: nothing moves between
// them and the GELU covers the pool's channels (the same channel split, or replicated, or one rank); the pooled
// output then does not exist in the timed passes either.
bool fuses_with_next(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps, std::size_t s);

// Operations a rank performs at a step for the batch (closed forms: network.hpp). A row-parallel step counts its
// input features times every output (the same total as the column split; the reduction's adds are not counted).
std::uint64_t step_ops(const LayerInfo& layer, const PlanStep& step, std::size_t rank, std::size_t batch);

// Bytes a rank's kernel of the step reads and writes for the batch: the input boxes it reads (needed), the output
// it writes (own) and the parameters it holds (`weight_bytes`, as the distributed forward allocated them). What a
// boundary's calibration streams through before each call (records.hpp: CollectiveTimings::InPass), so the gather
// starts from the caches the pass leaves it.
std::uint64_t step_touched_bytes(const PlanStep& step, std::size_t rank, std::uint64_t weight_bytes);

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
// The same for a plan: besides, hierarchical does not yet run exchange boundaries (rows, sample) across nodes.
std::string why_unavailable(ConsolidationKind kind, const NodeMap& nodes, const std::vector<PlanStep>& steps);
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
