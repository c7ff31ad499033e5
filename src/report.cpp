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

const char* split_noun(SplitKind k) {
  switch (k) {
    case SplitKind::channels: return "channels";
    case SplitKind::elements: return "elements";
    case SplitKind::features: return "features";
  }
  return "items";
}

const char* split_phrase(SplitKind k) {
  switch (k) {
    case SplitKind::channels: return "by output channel";
    case SplitKind::elements: return "by element range of the C,H,W-flattened tensor";
    case SplitKind::features: return "by output feature";
  }
  return "";
}

std::string rank_stat(double seconds, int rank) { return us(seconds) + " (r" + std::to_string(rank) + ")"; }

}  // namespace

std::string with_commas(std::uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string describe_slice(const LayerInfo& layer, const Slice& s) {
  if (s.empty()) return "none";
  return std::string(split_noun(layer.split)) + " " + std::to_string(s.begin) + "-" + std::to_string(s.end() - 1);
}

double parallel_layer_seconds(const DerivedTimes& t, std::size_t layer) {
  std::vector<double> per_iteration(t.iterations);
  for (std::size_t i = 0; i < t.iterations; ++i) {
    double slowest = 0;
    for (std::size_t q = 0; q < t.ranks; ++q) {
      const std::size_t k = t.at(i, layer, q);
      slowest = std::max(slowest, t.compute_s[k] + t.wait_s[k] + t.transfer_s[k]);
    }
    per_iteration[i] = slowest;
  }
  return median(per_iteration);
}

double parallel_forward_seconds(const std::vector<RankRecord>& records) {
  if (records.empty()) return 0;
  std::vector<double> per_iteration(records[0].iterations, 0.0);
  for (const RankRecord& r : records)
    for (std::size_t i = 0; i < per_iteration.size(); ++i) per_iteration[i] = std::max(per_iteration[i], r.forward_s[i]);
  return median(per_iteration);
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

void print_breakdown(std::ostream& os, const RunReport& r) {
  os << "Network: " << to_string(r.net) << "\n";
  os << "Ranks: " << r.ranks << " on " << r.nodes << (r.nodes == 1 ? " node" : " nodes")
     << "; consolidation: " << r.consolidation << "; timings are medians of " << r.iterations << " iterations after "
     << r.warmup << " warm-up\n\n";

  // The input broadcast, from rank 0.
  {
    std::vector<double> wait(r.ranks), transfer(r.ranks);
    for (std::size_t q = 0; q < r.ranks; ++q) {
      std::vector<double> w(r.times.iterations), t(r.times.iterations);
      for (std::size_t i = 0; i < r.times.iterations; ++i) {
        w[i] = r.times.broadcast_wait_s[i * r.ranks + q];
        t[i] = r.times.broadcast_transfer_s[i * r.ranks + q];
      }
      wait[q] = median(w);
      transfer[q] = median(t);
    }
    const std::uint64_t bytes = r.records.size() > 1 ? r.records[1].input_bytes_received : 0;
    os << "Step 0  input broadcast from rank 0: " << to_string(r.net.input) << " x B=" << r.batch << ", "
       << with_commas(bytes) << " B to each other rank; max wait " << us(*std::max_element(wait.begin(), wait.end()))
       << " us, max transfer " << us(*std::max_element(transfer.begin(), transfer.end())) << " us\n\n";
  }

  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    const LayerInfo& li = r.layers[l];
    const BoundaryLayout& b = r.boundaries[l];
    os << "Step " << l + 1 << "  " << li.name << ": " << li.operation << "\n";
    os << "        " << to_string(li.in) << " -> " << to_string(li.out) << " per image, B=" << r.batch << "; split "
       << split_phrase(li.split) << " (" << li.split_items << " over " << r.ranks << " ranks); " << li.op_unit
       << " in total: " << with_commas(layer_ops(li, r.batch));
    if (li.bias_adds_per_item_per_image)
      os << " (+" << with_commas(li.bias_adds_per_item_per_image * li.split_items * r.batch) << " bias adds)";
    os << "\n";
    const std::vector<double> compute = median_per_rank(r.times, r.times.compute_s, l);
    const std::vector<double> wait = median_per_rank(r.times, r.times.wait_s, l);
    const std::vector<double> transfer = median_per_rank(r.times, r.times.transfer_s, l);
    os << "        " << pad("rank", 4) << "  " << pad("owns", 20, false) << pad(li.op_unit, 18) << pad("weights B", 11)
       << pad("sent B", 11) << pad("received B", 12) << pad("compute us", 12) << pad("wait us", 10)
       << pad("transfer us", 13) << "\n";
    for (std::size_t q = 0; q < r.ranks; ++q) {
      const Slice s = b.slices[q];
      const RankRecord& rec = r.records[q];
      os << "        " << pad(std::to_string(q), 4) << "  " << pad(describe_slice(li, s), 20, false)
         << pad(with_commas(s.count * li.ops_per_item_per_image * r.batch), 18)
         << pad(with_commas(rec.weight_bytes[l]), 11) << pad(with_commas(rec.bytes_sent[l]), 11)
         << pad(with_commas(rec.bytes_received[l]), 12) << pad(us(compute[q]), 12) << pad(us(wait[q]), 10)
         << pad(us(transfer[q]), 13) << "\n";
    }
    os << "        consolidation: MPI_Allgatherv of " << with_commas(b.total_elems() * sizeof(float))
       << " B; rank r receives 4*" << b.item_elems << "*(" << b.items << " - n_r) B\n\n";
  }
}

void print_summary(std::ostream& os, const RunReport& r) {
  const double P = static_cast<double>(r.ranks);
  os << "Summary (P=" << r.ranks << ", B=" << r.batch << ", " << r.consolidation << "; medians over " << r.iterations
     << " iterations; parallel = slowest rank's compute + wait + transfer)\n";
  os << pad("layer", 8, false) << pad("ops", 14) << pad("serial us", 12) << pad("max compute", 13)
     << pad("max wait", 10) << pad("max xfer", 10) << pad("parallel us", 13) << pad("speedup", 9)
     << pad("efficiency", 12) << pad("recv B/rank", 13) << "\n";
  std::uint64_t total_ops = 0, total_recv_max = 0;
  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    const auto compute = across_ranks(median_per_rank(r.times, r.times.compute_s, l));
    const auto wait = across_ranks(median_per_rank(r.times, r.times.wait_s, l));
    const auto transfer = across_ranks(median_per_rank(r.times, r.times.transfer_s, l));
    const double par = parallel_layer_seconds(r.times, l);
    const double speedup = par > 0 ? r.serial_layer_s[l] / par : 0;
    std::uint64_t recv_max = 0;
    for (const RankRecord& rec : r.records) recv_max = std::max(recv_max, rec.bytes_received[l]);
    total_ops += layer_ops(r.layers[l], r.batch);
    total_recv_max += recv_max;
    os << pad(r.layers[l].name, 8, false) << pad(with_commas(layer_ops(r.layers[l], r.batch)), 14)
       << pad(us(r.serial_layer_s[l]), 12) << pad(us(compute.max), 13) << pad(us(wait.max), 10)
       << pad(us(transfer.max), 10) << pad(us(par), 13) << pad(fmt("%.2fx", speedup), 9)
       << pad(fmt("%.0f%%", 100.0 * speedup / P), 12) << pad(with_commas(recv_max), 13) << "\n";
  }
  const double par_total = parallel_forward_seconds(r.records);
  const double speedup = par_total > 0 ? r.serial_forward_s / par_total : 0;
  const std::uint64_t input_recv = r.records.size() > 1 ? r.records[1].input_bytes_received : 0;
  os << pad("forward", 8, false) << pad(with_commas(total_ops), 14) << pad(us(r.serial_forward_s), 12)
     << pad("", 13) << pad("", 10) << pad("", 10) << pad(us(par_total), 13) << pad(fmt("%.2fx", speedup), 9)
     << pad(fmt("%.0f%%", 100.0 * speedup / P), 12) << pad(with_commas(total_recv_max + input_recv), 13) << "\n";
  const double b = static_cast<double>(r.batch);
  os << "Throughput: " << fmt("%.0f", par_total > 0 ? b / par_total : 0) << " images/s on " << r.ranks
     << (r.ranks == 1 ? " rank" : " ranks") << ", " << fmt("%.0f", r.serial_forward_s > 0 ? b / r.serial_forward_s : 0)
     << " images/s serial (forward pass includes the input broadcast of " << with_commas(input_recv)
     << " B per rank)\n";

  os << "\nAcross ranks per layer: min (rank) / avg / max (rank) of the per-rank medians, efficiency = avg/max\n";
  os << pad("layer", 8, false) << pad("phase", 10, false) << pad("min us", 16) << pad("avg us", 10)
     << pad("max us", 16) << pad("efficiency", 12) << "\n";
  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    const std::pair<const char*, const std::vector<double>*> phases[] = {
        {"compute", &r.times.compute_s}, {"wait", &r.times.wait_s}, {"transfer", &r.times.transfer_s}};
    for (const auto& [name, field] : phases) {
      const auto s = across_ranks(median_per_rank(r.times, *field, l));
      os << pad(r.layers[l].name, 8, false) << pad(name, 10, false) << pad(rank_stat(s.min, s.min_rank), 16)
         << pad(us(s.avg), 10) << pad(rank_stat(s.max, s.max_rank), 16) << pad(fmt("%.2f", s.efficiency()), 12)
         << "\n";
    }
  }

  os << "\nOutput: " << r.layers.back().out.c << " features x B=" << r.batch << "; checksum fnv1a64=" << hex64(r.checksum)
     << " sum=" << fmt("%.9g", r.output_sum) << "\n";
  if (!r.ranks_agree) os << "WARNING: ranks hold different copies of the output\n";
  if (r.verification) {
    const Comparison& c = *r.verification;
    os << "Verify: distributed vs serial reference: max |diff| = " << fmt("%.3g", c.max_abs_diff) << "; "
       << (c.bitwise_equal() ? std::string("bit-for-bit equal")
                             : "NOT equal: " + with_commas(c.mismatches) + " elements differ")
       << "\n";
  }
}

}  // namespace cnnpar
