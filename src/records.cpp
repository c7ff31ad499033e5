// Statistics over gathered records (see records.hpp).
#include "cnnpar/records.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cnnpar {

DerivedTimes derive_times(const std::vector<RankRecord>& records) {
  DerivedTimes t;
  if (records.empty()) return t;
  t.iterations = records[0].iterations;
  t.layers = records[0].layers;
  t.ranks = records.size();
  for (const RankRecord& r : records)
    if (r.iterations != t.iterations || r.layers != t.layers)
      throw std::logic_error("derive_times: ranks recorded different iteration or layer counts");
  const std::size_t n = t.iterations * t.layers * t.ranks;
  t.compute_s.resize(n);
  t.wait_s.resize(n);
  t.transfer_s.resize(n);
  t.broadcast_wait_s.resize(t.iterations * t.ranks);
  t.broadcast_transfer_s.resize(t.iterations * t.ranks);

  // The skew rule of records.hpp, for one collective call seen by every rank.
  auto split = [&](auto enter_of, auto exit_of, double* wait, double* transfer) {
    double last = enter_of(records[0]);
    for (const RankRecord& r : records) last = std::max(last, enter_of(r));
    for (std::size_t q = 0; q < t.ranks; ++q) {
      const double enter = enter_of(records[q]);
      wait[q] = std::max(0.0, last - enter);
      transfer[q] = std::max(0.0, exit_of(records[q]) - std::max(enter, last));
    }
  };
  for (std::size_t i = 0; i < t.iterations; ++i) {
    for (std::size_t l = 0; l < t.layers; ++l) {
      const std::size_t k = records[0].at(i, l);
      for (std::size_t q = 0; q < t.ranks; ++q) t.compute_s[t.at(i, l, q)] = records[q].compute_s[k];
      if (!records[0].collective.empty() && !records[0].collective[l]) continue;  // wait, transfer stay 0
      split([k](const RankRecord& r) { return r.consolidate_enter_s[k] + r.clock_offset_s; },
            [k](const RankRecord& r) { return r.consolidate_exit_s[k] + r.clock_offset_s; }, &t.wait_s[t.at(i, l, 0)],
            &t.transfer_s[t.at(i, l, 0)]);
    }
    split([i](const RankRecord& r) { return r.broadcast_enter_s[i] + r.clock_offset_s; },
          [i](const RankRecord& r) { return r.broadcast_exit_s[i] + r.clock_offset_s; }, &t.broadcast_wait_s[i * t.ranks],
          &t.broadcast_transfer_s[i * t.ranks]);
  }
  return t;
}

double CollectiveTimings::median_s(std::size_t collective, std::size_t size) const {
  const auto first = time_s.begin() + static_cast<std::ptrdiff_t>((collective * bytes.size() + size) * repetitions);
  return median(std::vector<double>(first, first + static_cast<std::ptrdiff_t>(repetitions)));
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

AcrossRanks across_ranks(const std::vector<double>& per_rank) {
  AcrossRanks s;
  if (per_rank.empty()) return s;
  s.min = s.max = per_rank[0];
  double sum = 0;
  for (std::size_t r = 0; r < per_rank.size(); ++r) {
    const double v = per_rank[r];
    sum += v;
    if (v < s.min) s.min = v, s.min_rank = static_cast<int>(r);
    if (v > s.max) s.max = v, s.max_rank = static_cast<int>(r);
  }
  s.avg = sum / static_cast<double>(per_rank.size());
  double sq = 0;
  for (const double v : per_rank) sq += (v - s.avg) * (v - s.avg);
  s.stdev = std::sqrt(sq / static_cast<double>(per_rank.size()));
  return s;
}

std::vector<double> median_per_rank(const DerivedTimes& t, const std::vector<double>& field, std::size_t layer) {
  std::vector<double> out(t.ranks);
  std::vector<double> samples(t.iterations);
  for (std::size_t q = 0; q < t.ranks; ++q) {
    for (std::size_t i = 0; i < t.iterations; ++i) samples[i] = field[t.at(i, layer, q)];
    out[q] = median(samples);
  }
  return out;
}

}  // namespace cnnpar
