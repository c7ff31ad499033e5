// cnnpar_mpi: set-up -> timed loop -> verify -> report.
#include <unistd.h>

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
#include "cnnpar/mpi_runtime.hpp"
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
    if (!o.labels.empty()) in.first_label = read_idx_labels(o.labels, o.index, 1).at(0);
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
    path /= "cnnpar_np" + std::to_string(ranks) + "_b" + std::to_string(o.batch) + "_" +
            std::string(to_string(o.consolidation)) + ".h5";
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw std::runtime_error("output directory '" + dir.string() + "' does not exist");
  if (fs::exists(fs::symlink_status(path)) && !o.force)
    throw std::runtime_error("output file '" + path.string() + "' exists; pass --force to overwrite it");
  if (access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error("output directory '" + dir.string() + "' is not writable");
  return path;
}

// Progress on an interactive terminal only (rank 0, stderr), at most a few updates per second.
class Progress {
 public:
  Progress(bool enabled, std::size_t total) : enabled_(enabled && isatty(STDERR_FILENO)), total_(total) {}
  void update(std::size_t done) {
    if (!enabled_) return;
    const double now = steady_seconds();
    if (now - last_ < 0.25) return;
    last_ = now;
    std::fprintf(stderr, "\rforward pass %zu/%zu", done, total_);
    shown_ = true;
  }
  ~Progress() {
    if (shown_) std::fprintf(stderr, "\r%40s\r", "");
  }

 private:
  bool enabled_;
  std::size_t total_;
  double last_ = steady_seconds();
  bool shown_ = false;
};

int run(Runtime& rt, int argc, char** argv) {
  const bool root = rt.rank() == 0;
  const ParsedCommandLine cmd = parse_command_line(argc, argv);
  if (cmd.action != ParsedCommandLine::Action::run) {
    if (root) (cmd.action == ParsedCommandLine::Action::error ? std::cerr : std::cout)
                  << (cmd.action == ParsedCommandLine::Action::error ? "cnnpar_mpi: error: " : "") << cmd.message
                  << (cmd.action == ParsedCommandLine::Action::error ? "\n" : "");
    return cmd.action == ParsedCommandLine::Action::error ? kBadInput : kOk;
  }
  const Options& opt = cmd.options;

  // Rank 0 reads the input; everyone learns whether that worked and the batch's shape.
  Input input;
  std::string error;
  std::vector<std::uint64_t> dims(3, 0);
  if (root) {
    try {
      input = load_input(opt);
      dims = {input.images.count, input.images.rows, input.images.cols};
    } catch (const IdxError& e) {
      error = e.what();
    }
  }
  rt.broadcast(error, 0);
  if (!error.empty()) {
    if (root) std::cerr << "cnnpar_mpi: error: " << error << "\n";
    return kBadInput;
  }
  rt.broadcast(dims, 0);
  const std::size_t B = dims[0];

  // The network, its split over the ranks, and this rank's weights. Every rank derives the same from the same
  // arguments and shape, so a network that does not fit fails identically everywhere.
  const NetworkSpec net = seed_network(dims[1], dims[2], opt.filters, opt.hidden, opt.gelu, opt.conv_kernel,
                                       opt.pool_kernel);
  std::vector<LayerInfo> layers;
  std::vector<BoundaryLayout> boundaries;
  try {
    layers = describe(net);
    boundaries = make_boundaries(layers, B, static_cast<std::size_t>(rt.size()));
  } catch (const std::exception& e) {
    if (root) std::cerr << "cnnpar_mpi: error: network does not fit the " << dims[1] << "x" << dims[2]
                        << " input: " << e.what() << "\n";
    return kBadInput;
  }
  // Rank 0 checks the weights file and the output path; everyone learns the verdict.
  std::filesystem::path output_path;
  if (root) {
    try {
      if (!opt.weights.empty()) validate_weights_file(opt.weights, layers);
      if (!opt.output.empty()) output_path = resolve_output(opt, static_cast<std::size_t>(rt.size()));
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  rt.broadcast(error, 0);
  if (!error.empty()) {
    if (root) std::cerr << "cnnpar_mpi: error: " << error << "\n";
    return kBadInput;
  }

  const auto rank = static_cast<std::size_t>(rt.rank());
  // Weights for the given slice of every layer, from --weights or from --seed.
  auto weights_for = [&](auto slice_of_layer) {
    std::vector<LayerWeights> w;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const Slice items = slice_of_layer(l);
      w.push_back(opt.weights.empty() ? init_layer_weights(layers[l], l, opt.seed, items)
                                      : load_layer_weights(opt.weights, layers[l], items));
    }
    return w;
  };
  auto consolidation =
      make_consolidation(opt.consolidation, rt.comm(), net.input.elements() * B, boundaries, &steady_seconds);
  if (root) {
    const std::vector<float> act = images_to_activation(input.images);
    std::copy(act.begin(), act.end(), consolidation->input().begin());
  }
  DistributedForward forward(layers, B, weights_for([&](std::size_t l) { return boundaries[l].slices[rank]; }),
                             *consolidation);

  RankRecord rec;
  rec.rank = rt.rank();
  rec.node = rt.node_index();
  rec.host = Runtime::host_name();
  rec.binding = Runtime::cpu_binding();
  rec.clock_offset_s = rt.estimate_clock_offset();
  rec.iterations = opt.iterations;
  rec.layers = layers.size();
  rec.compute_s.resize(opt.iterations * layers.size());
  rec.consolidate_enter_s.resize(rec.compute_s.size());
  rec.consolidate_exit_s.resize(rec.compute_s.size());
  rec.broadcast_enter_s.resize(opt.iterations);
  rec.broadcast_exit_s.resize(opt.iterations);
  rec.forward_s.resize(opt.iterations);
  rec.bytes_sent.resize(layers.size());
  rec.bytes_received.resize(layers.size());
  rec.activation_bytes = consolidation->input().size_bytes();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    rec.weight_bytes.push_back(forward.weight_bytes(l));
    rec.activation_bytes += consolidation->tensor(l).size_bytes();
  }

  // The serial reference: rank 0 alone, full weights, same kernels, same iteration count; the others sleep-wait.
  RunReport report;
  report.created_utc = utc_now();
  std::vector<float> serial_output;
  std::vector<LayerWeights> full;  // rank 0: every layer's whole weights (for the reference and --dump-tensors)
  if (root) {
    full = weights_for([&](std::size_t l) { return Slice{0, layers[l].split_items}; });
    const std::vector<float> act = images_to_activation(input.images);
    std::vector<std::vector<double>> per_layer(layers.size());
    std::vector<double> totals;
    for (std::size_t it = 0; it < opt.warmup + opt.iterations; ++it) {
      std::vector<double> secs;
      const double t0 = steady_seconds();
      serial_output = serial_forward(layers, full, act, B, &secs);
      const double t1 = steady_seconds();
      if (it < opt.warmup) continue;
      for (std::size_t l = 0; l < layers.size(); ++l) per_layer[l].push_back(secs[l]);
      totals.push_back(t1 - t0);
    }
    for (const auto& samples : per_layer) report.serial_layer_s.push_back(median(samples));
    report.serial_forward_s = median(totals);
  }
  rt.idle_barrier();

  // The timed loop: warm-up passes are run but not recorded; a barrier lines the ranks up before each pass.
  {
    Progress progress(root, opt.warmup + opt.iterations);
    for (std::size_t it = 0; it < opt.warmup + opt.iterations; ++it) {
      rt.barrier();
      const bool timed = it >= opt.warmup;
      const double t0 = steady_seconds();
      forward.run(timed ? it - opt.warmup : 0, timed ? &rec : nullptr);
      if (timed) rec.forward_s[it - opt.warmup] = steady_seconds() - t0;
      if (root) progress.update(it + 1);
    }
  }
  const std::vector<float> output = activation_to_batch_major(forward.output(), layers.back().out.c, B);
  rec.output_fnv1a64 = fnv1a64(output);

  report.records = rt.gather(rec);
  if (!root) return kOk;  // rank 0 decides the verdict; the others' exit status does not depend on it

  report.command_line = opt.command_line;
  report.mpi_library = Runtime::library_version();
  report.seed = opt.seed;
  report.weights_file = opt.weights;
  report.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  report.slurm_nodelist = env_or_empty("SLURM_JOB_NODELIST");
  report.slurm_ntasks = env_or_empty("SLURM_NTASKS");
  report.timestamp_cost_s = measure_timestamp_cost();
  // Per pass: the forward-pass start and end, the broadcast's entry and exit, and per layer the kernel's start and
  // end and the consolidation's entry and exit.
  report.timestamps_per_pass = 4 + 4 * layers.size();
  report.net = net;
  report.layers = layers;
  report.boundaries = boundaries;
  report.batch = B;
  report.ranks = static_cast<std::size_t>(rt.size());
  report.iterations = opt.iterations;
  report.warmup = opt.warmup;
  report.nodes = rt.node_count();
  report.consolidation = std::string(to_string(opt.consolidation));
  report.input_name = input.name;
  report.first_index = opt.index;
  report.rows = input.images.rows;
  report.cols = input.images.cols;
  report.first_image.assign(input.images.pixels.begin(),
                            input.images.pixels.begin() + static_cast<std::ptrdiff_t>(report.rows * report.cols));
  report.first_label = input.first_label;
  report.fashion_labels = input.fashion_labels;
  report.times = derive_times(report.records);
  report.checksum = rec.output_fnv1a64;
  for (const float v : output) report.output_sum += v;
  for (const RankRecord& r : report.records) report.ranks_agree &= r.output_fnv1a64 == rec.output_fnv1a64;
  const std::vector<float> serial = activation_to_batch_major(serial_output, layers.back().out.c, B);
  if (opt.verify) report.verification = compare(output, serial);

  if (!opt.quiet) {
    print_input(std::cout, report);
    print_breakdown(std::cout, report);
  }
  print_summary(std::cout, report);

  if (!output_path.empty()) {
    std::optional<TensorDump> dump;
    if (!opt.dump_tensors.empty()) {
      dump.emplace();
      dump->input = activation_to_batch_major(consolidation->input(), net.input.elements(), B);
      dump->weights = full;
      if (opt.dump_tensors == "all")
        for (std::size_t l = 0; l < layers.size(); ++l)
          dump->layer_outputs.push_back(activation_to_batch_major(consolidation->tensor(l), layers[l].out.elements(), B));
      dump->output = output;
    }
    const double t0 = steady_seconds();
    try {
      write_results_file(output_path, opt.force, report, dump ? &*dump : nullptr);
    } catch (const std::exception& e) {
      std::cerr << "cnnpar_mpi: error: writing results: " << e.what() << "\n";
      return kRuntimeError;
    }
    const double t1 = steady_seconds();
    std::cout << "Results: " << output_path.string() << " (" << with_commas(std::filesystem::file_size(output_path))
              << " B, written in " << static_cast<long>((t1 - t0) * 1e3 + 0.5) << " ms)\n";
  }
  std::cout.flush();
  const bool verified = !report.verification || (report.verification->bitwise_equal() && report.ranks_agree);
  return verified ? kOk : kVerifyFailed;
}

}  // namespace

int main(int argc, char** argv) {
  Runtime rt(argc, argv);
  try {
    return run(rt, argc, argv);
  } catch (const std::exception& e) {
    // Unexpected here: the known bad inputs are agreed on above. A rank that throws cannot leave its peers waiting
    // in a collective, so it takes the job down.
    std::cerr << "cnnpar_mpi: rank " << rt.rank() << ": fatal: " << e.what() << "\n";
    MPI_Abort(rt.comm(), kRuntimeError);
  }
  return kRuntimeError;
}
