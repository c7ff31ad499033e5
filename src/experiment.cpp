// The experiment engine (see experiment.hpp).
#include "cnnpar/experiment.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "cnnpar/distributed.hpp"
#include "cnnpar/kernels.hpp"
#include "cnnpar/reference.hpp"
#include "cnnpar/verify.hpp"
#include "cnnpar/weights_file.hpp"

namespace cnnpar {

namespace {

// Progress on an interactive terminal only (rank 0), at most four updates a second, erased when done. It goes to
// stderr when that is a terminal (a run without a launcher, srun --pty). Open MPI's mpirun hands every rank a pipe
// for stderr, whatever mpirun's own stderr is, so there the progress goes to the controlling terminal (/dev/tty)
// if the job has one; a batch job or CI has none and sees nothing, and a redirected log never gets the \r lines.
class Progress {
 public:
  Progress(bool enabled, std::size_t total) : total_(total) {
    if (!enabled) return;
    if (isatty(STDERR_FILENO)) out_ = stderr;
    else if (std::FILE* tty = std::fopen("/dev/tty", "w")) out_ = own_ = tty;
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(std::size_t done) {
    if (!out_) return;
    const double now = steady_seconds();
    if (now - last_ < 0.25) return;
    last_ = now;
    std::fprintf(out_, "\rforward pass %zu/%zu", done, total_);
    std::fflush(out_);
    shown_ = true;
  }
  ~Progress() {
    if (shown_) std::fprintf(out_, "\r%40s\r", "");
    if (own_) std::fclose(own_);
  }

 private:
  std::size_t total_;
  std::FILE* out_ = nullptr;
  std::FILE* own_ = nullptr;
  double last_ = steady_seconds();
  bool shown_ = false;
};

// This rank's weights for every plan step: rows of its output channels or features, columns of its input features
// for a row-parallel step, every row for a replicated one; from the weights file or from the seed.
std::vector<LayerWeights> step_weights(const ExperimentSetup& setup, const std::vector<LayerInfo>& layers,
                                       const std::vector<PlanStep>& steps, std::size_t rank) {
  if (setup.weights_file.empty()) return init_step_weights(layers, steps, rank, setup.seed);
  std::vector<LayerWeights> w;
  for (const PlanStep& s : steps) {
    const LayerInfo& li = layers[s.layer];
    w.push_back(s.partial() ? load_linear_columns(setup.weights_file, li, step_slice(s, rank))
                            : load_layer_weights(setup.weights_file, li, weight_rows(li, s, rank)));
  }
  return w;
}

// One combination on this rank: its plan, buffers, weights and record.
struct Run {
  Combination combination;
  std::vector<PlanStep> steps;
  std::unique_ptr<Consolidation> consolidation;
  std::unique_ptr<DistributedForward> forward;
  RankRecord record;
};

std::unique_ptr<Run> set_up(Runtime& rt, const Topology& topo, const ExperimentSetup& setup,
                            const std::vector<LayerInfo>& layers, Combination c, std::span<const float> input) {
  const auto P = static_cast<std::size_t>(rt.size()), rank = static_cast<std::size_t>(rt.rank());
  auto run = std::make_unique<Run>();
  run->combination = c;
  run->steps = make_plan(c.plan, layers, setup.batch, P, c.splits, setup.grid);
  run->consolidation = make_consolidation(c.consolidation, topo, setup.net.input.elements() * setup.batch,
                                          run->steps, &steady_seconds);
  if (rank == 0) run->consolidation->stage_input(input);
  run->forward = std::make_unique<DistributedForward>(layers, run->steps, setup.batch, rank,
                                                      step_weights(setup, layers, run->steps, rank),
                                                      *run->consolidation, setup.fuse);
  RankRecord& rec = run->record = RankRecord(setup.iterations, run->steps.size());
  rec.rank = rt.rank();
  rec.node = topo.node_index();
  rec.host = Runtime::host_name();
  rec.binding = Runtime::cpu_binding();
  rec.clock_offset_s = rt.estimate_clock_offset();
  rec.activation_bytes = run->consolidation->activation_bytes();
  for (std::size_t s = 0; s < run->steps.size(); ++s) {
    rec.weight_bytes.push_back(run->forward->weight_bytes(s));
    // Exchanges are point to point: their time is the halo event, not split by the collective skew rule.
    const BoundaryAction action = run->steps[s].action;
    rec.collective[s + 1] = action == BoundaryAction::allgather || action == BoundaryAction::allreduce ? 1 : 0;
  }
  return run;
}

// --calibrate's in-pass gathers: every gather boundary of the runs (once per tensor size and the steps since the
// previous boundary: the same key on every rank, so every rank times the same list), with this rank's bytes touched
// by those steps' kernels (the first run's, where runs share a key).
std::vector<InPassGather> in_pass_gathers(const std::vector<std::unique_ptr<Run>>& runs,
                                          const std::vector<LayerInfo>& layers) {
  std::vector<InPassGather> out;
  std::set<std::pair<std::uint64_t, std::string>> seen;
  for (const auto& run : runs) {
    const auto rank = static_cast<std::size_t>(run->record.rank);
    std::string chain;
    std::uint64_t touched = 0;
    for (std::size_t s = 0; s < run->steps.size(); ++s) {
      const PlanStep& step = run->steps[s];
      chain += (chain.empty() ? "" : "+") + layers[step.layer].name;
      touched += step_touched_bytes(step, rank, run->record.weight_bytes[s]);
      if (step.action == BoundaryAction::none) continue;
      const std::uint64_t bytes = step.layout.total_elems() * sizeof(float);
      if (step.action == BoundaryAction::allgather && step.contiguous() && seen.emplace(bytes, chain).second)
        out.push_back(InPassGather{chain, bytes, step.layout.counts, step.layout.displs, touched});
      chain.clear();
      touched = 0;
    }
  }
  return out;
}

// One forward pass: a barrier lines the ranks up (untimed), then the pass, recorded as timed iteration `timed`
// (std::nullopt: a warm-up pass, not recorded).
void distributed_pass(Runtime& rt, Run& run, std::optional<std::size_t> timed) {
  rt.barrier();
  const double t0 = steady_seconds();
  run.forward->run(timed.value_or(0), timed ? &run.record : nullptr);
  if (timed) {
    run.record.forward_start_s[*timed] = t0;
    run.record.forward_s[*timed] = steady_seconds() - t0;
  }
}

}  // namespace

std::vector<Combination> all_combinations(const NodeMap& nodes, const std::vector<SplitChoice>& splits) {
  std::vector<Combination> out;
  for (ConsolidationKind k : kAllConsolidations)
    for (PlanKind p : kAllPlans)
      if (why_unavailable(k, nodes).empty()) out.push_back(Combination{k, p, "", splits});
  return out;
}

std::vector<Combination> split_combinations(const std::vector<LayerInfo>& layers, const NodeMap& nodes,
                                            std::size_t batch, Grid grid) {
  std::vector<SplitChoice> rows, sample, tiles, rows_channel, sample_channel;
  for (const LayerInfo& li : layers) {
    const bool spatial = std::holds_alternative<Conv2dSpec>(li.spec) || std::holds_alternative<MaxPool2dSpec>(li.spec) ||
                         (std::holds_alternative<GeluSpec>(li.spec) && li.out.h > 1);
    const bool flat = std::holds_alternative<LinearSpec>(li.spec) || std::holds_alternative<LogSoftmaxSpec>(li.spec);
    if (spatial) {
      rows.push_back(SplitChoice{li.name, SplitKind::rows});
      tiles.push_back(SplitChoice{li.name, SplitKind::tiles});
      rows_channel.push_back(SplitChoice{li.name, SplitKind::rows_channel});
    }
    sample.push_back(SplitChoice{li.name, SplitKind::sample});
    if (spatial || flat) sample_channel.push_back(SplitChoice{li.name, SplitKind::sample_channel});
  }
  const std::vector<Combination> cuts = {
      {ConsolidationKind::allgatherv, PlanKind::per_layer, "channel", {}},
      {ConsolidationKind::allgatherv, PlanKind::fused, "fused", {}},
      {ConsolidationKind::allgatherv, PlanKind::per_layer, "rows", rows},
      {ConsolidationKind::allgatherv, PlanKind::per_layer, "tiles", tiles},
      {ConsolidationKind::allgatherv, PlanKind::per_layer, "sample", sample},
      {ConsolidationKind::allgatherv, PlanKind::per_layer, "rows-channel", rows_channel},
      {ConsolidationKind::allgatherv, PlanKind::per_layer, "sample-channel", sample_channel}};
  std::vector<Combination> out;
  for (ConsolidationKind k : kAllConsolidations)
    for (Combination c : cuts) {
      c.consolidation = k;
      const auto steps = make_plan(c.plan, layers, batch, nodes.node_of_rank.size(), c.splits, grid);
      if (why_unavailable(k, nodes, steps).empty()) out.push_back(c);
    }
  return out;
}

std::vector<LayerInfo> check_setup(const ExperimentSetup& setup, const NodeMap& nodes) {
  std::vector<LayerInfo> layers = describe(setup.net);
  for (const Combination& c : setup.combinations) {
    // make_plan throws if the plan cannot apply
    const auto steps = make_plan(c.plan, layers, setup.batch, nodes.node_of_rank.size(), c.splits, setup.grid);
    if (const std::string why = why_unavailable(c.consolidation, nodes, steps); !why.empty())
      throw std::invalid_argument(why);
  }
  return layers;
}

bool ExperimentResult::passed() const {
  return std::all_of(runs.begin(), runs.end(), [](const RunReport& r) {
    return r.ranks_agree && (!r.verification || r.verification->passed());
  });
}

ExperimentResult run_experiment(Runtime& rt, const Topology& topo, const ExperimentSetup& setup,
                                std::vector<float> input) {
  const bool root = rt.rank() == 0;
  const auto P = static_cast<std::size_t>(rt.size());
  const std::size_t B = setup.batch;
  const std::vector<LayerInfo> layers = describe(setup.net);
  ExperimentResult result;

  // The serial reference: rank 0 alone, whole weights, the same kernels, the same iteration count.
  std::vector<std::vector<double>> serial_layer_samples(layers.size());
  std::vector<double> serial_totals;
  std::vector<float> serial_output;
  if (root) {
    result.input = input;
    // Every layer's whole weights: this rank's weights under the plan of a single rank.
    result.full_weights = step_weights(setup, layers, make_plan(PlanKind::per_layer, layers, B, 1), 0);
  }
  std::optional<SerialReference> serial;
  if (root) serial.emplace(layers, result.full_weights, B, setup.fuse);
  std::vector<double> secs;
  std::span<const float> serial_last;  // the final activation of the latest serial pass
  // The serial reference reads the input from a cache-line aligned copy, as the distributed pass does from its
  // consolidation's buffer (aligned.hpp), so both run the kernels on aligned tensors.
  const AlignedFloats serial_input(result.input.begin(), result.input.end());
  auto serial_pass = [&](bool timed) {
    const double t0 = steady_seconds();
    serial_last = serial->run(serial_input, &secs);
    const double t1 = steady_seconds();
    if (!timed) return;
    for (std::size_t l = 0; l < layers.size(); ++l) serial_layer_samples[l].push_back(secs[l]);
    serial_totals.push_back(t1 - t0);
  };

  std::vector<std::unique_ptr<Run>> runs;
  for (const Combination& c : setup.combinations) runs.push_back(set_up(rt, topo, setup, layers, c, input));
  const std::size_t rounds = std::min<std::size_t>(10, setup.iterations);
  {
    Progress progress(root && setup.progress, (setup.iterations + setup.warmup) * (runs.size() + 1));
    std::size_t done = 0, timed_so_far = 0;
    for (std::size_t round = 0; round < rounds; ++round) {
      const std::size_t warm = round == 0 ? setup.warmup : std::min<std::size_t>(setup.warmup, 2);
      const std::size_t timed = block_slice(setup.iterations, rounds, round).count;
      if (root)
        for (std::size_t i = 0; i < warm + timed; ++i, ++done) {
          serial_pass(i >= warm);
          progress.update(done);
        }
      rt.idle_barrier();
      for (auto& run : runs)
        for (std::size_t i = 0; i < warm + timed; ++i) {
          distributed_pass(rt, *run, i >= warm ? std::optional<std::size_t>(timed_so_far + i - warm) : std::nullopt);
          if (root) progress.update(++done);
        }
      timed_so_far += timed;
    }
  }

  if (root) serial_output.assign(serial_last.begin(), serial_last.end());

  // Collect: records, every step's whole output (outside the timed passes), verification.
  const bool collect_steps = setup.verify || setup.keep_outputs;
  for (auto& run : runs) {
    const std::vector<float> output = activation_to_batch_major(run->forward->output(), layers.back().out.elements(), B);
    run->record.output_fnv1a64 = fnv1a64(output);
    std::vector<std::vector<float>> step_outputs;
    std::optional<Comparison> fused_against_layer_by_layer;
    if (collect_steps) {
      if (run->forward->fuses()) {
        // A fused conv's output was never written: one more pass, layer by layer, writes every step's.
        const std::vector<float> timed_final(run->forward->output().begin(), run->forward->output().end());
        rt.barrier();
        run->forward->run(0, nullptr, true);
        fused_against_layer_by_layer = compare(run->forward->output(), timed_final);
      }
      for (std::size_t s = 0; s < run->steps.size(); ++s)
        step_outputs.push_back(collect_output(*run->consolidation, s, run->steps[s], topo));
    }
    RunReport report;
    report.records = rt.gather(run->record);
    if (!root) continue;
    report.net = setup.net;
    report.layers = layers;
    report.steps = run->steps;
    report.splits = run->combination.splits;
    report.decomposition = run->combination.decomposition;
    report.batch = B;
    report.ranks = P;
    report.iterations = setup.iterations;
    report.warmup = setup.warmup;
    report.nodes = topo.map().nodes();
    report.seed = setup.seed;
    report.weights_file = setup.weights_file;
    report.kernels = std::string(kernel_target());
    report.fusion = setup.fuse;
    for (std::size_t s = 0; s < run->steps.size(); ++s) report.fused_with_next.push_back(run->forward->fused(s));
    for (std::size_t l = 0; l < layers.size(); ++l) report.serial_fused_with_next.push_back(serial->fused(l));
    report.consolidation = std::string(to_string(run->combination.consolidation));
    report.plan = std::string(to_string(run->combination.plan));
    for (const PlanStep& s : run->steps) {
      report.expected_bytes.emplace_back();
      for (std::size_t q = 0; q < P; ++q)
        report.expected_bytes.back().push_back(expected_step_bytes(run->combination.consolidation, s, topo.map(), q));
    }
    for (std::size_t q = 0; q < P; ++q)
      report.expected_broadcast.push_back(expected_broadcast_bytes(
          run->combination.consolidation, setup.net.input.elements() * B * sizeof(float), topo.map(), q));
    report.times = derive_times(report.records);
    if (result.output.empty()) result.output = output;
    report.checksum = run->record.output_fnv1a64;
    for (const float v : output) report.output_sum += v;
    for (const RankRecord& r : report.records) report.ranks_agree &= r.output_fnv1a64 == run->record.output_fnv1a64;
    if (setup.verify)
      report.verification =
          verify_run(layers, run->steps, result.full_weights, result.input, step_outputs, serial_output, B);
    if (report.verification) report.verification->fused_passes = fused_against_layer_by_layer;
    for (const auto& samples : serial_layer_samples) report.serial_layer_s.push_back(median(samples));
    report.serial_forward_s = median(serial_totals);
    if (setup.keep_outputs && result.layer_outputs.empty()) result.layer_outputs = std::move(step_outputs);
    result.runs.push_back(std::move(report));
  }
  if (setup.calibrate) {
    // The grid (64 B .. 4 MiB) spans the sizes a fit needs for alpha and beta; the sizes the runs' boundaries
    // actually move (n of each gather or reduction) are added so the fit has points exactly where the model's
    // predictions are used. Each size is labelled with the layers whose boundary moves it ("" for the grid).
    std::map<std::uint64_t, std::string> sizes;
    for (std::uint64_t n = 64; n <= (std::uint64_t{4} << 20); n *= 4) sizes[n];
    for (const auto& run : runs)
      for (std::size_t s = 0; s < run->steps.size(); ++s) {
        const PlanStep& step = run->steps[s];
        const std::size_t floats = step.action == BoundaryAction::allgather   ? step.layout.total_elems()
                                   : step.action == BoundaryAction::allreduce ? step.reduce_elems
                                                                              : 0;
        if (floats == 0) continue;
        std::string& names = sizes[floats * sizeof(float)];
        const std::string& name = layers[s].name;
        if (names.find(name) == std::string::npos) names += (names.empty() ? "" : ",") + name;
      }
    std::vector<std::uint64_t> bytes;
    std::vector<std::string> boundaries;
    for (const auto& [n, names] : sizes) {
      bytes.push_back(n);
      boundaries.push_back(names);
    }
    CollectiveTimings timings =
        time_collectives(rt.comm(), bytes, 20, 3, &steady_seconds, in_pass_gathers(runs, layers));
    timings.boundaries = std::move(boundaries);
    if (root) result.calibration = std::move(timings);
  }
  return result;
}

}  // namespace cnnpar
