// The command line of cnnpar_mpi. Parsing is a pure function of argv, so every rank parses the same arguments to
// the same result and agrees on errors without communicating; only rank 0 prints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnpar/plan.hpp"
#include "cnnpar/network.hpp"

namespace cnnpar {

struct Options {
  // input
  std::string images;  // IDX image file, plain or gzipped; empty = the embedded Fashion-MNIST sample
  std::string labels;  // optional IDX label file (shown next to the image); the sample has its own
  std::size_t index = 0;
  std::size_t batch = 1;
  // network
  std::string net = "seed";  // "seed", "letters", or a network spec file
  std::vector<SplitChoice> splits;  // --split
  Grid grid;                        // --grid RxC for the 2-D splits (0x0: chosen from P)
  std::size_t filters = 32, hidden = 128, conv_kernel = 3, pool_kernel = 2;
  GeluForm gelu = GeluForm::tanh;
  std::uint64_t seed = 42;
  // run
  std::size_t iterations = 100, warmup = 10;
  std::string kernels = "auto";  // --kernels: the instruction set, or auto
  bool fusion = true;            // --fusion on|off: a conv and its max-pool as one kernel where the plan allows
  ConsolidationKind consolidation = ConsolidationKind::allgatherv;
  PlanKind plan = PlanKind::per_layer;
  std::size_t ranks_per_node = 0;  // 0: nodes are the real shared-memory domains
  bool compare = false;            // run every consolidation x plan combination
  std::string compare_what;        // "plans" or "splits" (with compare)
  bool calibrate = false;          // also time the collectives alone over a range of sizes
  bool verify = false, quiet = false;
  bool progress = true;  // on an interactive terminal only
  // results
  std::string output;        // HDF5 results file, or a directory for the default name; empty: no file
  bool force = false;        // replace an existing results file
  std::string weights;       // PyTorch-layout weights file; empty: initialise from the seed
  std::string dump_tensors;  // "", "final" (input, weights, output) or "all" (also every layer's output)
  std::string command_line;  // as typed, for the record
};

struct ParsedCommandLine {
  enum class Action { run, help, version, error } action = Action::run;
  Options options;
  std::string message;  // the help text, the version, or the error (one line, naming the option)
};

ParsedCommandLine parse_command_line(int argc, const char* const* argv);

}  // namespace cnnpar
