// What rank 0 prints: the input, the layer-by-layer breakdown (who computed what, what moved, how long), and the
// summary against the serial reference. Built only from plain data (records.hpp), no MPI.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cnnpar/checksum.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/partition.hpp"
#include "cnnpar/records.hpp"

namespace cnnpar {

struct RunReport {
  // what was run
  std::string command_line;
  std::string mpi_library;
  std::string created_utc;  // ISO 8601, when the run started
  std::uint64_t seed = 0;
  std::string weights_file;  // empty: initialised from the seed
  std::string slurm_job_id, slurm_nodelist, slurm_ntasks;  // empty outside Slurm
  double timestamp_cost_s = 0;           // measured cost of one clock reading on rank 0
  std::size_t timestamps_per_pass = 0;   // clock readings the instrumentation takes per forward pass and rank
  NetworkSpec net;
  std::vector<LayerInfo> layers;
  std::vector<BoundaryLayout> boundaries;  // per layer
  std::size_t batch = 1, ranks = 1, iterations = 0, warmup = 0;
  int nodes = 1;
  std::string consolidation;
  // input
  std::string input_name;
  std::size_t first_index = 0;
  std::size_t rows = 0, cols = 0;
  std::vector<std::uint8_t> first_image;  // rows*cols pixels of the batch's first image
  std::optional<std::uint8_t> first_label;
  bool fashion_labels = false;  // label names are Fashion-MNIST's
  // measurements
  std::vector<RankRecord> records;  // one per rank
  DerivedTimes times;
  std::vector<double> serial_layer_s;  // median per layer of the serial reference on rank 0
  double serial_forward_s = 0;         // median whole serial pass
  // result
  std::uint64_t checksum = 0;
  double output_sum = 0;
  bool ranks_agree = true;  // every rank's copy of the output hashed the same
  std::optional<Comparison> verification;  // with --verify
};

// "channels 0-7", "elements 0-1351", "features 96-127", "none" for an empty slice.
std::string describe_slice(const LayerInfo& layer, const Slice& s);

// Integers with thousands separators: 194688 -> "194,688".
std::string with_commas(std::uint64_t v);

void print_input(std::ostream& os, const RunReport& r);
void print_breakdown(std::ostream& os, const RunReport& r);
void print_summary(std::ostream& os, const RunReport& r);

// Per-iteration parallel time of a layer: max over ranks of compute + wait + transfer; median over iterations.
double parallel_layer_seconds(const DerivedTimes& t, std::size_t layer);
// Median over iterations of the slowest rank's whole forward pass (broadcast included).
double parallel_forward_seconds(const std::vector<RankRecord>& records);

}  // namespace cnnpar
