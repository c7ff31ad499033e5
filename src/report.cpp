// Terminal reports (see report.hpp).
#include "cnnpar/report.hpp"

#include <algorithm>
#include <cstdio>

#include "cnnpar/idx.hpp"
#include "cnnpar/kernels.hpp"

namespace cnnpar {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string us(double seconds) { return fmt("%.1f", seconds * 1e6); }

std::string pad(const std::string& s, std::size_t width, bool right = true) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}


std::string split_phrase(const PlanStep& step, std::size_t ranks) {
  const std::string over = " (" + std::to_string(step.layout.items) + " over " + std::to_string(ranks) + " ranks)";
  switch (step.split) {
    case SplitKind::channel: return "split by output channel" + over;
    case SplitKind::element: return "split by element range of the C,H,W-flattened tensor" + over;
    case SplitKind::feature: return "split by output feature" + over;
    case SplitKind::input_feature:
      return "split by input feature (row-parallel: partial sums of every output)" + over;
    case SplitKind::replicated: return "replicated (every rank computes the whole layer)";
    case SplitKind::rows: return "split by output rows of every channel (spatial)" + over;
    case SplitKind::sample: return "split by image of the batch (whole weights on every rank)" + over;
    case SplitKind::tiles:
      return "split by tiles of output rows x columns on a " + std::to_string(step.grid_rows) + "x" +
             std::to_string(step.grid_cols) + " grid (" + std::to_string(step.layout.items) + " rows x " +
             std::to_string(step.second_items) + " columns)";
    case SplitKind::rows_channel:
      return "split by output rows x output channels on a " + std::to_string(step.grid_rows) + "x" +
             std::to_string(step.grid_cols) + " grid (" + std::to_string(step.layout.items) + " rows x " +
             std::to_string(step.second_items) + " channels)";
    case SplitKind::sample_channel:
      return "split by images x output channels on a " + std::to_string(step.grid_rows) + "x" +
             std::to_string(step.grid_cols) + " grid (" + std::to_string(step.layout.items) + " images x " +
             std::to_string(step.second_items) + " channels)";
  }
  return "";
}

// What the boundary after a step does, in words, for the breakdown.
std::string boundary_phrase(const RunReport& r, const PlanStep& step) {
  const std::uint64_t tensor_bytes = (step.action == BoundaryAction::allreduce ? step.reduce_elems
                                                                                : step.layout.total_elems()) *
                                     sizeof(float);
  switch (step.action) {
    case BoundaryAction::none:
      return step.split == SplitKind::replicated
                 ? "none: every rank holds the whole output"
                 : "none: the output stays sliced (the next layer reads only this rank's part)";
    case BoundaryAction::allgather:
      if (r.consolidation == "allgatherv")
        return "MPI_Allgatherv of " + with_commas(tensor_bytes) + " B in place; rank r receives 4*" +
               std::to_string(step.layout.item_elems) + "*(" + std::to_string(step.layout.items) + " - n_r) B";
      if (r.consolidation == "shared")
        return "shared window of " + with_commas(tensor_bytes) +
               " B: slices written in place, Win_sync + node barrier, read in place (0 B through MPI)";
      return "shared window per node, then MPI_Allgatherv of node blocks among the " + std::to_string(r.nodes) +
             " node leaders (" + with_commas(tensor_bytes) + " B)";
    case BoundaryAction::exchange: {
      std::uint64_t moved = 0;
      for (const ByteCount& b : r.expected_bytes[&step - r.steps.data()]) moved += b.received;
      if (r.consolidation == "allgatherv")
        return "point to point (MPI_Isend/Irecv of subarrays): each rank receives exactly the boxes the next step "
               "reads and does not hold, " + with_commas(moved) + " B in all";
      return "shared window: Win_sync + node barrier, the next step reads its boxes in place (0 B through MPI)";
    }
    case BoundaryAction::allreduce:
      if (r.consolidation == "allgatherv")
        return "sum of " + with_commas(tensor_bytes) + " B of partial outputs: MPI_Reduce_scatter + MPI_Allgatherv";
      if (r.consolidation == "shared")
        return "sum of " + with_commas(tensor_bytes) +
               " B of partial outputs in the node window (each rank reduces one block, in rank order)";
      return "node-window sum, then reduce-scatter + allgather of " + with_commas(tensor_bytes) +
             " B among node leaders";
  }
  return "";
}

// Whether any boundary is a point-to-point exchange: then its time (the halo event) gets its own column.
bool exchanges(const RunReport& r) {
  return std::any_of(r.steps.begin(), r.steps.end(),
                     [](const PlanStep& s) { return s.action == BoundaryAction::exchange; });
}

std::string rank_stat(double seconds, int rank) { return us(seconds) + " (r" + std::to_string(rank) + ")"; }

// Whether ranks read each other's data in place through shared windows (shared, hierarchical): then the bytes they
// read that way get their own column beside those received through MPI, which are 0 within a node.
bool reads_in_place(const RunReport& r) { return r.consolidation != "allgatherv"; }

std::uint64_t max_read_in_place(const RunReport& r, std::size_t stage) {
  std::uint64_t m = 0;
  for (const RankRecord& rec : r.records) m = std::max(m, rec.bytes_read_in_place[stage]);
  return m;
}

}  // namespace

std::string with_commas(std::uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string describe_slice(const PlanStep& step, std::size_t rank) {
  const Slice s = step.layout.slices.at(rank);
  auto range = [](const Slice& x) { return std::to_string(x.begin) + "-" + std::to_string(x.end() - 1); };
  if (step.two_d()) {
    const Slice t = step.second(rank);
    if (s.empty() || t.empty()) return "none";
    const char* first = step.split == SplitKind::sample_channel ? "images " : "rows ";
    const char* second = step.split == SplitKind::tiles ? " x cols " : " x ch ";
    return first + range(s) + second + range(t);
  }
  if (s.empty()) return "none";
  return std::string(split_name(step)) + " " + range(s);
}

void print_input(std::ostream& os, const RunReport& r) {
  os << "Input: " << r.input_name << ", images " << r.first_index << "-" << r.first_index + r.batch - 1 << " (B="
     << r.batch << "), " << r.rows << "x" << r.cols << " pixels scaled to [0, 1]\n";
  os << "Image " << r.first_index;
  if (r.first_label) {
    os << ", label " << int(*r.first_label);
    if (r.fashion_labels) os << " (" << fashion_mnist_class_name(*r.first_label) << ")";
  }
  os << ":\n" << ascii_art(r.first_image, r.rows, r.cols) << "\n";
}

namespace {

std::uint64_t max_received(const RunReport& r, std::size_t step) {
  std::uint64_t m = 0;
  for (const RankRecord& rec : r.records) m = std::max(m, rec.bytes_received[step + 1]);
  return m;
}

std::uint64_t max_expected_received(const RunReport& r, std::size_t step) {
  std::uint64_t m = 0;
  for (const ByteCount& b : r.expected_bytes[step]) m = std::max(m, b.received);
  return m;
}

bool bytes_match_model(const RunReport& r) {
  for (std::size_t q = 0; q < r.ranks; ++q) {
    const RankRecord& rec = r.records[q];
    if (ByteCount{rec.bytes_sent[0], rec.bytes_received[0]} != r.expected_broadcast[q]) return false;
    for (std::size_t s = 0; s < r.steps.size(); ++s)
      if (ByteCount{rec.bytes_sent[s + 1], rec.bytes_received[s + 1]} != r.expected_bytes[s][q]) return false;
  }
  return true;
}

// "conv1 + pool1 + gelu1, conv2 + pool2": the chains of steps computed by one kernel call (`with_next` per step:
// the run's or the serial reference's), or "".
std::string fused_chains(const RunReport& r, const std::vector<bool>& with_next) {
  std::string out;
  const auto fused = [&](std::size_t s) { return s < with_next.size() && with_next[s]; };
  for (std::size_t s = 0; s + 1 < r.steps.size(); ++s) {
    if (!fused(s) || (s > 0 && fused(s - 1))) continue;  // not the start of a chain
    out += (out.empty() ? "" : ", ") + r.layers[r.steps[s].layer].name;
    for (std::size_t t = s; fused(t) && t + 1 < r.steps.size(); ++t) out += " + " + r.layers[r.steps[t + 1].layer].name;
  }
  return out;
}

std::string verdict(const RunReport& r) {
  if (!r.verification) return "not verified";
  const Verification& v = *r.verification;
  for (std::size_t s = 0; s < v.steps.size(); ++s)
    if (!v.steps[s].passed())
      return "WRONG at step " + std::to_string(s + 1) + " (" + r.layers[r.steps[s].layer].name + "): " +
             (v.steps[s].exact_required ? with_commas(v.steps[s].comparison.mismatches) + " elements differ"
                                        : fmt("%.3g", v.steps[s].worst_bound_ratio) + " of the rounding bound");
  if (v.fused_passes && !v.fused_passes->bitwise_equal())
    return "NOT equal: the timed passes (fused conv + pool) and the layer-by-layer pass differ in " +
           with_commas(v.fused_passes->mismatches) + " elements";
  if (v.exact_required)
    return v.output.bitwise_equal() ? "bit-for-bit equal"
                                     : "NOT equal: " + with_commas(v.output.mismatches) + " elements differ";
  return "within the bound (row-parallel sums at " + fmt("%.2g", v.worst_bound_ratio()) +
         " of it, every other step bit for bit; output max |diff| " + fmt("%.2g", v.output.max_abs_diff) + ")";
}

}  // namespace

void print_breakdown(std::ostream& os, const RunReport& r) {
  os << "Network: " << to_string(r.net) << "\n";
  os << "Ranks: " << r.ranks << " on " << r.nodes << (r.nodes == 1 ? " node" : " nodes");
  if (r.ranks_per_node) os << " (--ranks-per-node " << r.ranks_per_node << ")";
  os << "; consolidation: " << r.consolidation << "; plan: " << r.plan << "; kernels: " << r.kernels
     << "; timings are medians of "
     << r.iterations << " iterations after " << r.warmup << " warm-up\n\n";

  {
    const std::vector<double> wait = median_per_rank(r.times, 0, Event::wait);
    const std::vector<double> transfer = median_per_rank(r.times, 0, Event::transfer);
    std::uint64_t recv = 0;
    for (const RankRecord& rec : r.records) recv = std::max(recv, rec.bytes_received[0]);
    os << "Step 0  input from rank 0: " << to_string(r.net.input) << " x B=" << r.batch << " ("
       << with_commas(r.net.input.elements() * r.batch * sizeof(float)) << " B); at most " << with_commas(recv)
       << " B received through MPI by a rank";
    if (reads_in_place(r)) os << ", " << with_commas(max_read_in_place(r, 0)) << " B read in place";
    os << "; max wait " << us(*std::max_element(wait.begin(), wait.end()))
       << " us, max transfer " << us(*std::max_element(transfer.begin(), transfer.end())) << " us\n\n";
  }

  for (std::size_t s = 0; s < r.steps.size(); ++s) {
    const PlanStep& step = r.steps[s];
    const LayerInfo& li = r.layers[step.layer];
    os << "Step " << s + 1 << "  " << li.name << ": " << li.operation << "\n";
    os << "        " << to_string(li.in) << " -> " << to_string(li.out) << " per image, B=" << r.batch << "; "
       << split_phrase(step, r.ranks) << "; " << li.op_unit << " in total: " << with_commas(layer_ops(li, r.batch));
    if (li.bias_adds_per_output)
      os << " (+" << with_commas(li.bias_adds_per_output * li.out.elements() * r.batch) << " bias adds)";
    os << "\n";
    const std::vector<double> compute = median_per_rank(r.times, s + 1, Event::compute);
    const std::vector<double> wait = median_per_rank(r.times, s + 1, Event::wait);
    const std::vector<double> transfer = median_per_rank(r.times, s + 1, Event::transfer);
    const std::vector<double> halo = median_per_rank(r.times, s + 1, Event::halo);
    const bool exchange = step.action == BoundaryAction::exchange;
    os << "        " << pad("rank", 4) << "  " << pad("owns", 22, false) << pad(li.op_unit, 18) << pad("weights B", 11)
       << pad("sent B", 11) << pad("received B", 12) << (reads_in_place(r) ? pad("in place B", 12) : "")
       << pad("compute us", 12) << pad("wait us", 10) << pad("transfer us", 13)
       << (exchange ? pad("halo us", 10) : "") << "\n";
    for (std::size_t q = 0; q < r.ranks; ++q) {
      const RankRecord& rec = r.records[q];
      os << "        " << pad(std::to_string(q), 4) << "  " << pad(describe_slice(step, q), 22, false)
         << pad(with_commas(step_ops(li, step, q, r.batch)), 18) << pad(with_commas(rec.weight_bytes[s]), 11)
         << pad(with_commas(rec.bytes_sent[s + 1]), 11) << pad(with_commas(rec.bytes_received[s + 1]), 12)
         << (reads_in_place(r) ? pad(with_commas(rec.bytes_read_in_place[s + 1]), 12) : "") << pad(us(compute[q]), 12)
         << pad(us(wait[q]), 10) << pad(us(transfer[q]), 13) << (exchange ? pad(us(halo[q]), 10) : "") << "\n";
    }
    os << "        boundary: " << boundary_phrase(r, step) << "\n\n";
  }
  if (reads_in_place(r))
    os << "in place B: bytes of other ranks' data the rank read in place through the node's shared window (what its\n"
          "next step reads that another rank stored; a sum's loads of others' partial sums), not MPI traffic;\n"
          "counted from the boxes handed out, not measured\n\n";
}

void print_summary(std::ostream& os, const RunReport& r) {
  const double P = static_cast<double>(r.ranks);
  os << "Summary (P=" << r.ranks << ", B=" << r.batch << ", " << r.consolidation << ", " << r.plan << ", kernels "
     << r.kernels
     << "; per iteration the slowest rank, median over " << r.iterations << " iterations; parallel = "
     << "compute" << (exchanges(r) ? " + halo" : "")
     << " + wait + transfer)\n";
  os << pad("layer", 11, false) << pad("ops", 14) << pad("serial us", 12) << pad("max compute", 13)
     << (exchanges(r) ? pad("max halo", 10) : "") << pad("max wait", 10) << pad("max xfer", 10) << pad("parallel us", 13) << pad("speedup", 9)
     << pad("efficiency", 12) << pad("recv B/rank", 13) << (reads_in_place(r) ? pad("in place B/rank", 17) : "")
     << "\n";
  std::uint64_t total_ops = 0, total_recv_max = 0, total_read_max = 0;
  for (std::size_t s = 0; s < r.steps.size(); ++s) {
    const LayerInfo& li = r.layers[r.steps[s].layer];
    const double compute = slowest_median(r.times, s + 1, {Event::compute});
    const double wait = slowest_median(r.times, s + 1, {Event::wait});
    const double transfer = slowest_median(r.times, s + 1, {Event::transfer});
    const double par = slowest_median_all(r.times, s + 1);
    const double speedup = par > 0 ? r.serial_layer_s[r.steps[s].layer] / par : 0;
    const std::uint64_t recv_max = max_received(r, s);
    total_ops += layer_ops(li, r.batch);
    total_recv_max += recv_max;
    os << pad(li.name, 11, false) << pad(with_commas(layer_ops(li, r.batch)), 14)
       << pad(us(r.serial_layer_s[r.steps[s].layer]), 12) << pad(us(compute), 13)
       << (exchanges(r) ? pad(us(slowest_median(r.times, s + 1, {Event::halo})), 10) : "")
       << pad(us(wait), 10)
       << pad(us(transfer), 10) << pad(us(par), 13) << pad(fmt("%.2fx", speedup), 9)
       << pad(fmt("%.0f%%", 100.0 * speedup / P), 12) << pad(with_commas(recv_max), 13)
       << (reads_in_place(r) ? pad(with_commas(max_read_in_place(r, s + 1)), 17) : "") << "\n";
    total_read_max += max_read_in_place(r, s + 1);
  }
  const double par_total = slowest_forward_median(r.times);
  const double speedup = par_total > 0 ? r.serial_forward_s / par_total : 0;
  std::uint64_t input_recv = 0;
  for (const RankRecord& rec : r.records) input_recv = std::max(input_recv, rec.bytes_received[0]);
  os << pad("forward", 11, false) << pad(with_commas(total_ops), 14) << pad(us(r.serial_forward_s), 12)
     << pad("", 13) << (exchanges(r) ? pad("", 10) : "") << pad("", 10) << pad("", 10) << pad(us(par_total), 13) << pad(fmt("%.2fx", speedup), 9)
     << pad(fmt("%.0f%%", 100.0 * speedup / P), 12) << pad(with_commas(total_recv_max + input_recv), 13)
     << (reads_in_place(r) ? pad(with_commas(total_read_max + max_read_in_place(r, 0)), 17) : "") << "\n";
  const double b = static_cast<double>(r.batch);
  os << "Throughput: " << fmt("%.0f", par_total > 0 ? b / par_total : 0) << " images/s on " << r.ranks
     << (r.ranks == 1 ? " rank" : " ranks") << ", " << fmt("%.0f", r.serial_forward_s > 0 ? b / r.serial_forward_s : 0)
     << " images/s serial (forward pass includes the input broadcast, " << with_commas(input_recv)
     << " B per rank through MPI)\n";
  if (reads_in_place(r))
    os << "In place B/rank: the most any rank read in place through the shared window (not MPI traffic; the forward "
          "row sums the layers' and the input's)\n";
  os << "Bytes: every rank's measured bytes " << (bytes_match_model(r) ? "equal" : "DIFFER FROM")
     << " the model (plan.hpp) at every boundary\n";
  if (const std::string chains = fused_chains(r, r.fused_with_next); !chains.empty())
    os << "Fused: " << chains << " run as one kernel call (only the last layer's output goes to memory), here and in "
       << "the serial reference; each layer's time is measured apart, part by part (--fusion off runs them one by one)\n";
  else if (const std::string serial = fused_chains(r, r.serial_fused_with_next); !serial.empty())
    os << "Fused in the serial reference only: " << serial << " (this plan moves data between them, so here they run "
       << "one by one, their outputs written to memory; --fusion off runs the serial reference layer by layer too)\n";

  os << "\nAcross ranks per layer: min (rank) / avg / max (rank) of the per-rank medians, efficiency = avg/max\n";
  os << pad("layer", 11, false) << pad("phase", 10, false) << pad("min us", 16) << pad("avg us", 10)
     << pad("max us", 16) << pad("efficiency", 12) << "\n";
  for (std::size_t s = 0; s < r.steps.size(); ++s) {
    for (const Event e : kAllEvents) {
      if (e == Event::pack || e == Event::unpack) continue;  // 0 by construction (records.hpp)
      const auto st = across_ranks(median_per_rank(r.times, s + 1, e));
      os << pad(r.layers[r.steps[s].layer].name, 11, false) << pad(std::string(to_string(e)), 10, false)
         << pad(rank_stat(st.min, st.min_rank), 16) << pad(us(st.avg), 10) << pad(rank_stat(st.max, st.max_rank), 16)
         << pad(fmt("%.2f", st.efficiency()), 12) << "\n";
    }
  }

  os << "\nOutput: " << r.layers.back().out.elements() << " features x B=" << r.batch << "; checksum fnv1a64=" << hex64(r.checksum)
     << " sum=" << fmt("%.9g", r.output_sum) << "\n";
  if (!r.ranks_agree) os << "WARNING: ranks hold different copies of the output\n";
  if (r.verification)
    os << "Verify: distributed vs serial reference: max |diff| = " << fmt("%.3g", r.verification->output.max_abs_diff)
       << "; " << verdict(r) << "\n";
}

void print_calibration(std::ostream& os, const CollectiveTimings& t, std::size_t ranks) {
  os << "\nCollectives alone (P=" << ranks << "; median of " << t.repetitions
     << " calls, slowest rank; n = whole message): us (GB/s = n/t)\n";
  os << pad("n bytes", 12);
  for (const std::string& c : t.collectives) os << pad(c, 22);
  os << "\n";
  for (std::size_t s = 0; s < t.bytes.size(); ++s) {
    os << pad(with_commas(t.bytes[s]), 12);
    for (std::size_t k = 0; k < t.collectives.size(); ++k) {
      const double sec = t.median_s(k, s);
      os << pad(us(sec) + " (" + fmt("%.2f", sec > 0 ? double(t.bytes[s]) / sec / 1e9 : 0) + ")", 22);
    }
    if (s < t.boundaries.size() && !t.boundaries[s].empty()) os << "  boundary of " << t.boundaries[s];
    os << "\n";
  }
  if (t.in_pass.empty()) return;
  os << "\nThe runs' gathers as a pass leaves the caches (allgatherv_in_pass: before each call every rank streams "
        "through what its kernels since the previous boundary touch, then rewrites its block): us (GB/s = n/t)\n";
  os << pad("n bytes", 12) << pad("in pass", 22) << pad("streamed B/rank (max)", 24) << "  after\n";
  for (const CollectiveTimings::InPass& e : t.in_pass) {
    const double sec = median(e.time_s);
    const std::uint64_t most = *std::max_element(e.evicted_bytes.begin(), e.evicted_bytes.end());
    const std::string rate = fmt("%.2f", sec > 0 ? double(e.bytes) / sec / 1e9 : 0);
    os << pad(with_commas(e.bytes), 12) << pad(us(sec) + " (" + rate + ")", 22) << pad(with_commas(most), 24) << "  "
       << e.layers << "\n";
  }
}

void print_comparison(std::ostream& os, const std::vector<RunReport>& runs) {
  if (runs.empty()) return;
  const RunReport& first = runs.front();
  const double P = static_cast<double>(first.ranks);
  os << "Comparison (kernels " << first.kernels << "): P=" << first.ranks << " on " << first.nodes << (first.nodes == 1 ? " node" : " nodes")
     << ", B=" << first.batch << ", medians over " << first.iterations
     << " iterations. Bytes: the most any rank received through MPI per pass, measured (model).\n";
  struct Row {
    std::string name;
    double parallel, speedup;
    std::uint64_t bytes;
    std::string verdict;
    double compute, boundary;  // sums over the stages of each stage's slowest-rank median
    std::uint64_t weights;           // the most parameter bytes any rank holds
    std::uint64_t read_in_place;     // per stage the most any rank read in place through a shared window, summed
  };
  const bool any_reads_in_place = std::any_of(runs.begin(), runs.end(), reads_in_place);
  std::vector<Row> ranking;
  for (const RunReport& r : runs) {
    os << "\n" << r.label() << ": " << verdict(r)
       << (bytes_match_model(r) ? "; bytes equal the model" : "; BYTES DIFFER FROM THE MODEL") << "\n";
    os << "  " << pad("layer", 11, false) << pad("boundary", 11, false) << pad("recv B/rank (model)", 22)
       << pad("wait us", 10) << pad("xfer us", 10) << pad("compute us", 12) << pad("parallel us", 13)
       << pad("speedup", 9) << pad("efficiency", 12) << "\n";
    std::uint64_t bytes = 0, model = 0;
    for (std::size_t s = 0; s < r.steps.size(); ++s) {
      const double par = slowest_median_all(r.times, s + 1);
      const double serial = r.serial_layer_s[r.steps[s].layer];
      const std::uint64_t got = max_received(r, s), want = max_expected_received(r, s);
      bytes += got;
      model += want;
      os << "  " << pad(r.layers[r.steps[s].layer].name, 11, false)
         << pad(std::string(to_string(r.steps[s].action)), 11, false)
         << pad(with_commas(got) + " (" + with_commas(want) + ")", 22)
         << pad(us(slowest_median(r.times, s + 1, {Event::wait})), 10)
         << pad(us(slowest_median(r.times, s + 1, {Event::transfer})), 10)
         << pad(us(slowest_median(r.times, s + 1, {Event::compute})), 12) << pad(us(par), 13)
         << pad(fmt("%.2fx", par > 0 ? serial / par : 0), 9) << pad(fmt("%.0f%%", par > 0 ? 100 * serial / par / P : 0), 12)
         << "\n";
    }
    std::uint64_t input_recv = 0, input_model = 0;
    for (std::size_t q = 0; q < r.ranks; ++q) {
      input_recv = std::max(input_recv, r.records[q].bytes_received[0]);
      input_model = std::max(input_model, r.expected_broadcast[q].received);
    }
    const double par_total = slowest_forward_median(r.times);
    const double speedup = par_total > 0 ? r.serial_forward_s / par_total : 0;
    os << "  " << pad("input", 11, false) << pad("broadcast", 11, false)
       << pad(with_commas(input_recv) + " (" + with_commas(input_model) + ")", 22) << "\n";
    os << "  " << pad("total", 19, false) << pad(with_commas(bytes + input_recv) + " (" + with_commas(model + input_model) + ")", 22)
       << pad("", 32) << pad(us(par_total), 13) << pad(fmt("%.2fx", speedup), 9)
       << pad(fmt("%.0f%%", 100 * speedup / P), 12) << "\n";
    Row row{r.label(), par_total, speedup, bytes + input_recv, verdict(r), 0, 0, 0, 0};
    for (std::size_t st = 0; st < r.stages(); ++st) {
      row.compute += slowest_median(r.times, st, {Event::compute});
      row.boundary += slowest_median(r.times, st, {Event::halo, Event::wait, Event::transfer});
      if (reads_in_place(r)) row.read_in_place += max_read_in_place(r, st);
    }
    for (const RankRecord& rec : r.records) {
      std::uint64_t held = 0;
      for (const std::uint64_t b : rec.weight_bytes) held += b;
      row.weights = std::max(row.weights, held);
    }
    ranking.push_back(row);
  }
  std::sort(ranking.begin(), ranking.end(), [](const Row& a, const Row& b) { return a.parallel < b.parallel; });
  os << "\nRanking by forward-pass time (serial: " << us(first.serial_forward_s)
     << " us). compute and boundary (halo + wait + transfer): each stage's slowest rank (median), "
        "summed over the stages"
     << (any_reads_in_place ? "; in place B/rank: each stage's most bytes of other ranks' data a rank read through the "
                              "node's shared window (not MPI traffic), summed"
                            : "")
     << "\n";
  os << "  " << pad("combination", 30, false) << pad("forward us", 12) << pad("speedup", 9) << pad("efficiency", 11)
     << pad("compute us", 12) << pad("boundary us", 14) << pad("recv B/rank", 13)
     << (any_reads_in_place ? pad("in place B/rank", 17) : "") << pad("weights B/rank", 16) << "  result\n";
  for (const Row& row : ranking)
    os << "  " << pad(row.name, 30, false) << pad(us(row.parallel), 12) << pad(fmt("%.2fx", row.speedup), 9)
       << pad(fmt("%.0f%%", 100 * row.speedup / P), 11) << pad(us(row.compute), 12)
       << pad(us(row.boundary), 14) << pad(with_commas(row.bytes), 13)
       << (any_reads_in_place ? pad(with_commas(row.read_in_place), 17) : "") << pad(with_commas(row.weights), 16) << "  "
       << row.verdict << "\n";
}

}  // namespace cnnpar
