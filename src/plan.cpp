// Execution plans and their byte model (see plan.hpp).
#include "cnnpar/plan.hpp"

#include <algorithm>
#include <charconv>
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
    case BoundaryAction::exchange: return "exchange";
  }
  return "unknown";
}

std::string_view to_string(SplitKind kind) {
  switch (kind) {
    case SplitKind::channel: return "channel";
    case SplitKind::element: return "element";
    case SplitKind::feature: return "feature";
    case SplitKind::input_feature: return "input-feature";
    case SplitKind::replicated: return "replicated";
    case SplitKind::rows: return "rows";
    case SplitKind::sample: return "sample";
    case SplitKind::tiles: return "tiles";
    case SplitKind::rows_channel: return "rows-channel";
    case SplitKind::sample_channel: return "sample-channel";
  }
  return "unknown";
}

std::string_view split_name(const PlanStep& step) {
  switch (step.split) {
    case SplitKind::channel: return "channels";
    case SplitKind::element: return "elements";
    case SplitKind::feature: return "features";
    case SplitKind::input_feature: return "input-features";
    case SplitKind::replicated: return "replicated";
    case SplitKind::rows: return "rows";
    case SplitKind::sample: return "samples";
    case SplitKind::tiles: return "tiles";
    case SplitKind::rows_channel: return "rows-channels";
    case SplitKind::sample_channel: return "samples-channels";
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

std::optional<SplitKind> parse_split_kind(std::string_view name) {
  for (SplitKind k : {SplitKind::channel, SplitKind::element, SplitKind::feature, SplitKind::input_feature,
                      SplitKind::replicated, SplitKind::rows, SplitKind::sample, SplitKind::tiles,
                      SplitKind::rows_channel, SplitKind::sample_channel})
    if (to_string(k) == name) return k;
  return std::nullopt;
}

std::vector<SplitKind> allowed_splits(const LayerInfo& layer) {
  switch (layer.spec.index()) {
    case 0:  // conv
    case 1:  // pool
      return {SplitKind::channel,      SplitKind::rows,           SplitKind::sample,    SplitKind::tiles,
              SplitKind::rows_channel, SplitKind::sample_channel, SplitKind::replicated};
    case 2:  // gelu
      return {SplitKind::element, SplitKind::channel,      SplitKind::rows,           SplitKind::sample,
              SplitKind::tiles,   SplitKind::rows_channel, SplitKind::sample_channel, SplitKind::replicated};
    case 3:  // linear
      return {SplitKind::feature, SplitKind::input_feature, SplitKind::sample, SplitKind::sample_channel,
              SplitKind::replicated};
    default:  // logsoftmax
      return {SplitKind::feature, SplitKind::sample, SplitKind::sample_channel, SplitKind::replicated};
  }
}

std::vector<SplitChoice> parse_split_choices(std::string_view text) {
  std::vector<SplitChoice> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string_view item = text.substr(at, comma - at);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size())
      throw std::invalid_argument("'" + std::string(item) + "' is not LAYER=SPLIT (e.g. conv=channel)");
    const auto split = parse_split_kind(item.substr(eq + 1));
    if (!split)
      throw std::invalid_argument("unknown split '" + std::string(item.substr(eq + 1)) +
                                  "' (channel, element, feature, input-feature, replicated, rows, sample, tiles, rows-channel, "
                                  "sample-channel)");
    out.push_back(SplitChoice{std::string(item.substr(0, eq)), *split});
    at = comma + 1;
  }
  return out;
}

namespace {

// A layout over explicit slices (replicated steps: every rank owns every item). counts/displs are the MPI
// Allgatherv arguments of the slices, meaningful only for disjoint slices.
BoundaryLayout layout_from_slices(std::size_t items, std::size_t item_elems, std::vector<Slice> slices) {
  BoundaryLayout b = make_boundary(items, item_elems, slices.size());
  b.slices = std::move(slices);
  for (std::size_t r = 0; r < b.slices.size(); ++r) {
    b.counts[r] = static_cast<int>(b.slices[r].count * item_elems);
    b.displs[r] = static_cast<int>(b.slices[r].begin * item_elems);
  }
  return b;
}

// The step's layout for a split: block partitions of the items the split counts.
PlanStep make_step(const std::vector<LayerInfo>& layers, std::size_t l, SplitKind split, std::size_t batch,
                   std::size_t ranks, Grid grid) {
  const LayerInfo& li = layers[l];
  PlanStep s;
  s.layer = l;
  s.split = split;
  s.batch = batch;
  // The 2-D splits: the first axis (rows or images) over the grid's rows, the second (columns or channels) over its
  // columns; layout.slices holds every rank's first-axis block.
  auto grid_layout = [&](std::size_t first_items, std::size_t first_item_elems, std::size_t second_items) {
    s.grid_rows = grid.rows;
    s.grid_cols = grid.cols;
    s.second_items = second_items;
    std::vector<Slice> first;
    for (std::size_t r = 0; r < ranks; ++r) first.push_back(block_slice(first_items, grid.rows, r / grid.cols));
    s.layout = make_boundary(first_items, first_item_elems, ranks);
    s.layout.slices = std::move(first);
  };
  switch (split) {
    case SplitKind::channel:
    case SplitKind::feature:  // a linear layer's or LogSoftmax's output is O x 1 x 1: features are its channels
      s.layout = make_boundary(li.out.c, li.channel_elems() * batch, ranks);
      break;
    case SplitKind::element:
      s.layout = make_boundary(li.out.elements(), batch, ranks);
      break;
    case SplitKind::input_feature: {
      // Blocks of whole input channels, so that a rank's features are exactly a channel-split predecessor's slice.
      const std::size_t hw = li.in.h * li.in.w;
      std::vector<Slice> features;
      for (std::size_t r = 0; r < ranks; ++r) {
        const Slice c = block_slice(li.in.c, ranks, r);
        features.push_back(Slice{c.begin * hw, c.count * hw});
      }
      s.layout = layout_from_slices(li.in.elements(), batch, std::move(features));
      s.reduce_elems = li.out.elements() * batch;
      break;
    }
    case SplitKind::replicated:
      s.layout = layout_from_slices(li.out.c, li.channel_elems() * batch,
                                    std::vector<Slice>(ranks, Slice{0, li.out.c}));
      break;
    case SplitKind::rows:  // an item is one output row of every channel; not contiguous (counts unused)
      s.layout = make_boundary(li.out.h, li.out.c * li.out.w * batch, ranks);
      break;
    case SplitKind::sample:  // an item is one image's whole output; not contiguous (counts unused)
      s.layout = make_boundary(batch, li.out.elements(), ranks);
      break;
    case SplitKind::tiles:
      grid_layout(li.out.h, li.out.c * li.out.w * batch, li.out.w);
      break;
    case SplitKind::rows_channel:
      grid_layout(li.out.h, li.out.c * li.out.w * batch, li.out.c);
      break;
    case SplitKind::sample_channel:
      grid_layout(batch, li.out.elements(), li.out.c);
      break;
  }
  s.out = li.out;
  for (std::size_t r = 0; r < ranks; ++r) {
    s.own.push_back(output_boxes(li, s, r));
    s.needed.push_back(needed_boxes(li, s, r));
  }
  return s;
}

Box whole_box(const Shape& shape, std::size_t batch) {
  return Box{Slice{0, shape.c}, Slice{0, shape.h}, Slice{0, shape.w}, Slice{0, batch}};
}

// Drops empty boxes.
std::vector<Box> nonempty(std::vector<Box> boxes) {
  boxes.erase(std::remove_if(boxes.begin(), boxes.end(), [](const Box& b) { return b.empty(); }), boxes.end());
  return boxes;
}

bool holds(const std::vector<Box>& own, const std::vector<Box>& wanted) {
  for (const Box& w : wanted)
    if (covered(own, w) != w.volume()) return false;
  return true;
}

// The split a layer takes by default under a plan (before --split), given the splits chosen before it.
SplitKind default_split(PlanKind plan, const std::vector<LayerInfo>& layers, std::size_t l,
                        const std::vector<SplitKind>& earlier) {
  const LayerInfo& li = layers[l];
  // The first layer reads the whole input, as if after a replicated one.
  const SplitKind previous = l == 0 ? SplitKind::replicated : earlier[l - 1];
  const bool previous_sliced =
      previous == SplitKind::channel || previous == SplitKind::element || previous == SplitKind::feature;
  switch (li.spec.index()) {
    case 0:
    case 1: return SplitKind::channel;
    case 2:
      if (plan == PlanKind::per_layer) return SplitKind::element;
      // Right after a reduction every rank holds the whole vector: compute the element-wise layer there, so the
      // next linear layer can be column-parallel (Megatron-LM).
      if (previous == SplitKind::input_feature) return SplitKind::replicated;
      return SplitKind::channel;
    case 3:
      if (plan == PlanKind::fused && previous_sliced) return SplitKind::input_feature;
      return SplitKind::feature;
    default: return plan == PlanKind::per_layer ? SplitKind::feature : SplitKind::replicated;
  }
}

}  // namespace

Slice PlanStep::second(std::size_t rank) const {
  return two_d() ? block_slice(second_items, grid_cols, rank % grid_cols) : Slice{};
}

Grid parse_grid(std::string_view text) {
  const std::size_t x = text.find('x');
  auto number = [&](std::string_view part) {
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || end != part.data() + part.size() || v == 0)
      throw std::invalid_argument("--grid takes RxC with positive R and C, e.g. 2x3 (got '" + std::string(text) + "')");
    return v;
  };
  if (x == std::string_view::npos) number("");
  return Grid{number(text.substr(0, x)), number(text.substr(x + 1))};
}

Grid grid_for(Grid requested, std::size_t ranks) {
  if (requested.rows != 0) {
    if (requested.rows * requested.cols != ranks)
      throw std::invalid_argument("--grid " + std::to_string(requested.rows) + "x" + std::to_string(requested.cols) +
                                  " has " + std::to_string(requested.rows * requested.cols) + " places for " +
                                  std::to_string(ranks) + " ranks");
    return requested;
  }
  std::size_t r = 1;
  for (std::size_t d = 1; d * d <= ranks; ++d)
    if (ranks % d == 0) r = d;
  return Grid{r, ranks / r};
}

std::vector<PlanStep> make_plan(PlanKind plan, const std::vector<LayerInfo>& layers, std::size_t batch,
                                std::size_t ranks, const std::vector<SplitChoice>& choices, Grid grid) {
  // Every choice must name a layer or a kind of the network.
  for (const SplitChoice& c : choices) {
    const bool known = std::any_of(layers.begin(), layers.end(), [&](const LayerInfo& li) {
      return li.name == c.target || kind_name(li.spec) == c.target;
    });
    if (!known) {
      std::string names;
      for (const LayerInfo& li : layers) names += (names.empty() ? "" : ", ") + li.name;
      throw std::invalid_argument("--split names '" + c.target + "', which is no layer of this network (" + names +
                                  ")");
    }
  }
  std::vector<SplitKind> splits;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const LayerInfo& li = layers[l];
    SplitKind split = default_split(plan, layers, l, splits);
    const SplitChoice* by_kind = nullptr;
    const SplitChoice* by_name = nullptr;
    for (const SplitChoice& c : choices) {
      if (c.target == li.name) by_name = &c;
      else if (c.target == kind_name(li.spec)) by_kind = &c;
    }
    if (const SplitChoice* c = by_name ? by_name : by_kind) {
      const std::vector<SplitKind> allowed = allowed_splits(li);
      if (std::find(allowed.begin(), allowed.end(), c->split) == allowed.end()) {
        std::string list;
        for (SplitKind k : allowed) list += (list.empty() ? "" : ", ") + std::string(to_string(k));
        throw std::invalid_argument("--split " + c->target + "=" + std::string(to_string(c->split)) + ": layer " +
                                    li.name + " (" + li.operation + ") cannot be split that way; it allows " + list);
      }
      split = c->split;
    }
    splits.push_back(split);
  }

  std::vector<PlanStep> steps;
  const bool any_2d = std::any_of(splits.begin(), splits.end(), on_grid);
  if (any_2d) grid = grid_for(grid, ranks);
  for (std::size_t l = 0; l < layers.size(); ++l)
    steps.push_back(make_step(layers, l, splits[l], batch, ranks, grid));
  for (std::size_t s = 0; s < steps.size(); ++s) {
    PlanStep& step = steps[s];
    const bool last = s + 1 == steps.size();
    for (std::size_t r = 0; r < ranks; ++r)
      step.wanted.push_back(last ? std::vector<Box>{whole_box(step.out, batch)}
                                 : needed_boxes(layers[steps[s + 1].layer], steps[s + 1], r));
    if (step.partial()) {
      step.action = BoundaryAction::allreduce;
      continue;
    }
    bool local = true, whole = true;
    for (std::size_t r = 0; r < ranks; ++r) {
      local = local && holds(step.own[r], step.wanted[r]);
      whole = whole && holds(step.wanted[r], {whole_box(step.out, batch)});
    }
    // The seed's per-layer plan gathers after every layer it splits 1-D; the rows and sample splits (and the fused
    // plans) move only what the next step does not already hold.
    const bool seed_gather = plan == PlanKind::per_layer && step.contiguous();
    if (local && !seed_gather) step.action = BoundaryAction::none;
    else if (step.contiguous() && (whole || seed_gather)) step.action = BoundaryAction::allgather;
    else step.action = BoundaryAction::exchange;
    if (seed_gather) step.wanted.assign(ranks, {whole_box(step.out, batch)});
  }
  return steps;
}

std::vector<Box> output_boxes(const LayerInfo& layer, const PlanStep& step, std::size_t rank) {
  const Slice s = step.layout.slices.at(rank);
  const std::size_t B = step.batch;
  const Slice all_c{0, layer.out.c}, all_h{0, layer.out.h}, all_w{0, layer.out.w}, all_b{0, B};
  switch (step.split) {
    case SplitKind::channel:
    case SplitKind::feature: return nonempty({Box{s, all_h, all_w, all_b}});
    case SplitKind::element: return boxes_of_range(layer.out.c, layer.out.h, layer.out.w, B, s);
    case SplitKind::input_feature:
    case SplitKind::replicated: return {Box{all_c, all_h, all_w, all_b}};
    case SplitKind::rows: return nonempty({Box{all_c, s, all_w, all_b}});
    case SplitKind::sample: return nonempty({Box{all_c, all_h, all_w, s}});
    case SplitKind::tiles: return nonempty({Box{all_c, s, step.second(rank), all_b}});
    case SplitKind::rows_channel: return nonempty({Box{step.second(rank), s, all_w, all_b}});
    case SplitKind::sample_channel: return nonempty({Box{step.second(rank), all_h, all_w, s}});
  }
  return {};
}

namespace {

// The input range output range `out` of a conv or pool reads along one axis: [o0*S, (o1-1)*S + K) (DistDL's halo
// rule: needed minus owned is the halo), within the input by construction of the output size; element-wise layers
// read the same range.
Slice window(const LayerInfo& layer, Slice out, std::size_t in_size) {
  std::size_t kernel = 1, stride = 1;
  if (const auto* conv = std::get_if<Conv2dSpec>(&layer.spec)) kernel = conv->kernel, stride = conv->stride;
  if (const auto* pool = std::get_if<MaxPool2dSpec>(&layer.spec)) kernel = pool->kernel, stride = pool->stride;
  const std::size_t first = out.begin * stride, last = (out.end() - 1) * stride + kernel;
  return Slice{first, std::min(last, in_size) - first};
}

}  // namespace

std::vector<Box> needed_boxes(const LayerInfo& layer, const PlanStep& step, std::size_t rank) {
  const Slice s = step.layout.slices.at(rank);
  const std::size_t B = step.batch;
  const Shape& in = layer.in;
  const Slice all_c{0, in.c}, all_h{0, in.h}, all_w{0, in.w}, all_b{0, B};
  const Box whole{all_c, all_h, all_w, all_b};
  switch (step.split) {
    case SplitKind::replicated: return {whole};
    case SplitKind::input_feature: return boxes_of_range(in.c, in.h, in.w, B, s);
    case SplitKind::sample: return nonempty({Box{all_c, all_h, all_w, s}});
    case SplitKind::rows:
    case SplitKind::tiles:
    case SplitKind::rows_channel: {
      const Slice cols = step.split == SplitKind::tiles ? step.second(rank) : Slice{0, layer.out.w};
      const Slice chans = step.split == SplitKind::rows_channel ? step.second(rank) : Slice{0, layer.out.c};
      if (s.empty() || cols.empty() || chans.empty()) return {};
      return {Box{std::holds_alternative<Conv2dSpec>(layer.spec) ? all_c : chans, window(layer, s, in.h),
                  window(layer, cols, in.w), all_b}};
    }
    case SplitKind::sample_channel: {
      const Slice chans = step.second(rank);
      if (s.empty() || chans.empty()) return {};
      const bool reads_every_channel = std::holds_alternative<Conv2dSpec>(layer.spec) ||
                                       std::holds_alternative<LinearSpec>(layer.spec) ||
                                       std::holds_alternative<LogSoftmaxSpec>(layer.spec);
      return {Box{reads_every_channel ? all_c : chans, all_h, all_w, s}};
    }
    case SplitKind::channel:
      if (std::holds_alternative<Conv2dSpec>(layer.spec)) return {whole};
      return nonempty({Box{s, all_h, all_w, all_b}});  // pool, gelu: the same channels
    case SplitKind::element: return boxes_of_range(in.c, in.h, in.w, B, s);  // element-wise
    case SplitKind::feature: return {whole};  // linear, logsoftmax: every input feature
  }
  return {};
}

std::size_t output_elements(const PlanStep& step, std::size_t rank) {
  std::size_t n = 0;
  for (const Box& b : step.own.at(rank)) n += b.volume();
  return n;
}

std::vector<Box> exchange_boxes(const PlanStep& step, std::size_t from, std::size_t to) {
  std::vector<Box> out;
  if (from == to) return out;
  for (const Box& o : step.own.at(from))
    for (const Box& w : step.wanted.at(to))
      if (const Box x = intersect(o, w); !x.empty()) out.push_back(x);
  return out;
}

Slice weight_rows(const LayerInfo& layer, const PlanStep& step, std::size_t rank) {
  if (!layer.has_weights()) return {};
  if (step.split == SplitKind::channel || step.split == SplitKind::feature) return step.layout.slices.at(rank);
  if (step.split == SplitKind::rows_channel || step.split == SplitKind::sample_channel) return step.second(rank);
  return Slice{0, layer.out.c};  // every row: replicated, rows, sample; input-feature holds some columns of each
}

bool fuses_with_next(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps, std::size_t s) {
  if (s + 1 >= steps.size()) return false;
  if (std::holds_alternative<MaxPool2dSpec>(layers[steps[s].layer].spec)) {
    // A fused conv + pool pair takes the GELU after it along, part by part, on the same channels.
    const PlanStep &pool = steps[s], &gelu = steps[s + 1];
    if (s == 0 || !fuses_with_next(layers, steps, s - 1) || !std::holds_alternative<GeluSpec>(layers[gelu.layer].spec))
      return false;
    if (pool.own.size() == 1) return !gelu.boxed();  // one rank: channel, element or replicated, all whole
    return pool.action == BoundaryAction::none && gelu.split == pool.split;
  }
  const PlanStep &conv = steps[s], &pool = steps[s + 1];
  if (!std::holds_alternative<Conv2dSpec>(layers[conv.layer].spec)) return false;
  const auto* spec = std::get_if<MaxPool2dSpec>(&layers[pool.layer].spec);
  if (spec == nullptr || spec->kernel > spec->stride) return false;
  const auto whole_or_channels = [](SplitKind k) { return k == SplitKind::channel || k == SplitKind::replicated; };
  if (!whole_or_channels(conv.split) || !whole_or_channels(pool.split)) return false;
  if (conv.own.size() == 1) return true;  // one rank: every split is the whole layer, every boundary moves nothing
  return conv.action == BoundaryAction::none && conv.split == pool.split;
}

std::uint64_t step_ops(const LayerInfo& layer, const PlanStep& step, std::size_t rank, std::size_t batch) {
  const Slice s = step.layout.slices.at(rank);
  if (step.partial()) return static_cast<std::uint64_t>(s.count) * layer.out.elements() * batch;
  return static_cast<std::uint64_t>(output_elements(step, rank)) * layer.ops_per_output;
}

std::uint64_t step_touched_bytes(const PlanStep& step, std::size_t rank, std::uint64_t weight_bytes) {
  std::uint64_t floats = output_elements(step, rank);
  for (const Box& b : step.needed.at(rank)) floats += b.volume();
  return floats * sizeof(float) + weight_bytes;
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

std::string why_unavailable(ConsolidationKind kind, const NodeMap& nodes, const std::vector<PlanStep>& steps) {
  if (std::string why = why_unavailable(kind, nodes); !why.empty()) return why;
  const bool exchanges = std::any_of(steps.begin(), steps.end(),
                                     [](const PlanStep& s) { return s.action == BoundaryAction::exchange; });
  if (kind == ConsolidationKind::hierarchical && nodes.nodes() > 1 && exchanges)
    return "--consolidation hierarchical does not run the rows and sample splits' exchanges across nodes yet; use "
           "--consolidation allgatherv for them";
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
  if (step.action == BoundaryAction::exchange) {
    if (kind == ConsolidationKind::hierarchical) return {};  // one node only (why_unavailable): read in place
    ByteCount b;
    for (std::size_t q = 0; q < nodes.node_of_rank.size(); ++q) {
      for (const Box& x : exchange_boxes(step, q, rank)) b.received += 4 * x.volume();
      for (const Box& x : exchange_boxes(step, rank, q)) b.sent += 4 * x.volume();
    }
    return b;
  }
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
