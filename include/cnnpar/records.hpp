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

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cnnpar {

struct RankRecord {
  int rank = 0;
  int node = 0;          // index of this rank's node (ranks sharing memory, MPI_Comm_split_type SHARED)
  std::string host;
  std::string binding;   // CPUs this process may run on, e.g. "0-1", from sched_getaffinity
  double clock_offset_s = 0.0;
  std::size_t iterations = 0, layers = 0;
  // [iteration * layers + layer]
  std::vector<double> compute_s;
  std::vector<double> consolidate_enter_s, consolidate_exit_s;
  // [iteration]: the input broadcast, and the whole forward pass as this rank saw it
  std::vector<double> broadcast_enter_s, broadcast_exit_s;
  std::vector<double> forward_s;
  std::vector<double> forward_start_s;  // when each timed pass began on this rank's clock
  // [step] (one per layer): what the consolidation handed to MPI for this rank (per forward pass)
  std::vector<std::uint64_t> bytes_sent, bytes_received;
  std::uint64_t input_bytes_sent = 0, input_bytes_received = 0;
  std::vector<std::uint64_t> weight_bytes;  // [layer] parameters held by this rank
  // [layer] 1 if the boundary synchronises ranks (a collective); 0 if the output stays sliced, so there is nothing
  // to wait for and its wait and transfer are 0 by definition.
  std::vector<std::uint8_t> collective;
  std::uint64_t activation_bytes = 0;       // activation buffers this rank allocated (peak: all live at once)
  std::uint64_t output_fnv1a64 = 0;         // hash of this rank's copy of the final output (checksum.hpp)

  std::size_t at(std::size_t iteration, std::size_t layer) const { return iteration * layers + layer; }
};

// --calibrate: collectives timed on their own over a range of sizes, for fitting the cost model (analysis/).
// time_s[(collective * bytes.size() + size) * repetitions + repetition] is the slowest rank's time of one call.
struct CollectiveTimings {
  std::vector<std::string> collectives;  // "allgatherv", "allreduce", "bcast"
  std::vector<std::uint64_t> bytes;      // n: the whole gathered / reduced / broadcast message
  std::size_t repetitions = 0;
  std::vector<double> time_s;
  double median_s(std::size_t collective, std::size_t size) const;
};

// Per-(iteration, layer, rank) times derived from all records: index [(iteration * layers + layer) * ranks + rank].
struct DerivedTimes {
  std::size_t iterations = 0, layers = 0, ranks = 0;
  std::vector<double> compute_s, wait_s, transfer_s;
  std::vector<double> broadcast_wait_s, broadcast_transfer_s;  // [iteration * ranks + rank]
  std::size_t at(std::size_t iteration, std::size_t layer, std::size_t rank) const {
    return (iteration * layers + layer) * ranks + rank;
  }
};
DerivedTimes derive_times(const std::vector<RankRecord>& records);

double median(std::vector<double> values);  // of a copy; 0 for an empty vector

// min (rank) / avg / max (rank) of one value per rank; efficiency = avg / max (1 when max is 0).
struct AcrossRanks {
  double min = 0, avg = 0, max = 0, stdev = 0;
  int min_rank = 0, max_rank = 0;
  double efficiency() const { return max > 0 ? avg / max : 1.0; }
};
AcrossRanks across_ranks(const std::vector<double>& per_rank);

// Median over iterations of a DerivedTimes field, per rank, for one layer.
std::vector<double> median_per_rank(const DerivedTimes& t, const std::vector<double>& field, std::size_t layer);

}  // namespace cnnpar
