// The experiment: set-up -> timing rounds -> collect -> verify -> a typed result (report.hpp's RunReport per
// combination). main parses the command line, hands the set-up here, and presents the result (report.hpp,
// results_file.hpp); nothing here prints a report or writes a file.
//
// Rounds. The serial reference and every combination (consolidation x plan) run their share of the iterations in
// each of up to 10 rounds, so that a machine whose speed drifts during the job (a busy or oversubscribed node,
// frequency changes) affects them alike and their ratios (speedup, efficiency) stay meaningful; each share re-warms
// its caches with up to 2 untimed passes (all --warmup passes in the first round). While rank 0 times serial passes
// the others wait in a sleeping barrier, so they do not steal its core. The serial reference uses preallocated
// buffers (SerialReference), as the distributed pass does, so at P = 1 the two time the same work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cnnpar/consolidation.hpp"
#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/report.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

// One way to run the network: a consolidation, a plan and the plan's per-layer split choices. `decomposition` names
// a cut of --compare splits ("rows", "sample", ...); empty when the plan (and --split) alone describe it.
struct Combination {
  ConsolidationKind consolidation;
  PlanKind plan;
  std::string decomposition;
  std::vector<SplitChoice> splits;
};

struct ExperimentSetup {
  NetworkSpec net;
  std::vector<Combination> combinations;
  std::size_t batch = 1, iterations = 100, warmup = 10;
  Grid grid;  // --grid for the 2-D splits (0 x 0: the default factorisation of P)
  std::uint64_t seed = 42;
  std::string weights_file;   // empty: initialise from the seed
  bool verify = false;        // check every combination against the serial reference (verify.hpp)
  bool keep_outputs = false;  // keep the first combination's every layer output (for --dump-tensors all)
  bool calibrate = false;
  // --fusion: a convolution and the max-pooling after it run as one kernel where the plan allows (plan.hpp:
  // fuses_with_next) in the serial reference and the timed passes; every step's output is then collected from one
  // more, layer-by-layer pass, whose final output must equal the timed passes' bit for bit (verify.hpp).
  bool fuse = true;
  bool progress = false;      // rank 0 shows the pass count on an interactive terminal
};

// Every combination --compare runs on this topology (shared windows need one node), with --split's choices.
std::vector<Combination> all_combinations(const NodeMap& nodes, const std::vector<SplitChoice>& splits = {});
// --compare splits: the decompositions of the same network side by side, each under every consolidation that can
// run it here: channel (the seed's per-layer cut), fused (channel chains, row-parallel linear), rows (every
// spatial layer by output rows with halo exchange, linear layers by feature), tiles (rows x columns on the grid),
// sample (every layer by image), rows-channel and sample-channel (2-D grids; GELU after a linear layer keeps the
// plan's split).
std::vector<Combination> split_combinations(const std::vector<LayerInfo>& layers, const NodeMap& nodes,
                                            std::size_t batch, Grid grid = {});

// The layers and every combination's plan, or std::invalid_argument / NetworkError naming what cannot run. A pure
// function of the set-up and the topology, so every rank reaches the same verdict without communicating.
std::vector<LayerInfo> check_setup(const ExperimentSetup& setup, const NodeMap& nodes);

struct ExperimentResult {  // complete on rank 0; the other ranks hold nothing
  std::vector<RunReport> runs;  // one per combination, in the set-up's order
  std::vector<float> input;     // the network input (activation layout)
  std::vector<LayerWeights> full_weights;         // every layer, every row
  std::vector<float> output;                      // the first run's final output, [B][features]
  std::vector<std::vector<float>> layer_outputs;  // keep_outputs: the first run's every step output, collected
  std::optional<CollectiveTimings> calibration;
  bool passed() const;  // every run verified (when asked) and every rank's output identical
};

// Collective. `input` (rank 0 only): the batch in the activation layout. check_setup must have passed.
ExperimentResult run_experiment(Runtime& rt, const Topology& topo, const ExperimentSetup& setup,
                                std::vector<float> input);

}  // namespace cnnpar
