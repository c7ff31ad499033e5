// Statistics over gathered records (see records.hpp).
#include "cnnpar/records.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cnnpar {

std::string_view to_string(Event e) {
  switch (e) {
    case Event::pack: return "pack";
    case Event::compute: return "compute";
    case Event::unpack: return "unpack";
    case Event::halo: return "halo";
    case Event::wait: return "wait";
    case Event::transfer: return "transfer";
  }
  return "unknown";
}

RankRecord::RankRecord(std::size_t iterations, std::size_t steps)
    : index{iterations, steps + 1},
      begin_s(index.size(), 0.0),
      end_s(index.size(), 0.0),
      forward_s(iterations, 0.0),
      forward_start_s(iterations, 0.0),
      bytes_sent(steps + 1, 0),
      bytes_received(steps + 1, 0),
      bytes_read_in_place(steps + 1, 0),
      collective(steps + 1, 1) {}

DerivedTimes derive_times(const std::vector<RankRecord>& records) {
  DerivedTimes t;
  if (records.empty()) return t;
  t.iterations = records[0].index.iterations;
  t.stages = records[0].index.stages;
  t.ranks = records.size();
  for (const RankRecord& r : records)
    if (r.index.iterations != t.iterations || r.index.stages != t.stages)
      throw std::logic_error("derive_times: ranks recorded different iteration or stage counts");
  t.begin_s.resize(t.iterations * t.stages * kEventCount * t.ranks);
  t.end_s.resize(t.begin_s.size());
  t.forward_s.resize(t.iterations * t.ranks);
  for (std::size_t i = 0; i < t.iterations; ++i) {
    for (std::size_t q = 0; q < t.ranks; ++q) t.forward_s[i * t.ranks + q] = records[q].forward_s[i];
    for (std::size_t st = 0; st < t.stages; ++st) {
      // Every event on rank 0's clock, as recorded.
      for (const Event e : kAllEvents)
        for (std::size_t q = 0; q < t.ranks; ++q) {
          const std::size_t k = records[q].index.at(i, st, e);
          t.begin_s[t.at(i, st, e, q)] = records[q].begin_s[k] + records[q].clock_offset_s;
          t.end_s[t.at(i, st, e, q)] = records[q].end_s[k] + records[q].clock_offset_s;
        }
      // The skew rule: the boundary's wait ends, and its transfer begins, when the last rank entered.
      const bool collective = records[0].collective.empty() || records[0].collective[st];
      double last = -INFINITY;
      for (std::size_t q = 0; q < t.ranks; ++q) last = std::max(last, t.begin_s[t.at(i, st, Event::wait, q)]);
      for (std::size_t q = 0; q < t.ranks; ++q) {
        const double enter = t.begin_s[t.at(i, st, Event::wait, q)];
        const double exit = t.end_s[t.at(i, st, Event::transfer, q)];
        const double split = collective ? std::max(enter, last) : enter;
        t.end_s[t.at(i, st, Event::wait, q)] = split;
        // A rank can leave before the last one entered (the broadcast's root): then its transfer is empty.
        t.begin_s[t.at(i, st, Event::transfer, q)] = collective ? std::min(split, exit) : exit;
      }
    }
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

namespace {

// The one statistic (records.hpp) over any set of events.
template <class Events>
double slowest_median_of(const DerivedTimes& t, std::size_t stage, const Events& events) {
  std::vector<double> per_iteration(t.iterations, 0.0);
  for (std::size_t i = 0; i < t.iterations; ++i)
    for (std::size_t q = 0; q < t.ranks; ++q) {
      double sum = 0;
      for (const Event e : events) sum += t.seconds(i, stage, e, q);
      per_iteration[i] = std::max(per_iteration[i], sum);
    }
  return median(per_iteration);
}

}  // namespace

double slowest_median(const DerivedTimes& t, std::size_t stage, std::initializer_list<Event> events) {
  return slowest_median_of(t, stage, events);
}

double slowest_median_all(const DerivedTimes& t, std::size_t stage) { return slowest_median_of(t, stage, kAllEvents); }

double slowest_forward_median(const DerivedTimes& t) {
  std::vector<double> per_iteration(t.iterations, 0.0);
  for (std::size_t i = 0; i < t.iterations; ++i)
    for (std::size_t q = 0; q < t.ranks; ++q)
      per_iteration[i] = std::max(per_iteration[i], t.forward_s[i * t.ranks + q]);
  return median(per_iteration);
}

std::vector<double> median_per_rank(const DerivedTimes& t, std::size_t stage, Event e) {
  std::vector<double> out(t.ranks), samples(t.iterations);
  for (std::size_t q = 0; q < t.ranks; ++q) {
    for (std::size_t i = 0; i < t.iterations; ++i) samples[i] = t.seconds(i, stage, e, q);
    out[q] = median(samples);
  }
  return out;
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

}  // namespace cnnpar
