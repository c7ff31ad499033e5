// Instrumentation records: what one rank measured, as plain data (gathered to rank 0, reported, written to HDF5),
// and the statistics derived from all ranks' records. No MPI here.
//
// Clocks. Timestamps are this rank's std::chrono::steady_clock in seconds. derive_times adds clock_offset_s, estimated
// at start-up by ping-pong with rank 0 (the minimum-round-trip sample of several, Cristian's method), so that entry
// times of one collective on different ranks are comparable. On one node the offset is ~0 (one kernel clock).
//
// Wait vs transfer. For each consolidation call rank r records when it entered and left the collective. With
// t_last = the latest entry over all ranks: wait_r = t_last - enter_r (time spent only because others arrived
// later), transfer_r = exit_r - max(enter_r, t_last) (time from the moment everyone was there until this rank had its
// data). Both are clamped at 0 to absorb the offset estimate's error (reported per rank as clock_offset_s).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cnnpar {

// The timed events of one stage of a forward pass. Stage 0 is the input broadcast, stage s + 1 plan step s. Every
// stage has every event (the broadcast computes nothing: its compute is 0). Adding a measurement means adding it
// here, timing it where it happens, and documenting it in docs/results-schema.md: the record, the gather, the
// statistics and the results file loop over kAllEvents.
enum class Event : std::uint8_t {
  pack,      // 0: no split copies its region any more (the kernels compute boxes in place). Kept so the results
             // schema keeps its events; files written before this held the rows/sample steps' copy into a buffer
  compute,   // the kernel on the rank's region
  unpack,    // 0, as pack (before: the copy of the kernel's compact output into the layer's tensor)
  halo,      // an exchange boundary (halos, redistribution): the rank's point-to-point exchange, entry to exit. Its
             // partners are only the ranks it trades boxes with, so the all-ranks skew rule does not split it
  wait,      // in a collective boundary until the last rank arrived (derived: see above)
  transfer,  // in a collective boundary after everyone arrived (derived)
};
inline constexpr std::array<Event, 6> kAllEvents = {Event::pack, Event::compute, Event::unpack, Event::halo,
                                                    Event::wait, Event::transfer};
// The events of a collective boundary, which the input broadcast (stage 0) also has.
inline constexpr bool is_boundary_event(Event e) { return e == Event::wait || e == Event::transfer; }
inline constexpr std::size_t kEventCount = kAllEvents.size();
std::string_view to_string(Event e);  // "compute", "wait", "transfer"

// Index of a stage's event in the dense per-rank arrays: [iteration][stage][event].
struct EventIndex {
  std::size_t iterations = 0, stages = 0;
  std::size_t at(std::size_t iteration, std::size_t stage, Event e) const {
    return (iteration * stages + stage) * kEventCount + static_cast<std::size_t>(e);
  }
  std::size_t size() const { return iterations * stages * kEventCount; }
};

struct RankRecord {
  int rank = 0;
  int node = 0;          // index of this rank's node (ranks sharing memory, MPI_Comm_split_type SHARED)
  std::string host;
  std::string binding;   // CPUs this process may run on, e.g. "0-1", from sched_getaffinity
  double clock_offset_s = 0.0;
  EventIndex index;      // stages = plan steps + 1 (the input broadcast)
  // [iteration][stage][event]: when each event began and ended on this rank's clock. A rank times its compute itself;
  // a boundary it sees only as one interval, entered and left, recorded as wait's begin and transfer's end (where
  // wait ends and transfer begins depends on the other ranks: derive_times fills it in).
  std::vector<double> begin_s, end_s;
  // [iteration]: the whole forward pass as this rank saw it, and when it began
  std::vector<double> forward_s, forward_start_s;
  // [stage]: what the consolidation handed to MPI for this rank (per forward pass)
  std::vector<std::uint64_t> bytes_sent, bytes_received;
  // [stage]: bytes of other ranks' data this rank read in place through a shared window (consolidation.hpp's
  // ConsolidationSample), per forward pass; 0 under allgatherv
  std::vector<std::uint64_t> bytes_read_in_place;
  std::vector<std::uint64_t> weight_bytes;  // [step] parameters held by this rank
  // [stage] 1 if the boundary synchronises ranks (a collective); 0 if nothing moves, so there is nothing to wait for
  // and its wait and transfer are 0 by definition.
  std::vector<std::uint8_t> collective;
  // [stage * P + world rank]: bytes this rank passed to MPI for each rank in the last timed pass, recorded at the MPI
  // interface (comm_log.hpp), independently of bytes_sent; its sum over ranks is bytes_sent[stage].
  std::vector<std::uint64_t> sent_to;
  // [stage * P + world rank]: of bytes_read_in_place, what each rank had stored in the window (the last timed pass);
  // empty when nothing was read in place (allgatherv).
  std::vector<std::uint64_t> read_from;
  std::uint64_t activation_bytes = 0;       // activation buffers this rank allocated (peak: all live at once)
  std::uint64_t output_fnv1a64 = 0;         // hash of this rank's copy of the final output (checksum.hpp)

  RankRecord() = default;
  RankRecord(std::size_t iterations, std::size_t steps);  // sized, zeroed; every stage collective
  std::size_t steps() const { return index.stages - 1; }
  void stamp(std::size_t iteration, std::size_t stage, Event e, double begin, double end) {
    begin_s[index.at(iteration, stage, e)] = begin;
    end_s[index.at(iteration, stage, e)] = end;
  }
  // A stage's reads in place: `from` per world rank, and their total.
  void note_reads(std::size_t stage, std::span<const std::uint64_t> from, std::uint64_t total) {
    bytes_read_in_place[stage] = total;
    if (from.empty()) return;
    read_from.resize(index.stages * from.size());
    std::copy(from.begin(), from.end(), read_from.begin() + static_cast<std::ptrdiff_t>(stage * from.size()));
  }
  // A boundary (or the broadcast) entered at `enter` and left at `exit`.
  void stamp_boundary(std::size_t iteration, std::size_t stage, double enter, double exit) {
    begin_s[index.at(iteration, stage, Event::wait)] = enter;
    end_s[index.at(iteration, stage, Event::transfer)] = exit;
  }
};

// --calibrate: collectives timed on their own over a range of sizes, for fitting the cost model (analysis/).
// time_s[(collective * bytes.size() + size) * repetitions + repetition] is the slowest rank's time of one call.
struct CollectiveTimings {
  std::vector<std::string> collectives;  // "allgatherv", "allreduce", "bcast"
  std::vector<std::uint64_t> bytes;      // n: the whole gathered / reduced / broadcast message
  // Per size: the layers whose boundary moves exactly n bytes in this run ("conv", "pool,gelu"), "" for the grid.
  std::vector<std::string> boundaries;
  std::size_t repetitions = 0;
  std::vector<double> time_s;
  double median_s(std::size_t collective, std::size_t size) const;
  // The runs' gather boundaries timed as a pass leaves the caches (allgatherv_in_pass): before each call every rank
  // reads the whole tensor, streams through as many bytes of its own as the kernels since the previous boundary
  // touch on it, then rewrites its own block (plan.hpp: step_touched_bytes), so the call starts from the caches the
  // pass leaves it. A kernel between two gathers evicts what the fresh Allgatherv keeps, and a gather in a pass is
  // slower than the fresh one (docs/simulation.md measures both at P = 2).
  struct InPass {
    std::string layers;                   // the steps since the previous boundary, "conv+pool" or "pool"
    std::uint64_t bytes = 0;              // n: the whole gathered tensor
    std::vector<std::uint64_t> evicted_bytes;  // [rank] bytes streamed before each call
    std::vector<double> time_s;           // [repetition] slowest rank
  };
  std::vector<InPass> in_pass;
};

// Every rank's events on rank 0's clock (clock offsets applied), with each boundary split into wait and transfer:
// begin/end [(iteration * stages + stage) * events + event][rank]... laid out as at(iteration, stage, event, rank).
struct DerivedTimes {
  std::size_t iterations = 0, stages = 0, ranks = 0;
  std::vector<double> begin_s, end_s;
  std::vector<double> forward_s;  // [iteration * ranks + rank]
  std::size_t at(std::size_t iteration, std::size_t stage, Event e, std::size_t rank) const {
    return ((iteration * stages + stage) * kEventCount + static_cast<std::size_t>(e)) * ranks + rank;
  }
  double seconds(std::size_t iteration, std::size_t stage, Event e, std::size_t rank) const {
    const std::size_t k = at(iteration, stage, e, rank);
    return end_s[k] - begin_s[k];
  }
};
DerivedTimes derive_times(const std::vector<RankRecord>& records);

double median(std::vector<double> values);  // of a copy; 0 for an empty vector

// The statistics every report uses (terminal, results file readers, analysis/stats.py), defined once:
//   slowest_median: per iteration the slowest rank's sum of the given events, then the median over iterations. The
//     "max compute", "max wait", "parallel" (compute + wait + transfer) figures of the summary and comparison.
//   median_per_rank: per rank the median over iterations (the breakdown's per-rank columns and the across-ranks
//     table: min / avg / max of these).
double slowest_median(const DerivedTimes& t, std::size_t stage, std::initializer_list<Event> events);
// The parallel time of a stage: the same over every event (pack + compute + unpack + halo + wait + transfer).
double slowest_median_all(const DerivedTimes& t, std::size_t stage);
std::vector<double> median_per_rank(const DerivedTimes& t, std::size_t stage, Event e);
// The whole forward pass: per iteration the slowest rank, median over iterations.
double slowest_forward_median(const DerivedTimes& t);

// min (rank) / avg / max (rank) of one value per rank; efficiency = avg / max (1 when max is 0).
struct AcrossRanks {
  double min = 0, avg = 0, max = 0, stdev = 0;
  int min_rank = 0, max_rank = 0;
  double efficiency() const { return max > 0 ? avg / max : 1.0; }
};
AcrossRanks across_ranks(const std::vector<double>& per_rank);

}  // namespace cnnpar
