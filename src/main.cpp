// cnnpar_mpi: parse -> run the experiment (experiment.hpp) -> report -> write.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <optional>

#include "cnnpar/checksum.hpp"
#include "cnnpar/cli.hpp"
#include "cnnpar/consolidation.hpp"
#include "cnnpar/experiment.hpp"
#include "cnnpar/network_spec.hpp"
#include "cnnpar/idx.hpp"
#include "cnnpar/input_file.hpp"
#include "cnnpar/kernels.hpp"
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
    path /= o.compare ? "cnnpar_np" + std::to_string(ranks) + "_b" + std::to_string(o.batch) + "_compare" +
                          (o.compare_what == "splits" ? "_splits" : "") + ".h5"
                      : results_name(ranks, o.batch, to_string(o.consolidation), to_string(o.plan));
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw std::runtime_error("output directory '" + dir.string() + "' does not exist");
  if (fs::exists(fs::symlink_status(path)) && !o.force)
    throw std::runtime_error("output file '" + path.string() + "' exists; pass --force to overwrite it");
  if (access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error("output directory '" + dir.string() + "' is not writable");
  return path;
}

// The job-wide fields of every report (rank 0): what was run, where, on what input.
void describe_job(RunReport& report, const Options& opt, const Input& input, const std::string& created_utc,
                  double timestamp_cost_s) {
  report.command_line = opt.command_line;
  report.mpi_library = Runtime::library_version();
  report.created_utc = created_utc;
  report.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  report.slurm_nodelist = env_or_empty("SLURM_JOB_NODELIST");
  report.slurm_ntasks = env_or_empty("SLURM_NTASKS");
  report.timestamp_cost_s = timestamp_cost_s;
  // Per pass: the forward-pass start and end, the broadcast's entry and exit, and per step the kernel's start and
  // end and the boundary's entry and exit.
  report.timestamps_per_pass = 4 + 4 * report.steps.size();
  report.ranks_per_node = opt.ranks_per_node;
  report.input_name = input.name;
  report.first_index = opt.index;
  report.rows = input.images.rows;
  report.cols = input.images.cols;
  report.first_image.assign(input.images.pixels.begin(),
                            input.images.pixels.begin() + static_cast<std::ptrdiff_t>(report.rows * report.cols));
  report.first_label = input.first_label;
  report.fashion_labels = input.fashion_labels;
}

void print_reports(const Options& opt, const ExperimentResult& result) {
  const RunReport& first = result.runs.front();
  if (opt.compare) {
    print_comparison(std::cout, result.runs);
  } else {
    if (!opt.quiet) {
      print_input(std::cout, first);
      print_breakdown(std::cout, first);
    }
    print_summary(std::cout, first);
  }
  if (result.calibration) print_calibration(std::cout, *result.calibration, first.ranks);
}

int write_results(const Options& opt, const std::filesystem::path& path, ExperimentResult& result) {
  std::optional<TensorDump> dump;
  if (!opt.dump_tensors.empty()) {
    const RunReport& r = result.runs.front();
    dump.emplace();
    dump->input = activation_to_batch_major(result.input, r.net.input.elements(), r.batch);
    dump->weights = result.full_weights;
    for (std::size_t s = 0; s < result.layer_outputs.size(); ++s)
      dump->layer_outputs.push_back(
          activation_to_batch_major(result.layer_outputs[s], r.layers[r.steps[s].layer].out.elements(), r.batch));
    dump->output = result.output;
  }
  if (result.calibration) result.runs.front().calibration = result.calibration;
  const double t0 = steady_seconds();
  try {
    if (opt.compare) write_compare_file(path, opt.force, result.runs);
    else write_results_file(path, opt.force, result.runs.front(), dump ? &*dump : nullptr);
  } catch (const std::exception& e) {
    std::cerr << "cnnpar_mpi: error: writing results: " << e.what() << "\n";
    return kRuntimeError;
  }
  const double t1 = steady_seconds();
  std::cout << "Results: " << path.string() << " (" << with_commas(std::filesystem::file_size(path))
            << " B, written in " << static_cast<long>((t1 - t0) * 1e3 + 0.5) << " ms)\n";
  return kOk;
}

// parse -> read the input -> agree on the set-up -> run -> report -> write. Every rank reaches each agreement point;
// a bad input anywhere ends every rank with one message from rank 0 and exit status 2.
// A failure anywhere in the set-up ends every rank with one message from rank 0 and exit status 2.
struct BadInput {
  std::string message;
};

// Rank 0 does `work` (reading, checking); every rank learns whether it worked.
template <class Work>
void on_root_agreed(Runtime& rt, Work work) {
  std::string error;
  if (rt.rank() == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  rt.broadcast(error, 0);
  if (!error.empty()) throw BadInput{error};
}

// What the job runs, agreed by every rank before anything is timed: the kernels' instruction set, the input (rank 0
// reads the images and any spec file; everyone learns the shapes), the set-up (checked identically everywhere), the
// weights file, the memory it needs and the output path (rank 0 checks, everyone learns the verdict).
struct Job {
  Input input;  // rank 0
  ExperimentSetup setup;
  std::filesystem::path output_path;            // rank 0; empty: no results file
  std::unique_ptr<OutputFile> reserved_output;  // proves the path writable now; removed unless the write publishes it
};

void prepare(Runtime& rt, const Options& opt, const Topology& topo, Job& job) {
  // The instruction set, pinned on every rank or none (a heterogeneous job could lack it on some nodes).
  if (!rt.all_ok(pin_kernel_target(opt.kernels))) {
    std::string have;
    for (const std::string& t : kernel_targets()) have += (have.empty() ? "" : ", ") + t;
    throw BadInput{"--kernels " + opt.kernels + " is not an instruction set every rank's CPU can run (rank 0's can "
                   "run: auto, " + have + ")"};
  }
  std::vector<std::uint64_t> dims(3, 0);
  std::string spec_text;
  on_root_agreed(rt, [&] {
    job.input = load_input(opt);
    dims = {job.input.images.count, job.input.images.rows, job.input.images.cols};
    if (opt.net != "seed" && opt.net != "letters") spec_text = read_small_text_file(opt.net, "--net spec file");
  });
  rt.broadcast(dims, 0);
  rt.broadcast(spec_text, 0);

  ExperimentSetup& setup = job.setup;
  std::vector<LayerInfo> layers;
  try {
    setup.net = build_network(opt.net, spec_text, Shape{1, dims[1], dims[2]}, opt.filters, opt.hidden,
                              opt.conv_kernel, opt.pool_kernel, opt.gelu);
    setup.batch = dims[0];
    layers = describe(setup.net);
    // Sizes first: no wrapped-around or too-large count may reach a plan or an allocation.
    check_sizes(opt, layers, setup.batch);
    if (!opt.compare) setup.combinations = {Combination{opt.consolidation, opt.plan, "", opt.splits}};
    else if (opt.compare_what == "splits")
      setup.combinations = split_combinations(layers, topo.map(), setup.batch, opt.grid);
    else setup.combinations = all_combinations(topo.map(), opt.splits);
    setup.grid = opt.grid;
    setup.iterations = opt.iterations;
    setup.warmup = opt.warmup;
    setup.seed = opt.seed;
    setup.weights_file = opt.weights;
    setup.verify = opt.verify || opt.compare;
    setup.keep_outputs = opt.dump_tensors == "all";
    setup.calibrate = opt.calibrate;
    setup.fuse = opt.fusion;
    setup.progress = rt.rank() == 0 && opt.progress;
    check_setup(setup, topo.map());
  } catch (const NetworkSpecError& e) {
    throw BadInput{e.what()};
  } catch (const NetworkError& e) {
    throw BadInput{"network does not fit the " + std::to_string(dims[1]) + "x" + std::to_string(dims[2]) +
                   " input: " + e.what()};
  } catch (const std::exception& e) {
    throw BadInput{e.what()};
  }

  on_root_agreed(rt, [&] {
    const std::vector<int>& node_of = topo.map().node_of_rank;
    check_memory(job_memory(opt, layers, setup.batch, static_cast<std::size_t>(rt.size()), setup.combinations.size()),
                 memory_budget(static_cast<std::size_t>(std::count(node_of.begin(), node_of.end(), node_of[0]))));
    if (!opt.weights.empty()) validate_weights_file(opt.weights, layers);
    if (opt.output.empty()) return;
    job.output_path = resolve_output(opt, static_cast<std::size_t>(rt.size()));
    job.reserved_output = OutputFile::reserve(job.output_path, opt.force,
                                              {{"--images", opt.images},
                                               {"--labels", opt.labels},
                                               {"--weights", opt.weights},
                                               {"--net", opt.net == "seed" || opt.net == "letters" ? "" : opt.net}});
  });
}

// parse -> prepare -> run -> report -> write.
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
  const std::string created_utc = utc_now();
  const Topology topo(rt.comm(), opt.ranks_per_node);
  Job job;
  try {
    prepare(rt, opt, topo, job);
  } catch (const BadInput& e) {  // the same on every rank
    if (root) std::cerr << "cnnpar_mpi: error: " << e.message << "\n";
    return kBadInput;
  }

  ExperimentResult result =
      run_experiment(rt, topo, job.setup, root ? images_to_activation(job.input.images) : std::vector<float>());
  if (!root) return kOk;  // rank 0 decides the verdict; the others' exit status does not depend on it
  const double timestamp_cost_s = measure_timestamp_cost();
  for (RunReport& r : result.runs) describe_job(r, opt, job.input, created_utc, timestamp_cost_s);
  print_reports(opt, result);
  if (!job.output_path.empty())
    if (const int status = write_results(opt, job.output_path, result); status != kOk) return status;
  std::cout.flush();
  return result.passed() ? kOk : kVerifyFailed;
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
