// What rank 0 prints: the input, the layer-by-layer breakdown (who computed what, what moved, how long), the summary
// against the serial reference, and the side-by-side comparison of consolidation strategies and plans. Built only
// from plain data (records.hpp, plan.hpp), no MPI.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cnnpar/checksum.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/plan.hpp"
#include "cnnpar/records.hpp"
#include "cnnpar/verify.hpp"

namespace cnnpar {

struct RunReport {
  // what was run
  std::string command_line;
  std::string mpi_library;
  std::string kernels;  // the kernels' instruction set (kernels.hpp kernel_target)
  bool fusion = true;    // --fusion
  // [step] computed with the next step by one kernel (a conv and its max-pool: plan.hpp fuses_with_next)
  std::vector<bool> fused_with_next;
  std::vector<bool> serial_fused_with_next;  // [layer] the same for the serial reference (the plan of one rank)
  std::string created_utc;  // ISO 8601, when the run started
  std::uint64_t seed = 0;
  std::string weights_file;  // empty: initialised from the seed
  std::string slurm_job_id, slurm_nodelist, slurm_ntasks;  // empty outside Slurm
  double timestamp_cost_s = 0;           // measured cost of one clock reading on rank 0
  std::size_t timestamps_per_pass = 0;   // clock readings the instrumentation takes per forward pass and rank
  NetworkSpec net;
  std::vector<LayerInfo> layers;
  std::vector<PlanStep> steps;  // one per layer
  std::vector<SplitChoice> splits;  // --split
  std::size_t batch = 1, ranks = 1, iterations = 0, warmup = 0;
  int nodes = 1;
  std::size_t ranks_per_node = 0;  // --ranks-per-node (0: the real shared-memory domains)
  std::string consolidation, plan;
  std::string decomposition;  // --compare splits: the cut's name ("rows", "sample", ...); empty otherwise
  // How the run is named in comparisons and file groups: "<consolidation> / <decomposition or plan>".
  std::string label() const { return consolidation + " / " + (decomposition.empty() ? plan : decomposition); }
  // the byte model, per step and rank, and for the input broadcast per rank (plan.hpp)
  std::vector<std::vector<ByteCount>> expected_bytes;
  std::vector<ByteCount> expected_broadcast;
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
  std::optional<Verification> verification;  // with --verify (always in --compare)
  std::size_t stages() const { return steps.size() + 1; }  // the input broadcast, then one per step
  std::optional<CollectiveTimings> calibration;  // with --calibrate
};

// What a rank owns at a step: "channels 0-7", "elements 0-1351", "rows 0-12 x cols 13-25", "none" when empty.
std::string describe_slice(const PlanStep& step, std::size_t rank);

// Integers with thousands separators: 194688 -> "194,688".
std::string with_commas(std::uint64_t v);

void print_input(std::ostream& os, const RunReport& r);
void print_breakdown(std::ostream& os, const RunReport& r);
void print_summary(std::ostream& os, const RunReport& r);
// One block per combination (per layer and total: bytes per rank measured and modelled, wait, transfer, compute,
// parallel time, speedup, efficiency), then a ranking.
void print_comparison(std::ostream& os, const std::vector<RunReport>& runs);

// The --calibrate table: median time per collective and size, and the bandwidth n/t it implies.
void print_calibration(std::ostream& os, const CollectiveTimings& t, std::size_t ranks);

}  // namespace cnnpar
