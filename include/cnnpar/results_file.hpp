// The results file: one self-describing HDF5 file per run, written by rank 0 only, from plain records. The schema
// (every group, dataset, shape, type and unit) is documented in docs/results-schema.md; kResultsSchemaVersion
// changes whenever a dataset is renamed, removed or changes meaning.
#pragma once

#include <filesystem>
#include <string_view>
#include <string>
#include <vector>

#include "cnnpar/h5.hpp"
#include "cnnpar/report.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

inline constexpr int kResultsSchemaVersion = 1;
inline constexpr const char* kResultsSchemaName = "cnnpar-results";

// Optional tensors for outside tools (--dump-tensors), all in PyTorch layouts.
struct TensorDump {
  std::vector<float> input;                          // [B][C][H][W]
  std::vector<LayerWeights> weights;                 // full tensors of every layer with parameters
  std::vector<std::vector<float>> layer_outputs;     // per layer [B][C][H][W] (or [B][O]); empty unless "all"
  std::vector<float> output;                         // [B][O]
};

// Writes one run's schema into `where` (the file's root, or a group such as /compare/<combination>).
void write_run(const h5::Location& where, const RunReport& report, const TensorDump* tensors);

// /calibration (--calibrate), at the file's root: collective [K] strings, bytes [S], time_s [K, S, R].
void write_calibration(const h5::Location& where, const CollectiveTimings& t, std::size_t ranks, int nodes);

// The whole file, atomically (h5::write_atomically): it refuses to replace an existing file unless `force`.
void write_results_file(const std::filesystem::path& path, bool force, const RunReport& report,
                        const TensorDump* tensors);

// "cnnpar_np4_b1_allgatherv_per-layer.h5": the default name, carrying the configuration.
std::string results_name(std::size_t ranks, std::size_t batch, std::string_view consolidation, std::string_view plan);
std::string default_results_name(const RunReport& report);

// A --compare file: one group per combination under /compare/<consolidation>_<plan>/, each with the schema of a
// single run, and /meta at the root describing the whole job (its combinations attribute lists the groups).
void write_compare_file(const std::filesystem::path& path, bool force, const std::vector<RunReport>& runs);

}  // namespace cnnpar
