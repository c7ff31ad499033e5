// cnnpar_mpi: set-up -> timed loop -> verify -> report.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cnnpar/checksum.hpp"
#include "cnnpar/cli.hpp"
#include "cnnpar/consolidation.hpp"
#include "cnnpar/distributed.hpp"
#include "cnnpar/idx.hpp"
#include "cnnpar/limits.hpp"
#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/output_file.hpp"
#include "cnnpar/reference.hpp"
#include "cnnpar/report.hpp"
#include "cnnpar/results_file.hpp"
#include "cnnpar/weights_file.hpp"

using namespace cnnpar;

namespace {

enum ExitCode { kOk = 0, kRuntimeError = 1, kBadInput = 2, kVerifyFailed = 3 };

struct Input {
  ImageBatch images;
  std::optional<std::uint8_t> first_label;
  std::string name;
  bool fashion_labels = false;
};

// Rank 0 only: the batch from --images (or the embedded sample), and the label of its first image.
Input load_input(const Options& o) {
  Input in;
  if (o.images.empty()) {
    in.name = std::string(kEmbeddedSampleName);
    in.images = parse_idx_images(embedded_sample_images(), in.name, o.index, o.batch);
    in.first_label = parse_idx_labels(embedded_sample_labels(), "embedded labels", o.index, 1).at(0);
    in.fashion_labels = true;
  } else {
    in.name = o.images;
    in.images = read_idx_images(o.images, o.index, o.batch);
    if (!o.labels.empty()) {
      in.first_label = read_idx_labels(o.labels, o.index, 1).at(0);
      // Fashion-MNIST's labels have names; MNIST's are the digits themselves. Tell them apart by the file name.
      std::string name = std::filesystem::path(o.labels).filename().string();
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
      in.fashion_labels = name.find("fashion") != std::string::npos ||
                          o.labels.find("fashion-mnist") != std::string::npos;
    }
  }
  return in;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// What one reading of the records' clock costs: recording overhead = readings per pass times this.
double measure_timestamp_cost() {
  constexpr int kReadings = 20000;
  double sink = 0;
  const double t0 = steady_seconds();
  for (int i = 0; i < kReadings; ++i) sink += steady_seconds();
  const double t1 = steady_seconds();
  return sink > 0 ? (t1 - t0) / kReadings : 0.0;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The results file --output names: the path itself, or the default name inside a directory. Rank 0 checks before
// the run that it can be created, so a typo does not cost a whole run.
std::filesystem::path resolve_output(const Options& o, std::size_t ranks) {
  namespace fs = std::filesystem;
  fs::path path(o.output);
  if (o.output.back() == '/' || fs::is_directory(path))
    path /= o.compare ? "cnnpar_np" + std::to_string(ranks) + "_b" + std::to_string(o.batch) + "_compare.h5"
                      : results_name(ranks, o.batch, to_string(o.consolidation), to_string(o.plan));
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw std::runtime_error("output directory '" + dir.string() + "' does not exist");
  if (fs::exists(fs::symlink_status(path)) && !o.force)
    throw std::runtime_error("output file '" + path.string() + "' exists; pass --force to overwrite it");
  if (access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error("output directory '" + dir.string() + "' is not writable");
  return path;
}

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

// Weights for every plan step of this rank: rows of its output items, or columns of its input features for a
// row-parallel step; from --weights or from --seed.
std::vector<LayerWeights> step_weights(const Options& opt, const std::vector<LayerInfo>& layers,
                                       const std::vector<PlanStep>& steps, std::size_t rank) {
  if (opt.weights.empty()) return init_step_weights(layers, steps, rank, opt.seed);
  std::vector<LayerWeights> w;
  for (const PlanStep& s : steps)
    w.push_back(s.row_partial ? load_linear_columns(opt.weights, layers[s.layer], step_slice(s, rank))
                              : load_layer_weights(opt.weights, layers[s.layer], step_slice(s, rank)));
  return w;
}

// What every combination shares: the input, the network, the serial reference (rank 0).
struct Job {
  const Options& opt;
  Runtime& rt;
  const Topology& topo;
  std::size_t batch;
  std::string created_utc;  // when the job started
  NetworkSpec net;
  std::vector<LayerInfo> layers;
  std::vector<float> input;  // rank 0: the batch as an activation
  // rank 0: the serial reference
  std::vector<LayerWeights> full_weights;
  std::vector<float> serial_output;                // [O][B]
  std::vector<double> linear_terms;                // per output element, for the row-parallel bound
  std::vector<double> serial_layer_s;
  double serial_forward_s = 0;
  double timestamp_cost_s = 0;
};

// One consolidation x plan combination: its plan, buffers, weights and this rank's record.
struct Combination {
  ConsolidationKind kind;
  PlanKind plan;
  std::vector<PlanStep> steps;
  std::unique_ptr<Consolidation> consolidation;
  std::unique_ptr<DistributedForward> forward;
  RankRecord rec;
};

std::unique_ptr<Combination> set_up_combination(Job& job, ConsolidationKind kind, PlanKind plan) {
  const Options& opt = job.opt;
  Runtime& rt = job.rt;
  const auto P = static_cast<std::size_t>(rt.size()), rank = static_cast<std::size_t>(rt.rank());
  auto c = std::make_unique<Combination>();
  c->kind = kind;
  c->plan = plan;
  c->steps = make_plan(plan, job.layers, job.batch, P);
  c->consolidation =
      make_consolidation(kind, job.topo, job.net.input.elements() * job.batch, c->steps, &steady_seconds);
  if (rank == 0) c->consolidation->stage_input(job.input);
  c->forward = std::make_unique<DistributedForward>(job.layers, c->steps, job.batch, rank,
                                                    step_weights(opt, job.layers, c->steps, rank), *c->consolidation);
  RankRecord& rec = c->rec;
  rec.rank = rt.rank();
  rec.node = job.topo.node_index();
  rec.host = Runtime::host_name();
  rec.binding = Runtime::cpu_binding();
  rec.clock_offset_s = rt.estimate_clock_offset();
  rec.iterations = opt.iterations;
  rec.layers = c->steps.size();
  rec.compute_s.resize(opt.iterations * c->steps.size());
  rec.consolidate_enter_s.resize(rec.compute_s.size());
  rec.consolidate_exit_s.resize(rec.compute_s.size());
  rec.broadcast_enter_s.resize(opt.iterations);
  rec.broadcast_exit_s.resize(opt.iterations);
  rec.forward_s.resize(opt.iterations);
  rec.forward_start_s.resize(opt.iterations);
  rec.bytes_sent.resize(c->steps.size());
  rec.bytes_received.resize(c->steps.size());
  rec.activation_bytes = c->consolidation->activation_bytes();
  for (std::size_t s = 0; s < c->steps.size(); ++s) {
    rec.weight_bytes.push_back(c->forward->weight_bytes(s));
    rec.collective.push_back(c->steps[s].action == BoundaryAction::none ? 0 : 1);
  }
  return c;
}

// One forward pass of a combination: a barrier lines the ranks up (untimed), then the pass, recorded as timed
// iteration `timed` (std::nullopt: a warm-up pass, not recorded).
void distributed_pass(Job& job, Combination& c, std::optional<std::size_t> timed) {
  job.rt.barrier();
  const double t0 = steady_seconds();
  c.forward->run(timed.value_or(0), timed ? &c.rec : nullptr);
  if (timed) {
    c.rec.forward_start_s[*timed] = t0;
    c.rec.forward_s[*timed] = steady_seconds() - t0;
  }
}

// Gathers a combination's records and verifies its output. Returns the report on rank 0.
RunReport finish_combination(Job& job, Combination& c, std::vector<float>* output_out,
                             std::vector<std::vector<float>>* layer_outputs) {
  const bool root = job.rt.rank() == 0;
  const auto P = static_cast<std::size_t>(job.rt.size());
  const std::size_t B = job.batch;
  const std::vector<float> output = activation_to_batch_major(c.forward->output(), job.layers.back().out.c, B);
  c.rec.output_fnv1a64 = fnv1a64(output);
  RunReport report;
  report.records = job.rt.gather(c.rec);
  if (!root) return report;

  if (layer_outputs)
    for (std::size_t s = 0; s < c.steps.size(); ++s)
      layer_outputs->push_back(activation_to_batch_major(c.consolidation->output(s),
                                                         job.layers[c.steps[s].layer].out.elements(), B));
  report.steps = c.steps;
  report.consolidation = std::string(to_string(c.kind));
  report.plan = std::string(to_string(c.plan));
  for (const PlanStep& s : c.steps) {
    report.expected_bytes.emplace_back();
    for (std::size_t q = 0; q < P; ++q)
      report.expected_bytes.back().push_back(expected_step_bytes(c.kind, s, job.topo.map(), q));
  }
  for (std::size_t q = 0; q < P; ++q)
    report.expected_broadcast.push_back(
        expected_broadcast_bytes(c.kind, job.net.input.elements() * B * sizeof(float), job.topo.map(), q));
  report.times = derive_times(report.records);
  report.checksum = c.rec.output_fnv1a64;
  for (const float v : output) report.output_sum += v;
  for (const RankRecord& r : report.records) report.ranks_agree &= r.output_fnv1a64 == c.rec.output_fnv1a64;
  if (job.opt.verify || job.opt.compare) {
    Verification v;
    const std::vector<float> serial = activation_to_batch_major(job.serial_output, job.layers.back().out.c, B);
    v.comparison = compare(output, serial);
    const bool row_parallel =
        std::any_of(c.steps.begin(), c.steps.end(), [](const PlanStep& s) { return s.row_partial; });
    if (row_parallel) {
      // The row-parallel sum takes the same F products (+ bias) in another order: bound each element (report.hpp).
      v.exact_required = false;
      const std::size_t O = job.layers.back().out.elements(), F = job.layers.back().in.elements();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t o = 0; o < O; ++o) {
          const double bound = summation_error_bound(F + 1, job.linear_terms[o * B + b]);
          const double diff = std::fabs(double(output[b * O + o]) - double(serial[b * O + o]));
          v.worst_bound_ratio = std::max(v.worst_bound_ratio, bound > 0 ? diff / bound : (diff > 0 ? INFINITY : 0));
        }
    }
    report.verification = v;
  }
  if (output_out) *output_out = output;
  return report;
}

// Fills the job-wide fields of a report (rank 0).
void describe_job(RunReport& report, const Job& job, const Input& input) {
  const Options& opt = job.opt;
  report.command_line = opt.command_line;
  report.mpi_library = Runtime::library_version();
  report.created_utc = job.created_utc;
  report.seed = opt.seed;
  report.weights_file = opt.weights;
  report.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  report.slurm_nodelist = env_or_empty("SLURM_JOB_NODELIST");
  report.slurm_ntasks = env_or_empty("SLURM_NTASKS");
  report.timestamp_cost_s = job.timestamp_cost_s;
  // Per pass: the forward-pass start and end, the broadcast's entry and exit, and per layer the kernel's start and
  // end and the boundary's entry and exit.
  report.timestamps_per_pass = 4 + 4 * job.layers.size();
  report.net = job.net;
  report.layers = job.layers;
  report.batch = job.batch;
  report.ranks = static_cast<std::size_t>(job.rt.size());
  report.iterations = opt.iterations;
  report.warmup = opt.warmup;
  report.nodes = job.topo.map().nodes();
  report.ranks_per_node = opt.ranks_per_node;
  report.input_name = input.name;
  report.first_index = opt.index;
  report.rows = input.images.rows;
  report.cols = input.images.cols;
  report.first_image.assign(input.images.pixels.begin(),
                            input.images.pixels.begin() + static_cast<std::ptrdiff_t>(report.rows * report.cols));
  report.first_label = input.first_label;
  report.fashion_labels = input.fashion_labels;
  report.serial_layer_s = job.serial_layer_s;
  report.serial_forward_s = job.serial_forward_s;
}

int run(Runtime& rt, int argc, char** argv) {
  const bool root = rt.rank() == 0;
  const ParsedCommandLine cmd = parse_command_line(argc, argv);
  if (cmd.action != ParsedCommandLine::Action::run) {
    const bool is_error = cmd.action == ParsedCommandLine::Action::error;
    if (root) (is_error ? std::cerr : std::cout) << (is_error ? "cnnpar_mpi: error: " : "") << cmd.message
                                                 << (is_error ? "\n" : "");
    return is_error ? kBadInput : kOk;
  }
  const Options& opt = cmd.options;
  // Every rank reaches each of these agreement points; a failure anywhere ends every rank with rank 0's message.
  std::string error;
  auto agree = [&] {
    rt.broadcast(error, 0);
    if (error.empty()) return true;
    if (root) std::cerr << "cnnpar_mpi: error: " << error << "\n";
    return false;
  };

  // Rank 0 reads the input; everyone learns whether that worked and the batch's shape.
  Input input;
  std::vector<std::uint64_t> dims(3, 0);
  if (root) {
    try {
      input = load_input(opt);
      dims = {input.images.count, input.images.rows, input.images.cols};
    } catch (const IdxError& e) {
      error = e.what();
    }
  }
  if (!agree()) return kBadInput;
  rt.broadcast(dims, 0);

  const Topology topo(rt.comm(), opt.ranks_per_node);
  Job job{opt, rt, topo, dims[0], utc_now(), seed_network(dims[1], dims[2], opt.filters, opt.hidden, opt.gelu, opt.conv_kernel,
                                               opt.pool_kernel),
          {}, {}, {}, {}, {}, {}, 0, 0};
  // The network, and the plans' feasibility: derived identically on every rank from the same arguments and shape.
  std::vector<std::pair<ConsolidationKind, PlanKind>> combinations;
  try {
    job.layers = describe(job.net);
    check_sizes(opt, job.layers, job.batch);  // before any size is used: no wrapped-around or too-large counts
    if (opt.compare) {
      for (ConsolidationKind k : kAllConsolidations)
        for (PlanKind p : kAllPlans)
          if (k != ConsolidationKind::shared || topo.map().nodes() == 1) combinations.emplace_back(k, p);
    } else {
      combinations.emplace_back(opt.consolidation, opt.plan);
    }
    for (const auto& [kind, plan] : combinations) {
      make_plan(plan, job.layers, job.batch, static_cast<std::size_t>(rt.size()));  // throws if the plan cannot apply
      if (const std::string why = why_unavailable(kind, topo.map()); !why.empty()) throw std::invalid_argument(why);
    }
  } catch (const NetworkError& e) {
    error = std::string("network does not fit the ") + std::to_string(dims[1]) + "x" + std::to_string(dims[2]) +
            " input: " + e.what();
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {  // the same on every rank
    if (root) std::cerr << "cnnpar_mpi: error: " << error << "\n";
    return kBadInput;
  }

  // Rank 0 checks the weights file and the output path; everyone learns the verdict.
  std::filesystem::path output_path;
  std::unique_ptr<OutputFile> reserved_output;  // proves the path writable now; removed unless the write publishes it
  if (root) {
    try {
      const std::vector<int>& node_of = topo.map().node_of_rank;
      check_memory(job_memory(opt, job.layers, job.batch, static_cast<std::size_t>(rt.size()), combinations.size()),
                   memory_budget(static_cast<std::size_t>(std::count(node_of.begin(), node_of.end(), node_of[0]))));
      if (!opt.weights.empty()) validate_weights_file(opt.weights, job.layers);
      if (!opt.output.empty()) {
        output_path = resolve_output(opt, static_cast<std::size_t>(rt.size()));
        reserved_output = OutputFile::reserve(output_path, opt.force,
                                              {{"--images", opt.images}, {"--labels", opt.labels}, {"--weights", opt.weights}});
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (!agree()) return kBadInput;

  // The serial reference: rank 0 alone, whole weights, same kernels, same iteration count.
  std::vector<std::vector<double>> serial_layer_samples(job.layers.size());
  std::vector<double> serial_totals;
  auto serial_pass = [&](bool timed) {
    std::vector<double> secs;
    const double t0 = steady_seconds();
    job.serial_output = serial_forward(job.layers, job.full_weights, job.input, job.batch, &secs);
    const double t1 = steady_seconds();
    if (!timed) return;
    for (std::size_t l = 0; l < job.layers.size(); ++l) serial_layer_samples[l].push_back(secs[l]);
    serial_totals.push_back(t1 - t0);
  };
  if (root) {
    job.input = images_to_activation(input.images);
    // Every layer's whole weights: this rank's weights for the plan of a single rank.
    job.full_weights = step_weights(opt, job.layers, make_plan(PlanKind::per_layer, job.layers, job.batch, 1), 0);
    job.timestamp_cost_s = measure_timestamp_cost();
    const bool row_parallel_verified =
        (opt.verify || opt.compare) &&
        std::any_of(combinations.begin(), combinations.end(), [](const auto& c) { return c.second == PlanKind::fused; });
    if (row_parallel_verified) {  // the rounding bound needs the linear layer's input
      std::vector<std::vector<float>> outputs;
      serial_forward(job.layers, job.full_weights, job.input, job.batch, nullptr, &outputs);
      job.linear_terms = linear_term_magnitudes(job.layers.back(), job.full_weights.back(),
                                                outputs.size() >= 2 ? outputs[outputs.size() - 2] : job.input,
                                                job.batch);
    }
  }

  // Timing: the serial reference, then each combination, in rounds. One configuration runs in one round.
  // --compare splits the iterations into up to 10 rounds and runs every combination's share in each (re-warming
  // its caches with up to 2 untimed passes), so that a machine whose speed drifts during the job (a busy or
  // oversubscribed node, frequency changes) affects every combination alike and their ratios stay meaningful,
  // while each timed pass still runs with its own data warm in cache, as in a single run. While rank 0 runs serial
  // passes the others wait in a sleeping barrier, so they do not steal its core.
  std::vector<std::unique_ptr<Combination>> runs;
  for (const auto& [kind, plan] : combinations) runs.push_back(set_up_combination(job, kind, plan));
  const std::size_t rounds = opt.compare ? std::min<std::size_t>(10, opt.iterations) : 1;
  {
    Progress progress(root && opt.progress, (opt.iterations + opt.warmup) * (runs.size() + 1));
    std::size_t done = 0, timed_so_far = 0;
    for (std::size_t round = 0; round < rounds; ++round) {
      const std::size_t warm = round == 0 ? opt.warmup : std::min<std::size_t>(opt.warmup, 2);
      const std::size_t timed = block_slice(opt.iterations, rounds, round).count;
      if (root)
        for (std::size_t i = 0; i < warm + timed; ++i, ++done) {
          serial_pass(i >= warm);
          progress.update(done);
        }
      rt.idle_barrier();
      for (auto& run : runs)
        for (std::size_t i = 0; i < warm + timed; ++i) {
          distributed_pass(job, *run, i >= warm ? std::optional<std::size_t>(timed_so_far + i - warm) : std::nullopt);
          if (root) progress.update(++done);
        }
      timed_so_far += timed;
    }
  }
  if (root) {
    for (const auto& samples : serial_layer_samples) job.serial_layer_s.push_back(median(samples));
    job.serial_forward_s = median(serial_totals);
  }

  std::vector<RunReport> reports;
  std::vector<float> output;
  std::vector<std::vector<float>> layer_outputs;
  const bool dump_layers = opt.dump_tensors == "all";
  for (auto& run : runs) {
    reports.push_back(finish_combination(job, *run, &output, dump_layers ? &layer_outputs : nullptr));
    if (root) describe_job(reports.back(), job, input);
  }
  if (opt.calibrate) {
    std::vector<std::uint64_t> sizes;
    for (std::uint64_t n = 64; n <= (std::uint64_t{4} << 20); n *= 4) sizes.push_back(n);
    CollectiveTimings timings = time_collectives(rt.comm(), sizes, 20, 3, &steady_seconds);
    if (root) reports.front().calibration = std::move(timings);
  }
  if (!root) return kOk;  // rank 0 decides the verdict; the others' exit status does not depend on it

  bool verified = true;
  for (const RunReport& r : reports)
    verified &= r.ranks_agree && (!r.verification || r.verification->passed());
  if (opt.compare) {
    print_comparison(std::cout, reports);
  } else {
    if (!opt.quiet) {
      print_input(std::cout, reports.front());
      print_breakdown(std::cout, reports.front());
    }
    print_summary(std::cout, reports.front());
  }
  if (reports.front().calibration) print_calibration(std::cout, *reports.front().calibration, reports.front().ranks);

  if (!output_path.empty()) {
    std::optional<TensorDump> dump;
    if (!opt.dump_tensors.empty()) {
      dump.emplace();
      dump->input = activation_to_batch_major(job.input, job.net.input.elements(), job.batch);
      dump->weights = job.full_weights;
      dump->layer_outputs = layer_outputs;
      dump->output = output;
    }
    const double t0 = steady_seconds();
    try {
      if (opt.compare) write_compare_file(output_path, opt.force, reports);
      else write_results_file(output_path, opt.force, reports.front(), dump ? &*dump : nullptr);
    } catch (const std::exception& e) {
      std::cerr << "cnnpar_mpi: error: writing results: " << e.what() << "\n";
      return kRuntimeError;
    }
    const double t1 = steady_seconds();
    std::cout << "Results: " << output_path.string() << " (" << with_commas(std::filesystem::file_size(output_path))
              << " B, written in " << static_cast<long>((t1 - t0) * 1e3 + 0.5) << " ms)\n";
  }
  std::cout.flush();
  return verified ? kOk : kVerifyFailed;
}

}  // namespace

int main(int argc, char** argv) {
  Runtime rt(argc, argv);
  try {
    const int status = run(rt, argc, argv);
    // Every rank waits here, asleep, until rank 0 has written the results, rather than in MPI_Finalize: Open MPI
    // 4.1's mpirun, signalled while ranks sit in Finalize's fence, can hang or crash (tests/faults).
    rt.idle_barrier();
    return status;
  } catch (const std::exception& e) {
    // Unexpected here: the known bad inputs are agreed on above. A rank that throws cannot leave its peers waiting
    // in a collective, so it takes the job down.
    std::cerr << "cnnpar_mpi: rank " << rt.rank() << ": fatal: " << e.what() << "\n";
    MPI_Abort(rt.comm(), kRuntimeError);
  }
  return kRuntimeError;
}
