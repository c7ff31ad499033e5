// Command-line parsing with Boost.Program_options (see cli.hpp).
#include "cnnpar/cli.hpp"

#include <boost/program_options.hpp>
#include <sstream>

#include "cnnpar/version.hpp"

namespace po = boost::program_options;

namespace cnnpar {

namespace {

// Numbers are read as signed 64-bit and range-checked here: an unsigned parse would turn "-3" into 2^64-3.
std::size_t checked_count(const po::variables_map& vm, const char* name, long long min_value) {
  const long long v = vm[name].as<long long>();
  if (v < min_value)
    throw po::error("--" + std::string(name) + " must be " + (min_value > 0 ? "a positive integer" : "0 or more") +
                    " (got " + std::to_string(v) + ")");
  return static_cast<std::size_t>(v);
}

// A string option given as '' (an unset shell variable, a script's empty default) is an error: falling back to the
// default would run other data than the user meant.
std::string non_empty(const po::variables_map& vm, const char* name, const char* wanted) {
  std::string value = vm[name].as<std::string>();
  if (value.empty())
    throw po::error("--" + std::string(name) + " is empty; it needs " + wanted + " (an unset shell variable?)");
  return value;
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,+@%") ==
                          std::string::npos)
    return arg;
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

ParsedCommandLine parse_command_line(int argc, const char* const* argv) {
  ParsedCommandLine result;
  Options& o = result.options;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) o.command_line += ' ';
    o.command_line += shell_quote(argv[i]);
  }

  po::options_description input("Input");
  input.add_options()
      ("images", po::value<std::string>(), "IDX image file (MNIST/Fashion-MNIST format, plain or .gz); default: the "
       "first 512 Fashion-MNIST test images, compiled into the program")
      ("labels", po::value<std::string>(), "IDX label file for --images (optional; shown with the image)")
      ("index", po::value<long long>()->default_value(0), "first image of the batch in the file")
      ("batch", po::value<long long>()->default_value(1), "images per forward pass (B)");
  po::options_description network("Network");
  network.add_options()
      ("net", po::value<std::string>()->default_value("seed"),
       "seed (conv 3x3 x32 -> max-pool 2x2 -> GELU -> linear 128, shaped by the four options below), letters (the "
       "seed's complete demo: 3 x [conv 3x3 -> max-pool 2 -> GELU] with 32, 64, 128 filters -> linear 512 -> GELU "
       "-> linear 256 -> GELU -> linear 26 -> LogSoftmax) or the path of a network spec file (docs/network-spec.md)")
      ("filters", po::value<long long>()->default_value(32), "--net seed: convolution output channels")
      ("hidden", po::value<long long>()->default_value(128), "--net seed: linear layer output features")
      ("conv-kernel", po::value<long long>()->default_value(3), "--net seed: convolution kernel size (stride 1, no padding)")
      ("pool-kernel", po::value<long long>()->default_value(2), "--net seed: max-pool window and stride")
      ("gelu", po::value<std::string>()->default_value("tanh"), "GELU form of --net seed and letters: tanh (PyTorch approximate='tanh') or erf")
      ("seed", po::value<long long>()->default_value(42), "weight initialisation seed (uniform +-1/sqrt(fan_in))");
  po::options_description run("Run");
  run.add_options()
      ("iterations", po::value<long long>()->default_value(100), "timed forward passes (medians are reported)")
      ("kernels", po::value<std::string>()->default_value("auto"),
       "instruction set of the kernels: auto (the best this CPU has), or avx3 (AVX-512), avx2, sse4, ssse3, emu128 to "
       "pin one, e.g. to reproduce a checksum made on another machine (results are bit for bit per instruction set; "
       "docs/kernels.md)")
      ("fusion", po::value<std::string>()->default_value("on"),
       "on: a convolution, the max-pooling after it and a GELU after that run as one kernel call when nothing moves "
       "between them (one rank, or the fused plans; the serial reference always), so only the last one's output goes "
       "through memory; each layer's time is still measured apart. off: every layer on its own, its output written "
       "(docs/kernels.md)")
      ("warmup", po::value<long long>()->default_value(10), "untimed forward passes before them")
      ("consolidation", po::value<std::string>()->default_value("allgatherv"),
       "how slices become whole tensors at each layer boundary: allgatherv (MPI_Allgatherv, private copies), shared "
       "(one MPI-3 shared-memory window per node, read in place; one node only) or hierarchical (shared windows per "
       "node plus MPI_Allgatherv among node leaders)")
      ("plan", po::value<std::string>()->default_value("per-layer"),
       "per-layer (consolidate after every layer, the seed's plan), fused (conv->pool->GELU stay on each rank's "
       "channels; a linear layer after them row-parallel with a sum of partial outputs; two linear layers in a "
       "row pair column- then row-parallel) or fused-column (every linear layer column-parallel after one gather: "
       "bit for bit)")
      ("split", po::value<std::string>(),
       "override the plan's split per layer: LAYER=SPLIT[,...], LAYER a layer name (conv2, fc1; see the breakdown) "
       "or kind (conv, pool, gelu, fc, logsoftmax: all of that kind), SPLIT channel, element, feature, input-feature, "
       "replicated, rows, sample, tiles, rows-channel or sample-channel (which a layer allows: docs/design.md); "
       "e.g. --split conv=channel,gelu=element,fc=feature")
      ("grid", po::value<std::string>(), "RxC process grid of the 2-D splits (tiles, rows-channel, sample-channel): "
       "R blocks of rows or images times C blocks of columns or channels, R*C = P (default: the most square)")
      ("ranks-per-node", po::value<long long>()->default_value(0),
       "split each shared-memory node into groups of K consecutive ranks, to emulate several nodes on one machine "
       "(0: real nodes)")
      ("compare", po::value<std::string>()->implicit_value("plans"),
       "run combinations on the same input and weights, verify each, and print them side by side (with --output: "
       "one HDF5 group per combination): 'plans' (the default: every consolidation x plan) or 'splits' (every "
       "consolidation x decomposition: channel, fused, rows with halo exchange, sample)")
      ("output,o", po::value<std::string>(), "write every rank's timing and communication records to this HDF5 file "
       "(docs/results-schema.md); a directory (existing, or ending in '/') gets the default name "
       "cnnpar_np<P>_b<B>_<consolidation>_<plan>.h5 (cnnpar_np<P>_b<B>_compare.h5 with --compare)")
      ("force", "replace an existing --output file (it is never replaced silently)")
      ("weights", po::value<std::string>(), "load weights from an HDF5 file with PyTorch names and shapes "
       "(seed: conv.weight [32,1,3,3], conv.bias, fc.weight [128,5408], fc.bias; letters: conv1..conv3, fc1..fc3) instead of initialising them from --seed")
      ("dump-tensors", po::value<std::string>(), "with --output, also store tensors in PyTorch layouts: 'final' "
       "(input batch, weights, output) or 'all' (also every layer's output)")
      ("calibrate", "after the run, time MPI_Allgatherv, MPI_Allreduce and MPI_Bcast alone for 64 B .. 4 MiB and at "
       "every size the run's boundaries move (20 repetitions, slowest rank), and the Allgatherv again on freshly "
       "written data as in a pass (allgatherv_fresh), then every gather boundary of the runs as the pass leaves the "
       "caches (in_pass: each rank first streams through what its kernels since the previous boundary touch), and "
       "print them; with --output they go to /calibration for the cost model (python3 -m analysis model)")
      ("verify", "compare the distributed output with the serial reference bit for bit; exit 3 if they differ")
      ("quiet,q", "print only the summary table")
      ("no-progress", "do not show the forward-pass count on the terminal (shown by rank 0 only when the job has an "
       "interactive terminal, never in a log or a batch job)")
      ("help,h", "show this help and exit")
      ("version", "show the version and exit");
  po::options_description all;
  all.add(input).add(network).add(run);

  try {
    po::variables_map vm;
    const po::parsed_options parsed = po::command_line_parser(argc, argv).options(all).run();
    // Words that belong to no option ("--batch 4 16") would otherwise be dropped without a word.
    for (const po::option& word : parsed.options)
      if (word.position_key >= 0 && !word.value.empty())
        throw po::error("unexpected argument '" + word.value.front() +
                        "' (every option is --name or --name value; is an option missing, or a value given twice?)");
    po::store(parsed, vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::ostringstream os;
      os << "Usage: mpirun -np P cnnpar_mpi [options]\n\n"
         << "Runs a CNN forward pass split across P MPI ranks (by default conv and pool by output channel, GELU by\n"
         << "element, linear by output feature, every layer's output consolidated on every rank; --plan and --split\n"
         << "choose other cuts), and reports who computed what, what moved, and how long it took, against a serial\n"
         << "reference run in the same job.\n"
         << all
         << "\nExit status: 0 success; 1 runtime error; 2 bad command line or input; 3 --verify found a difference.\n";
      result.action = ParsedCommandLine::Action::help;
      result.message = os.str();
      return result;
    }
    if (vm.count("version")) {
      result.action = ParsedCommandLine::Action::version;
      result.message = std::string("cnnpar_mpi ") + program_version() + " (git " + git_commit() + ")\n";
      return result;
    }
    if (vm.count("images")) o.images = non_empty(vm, "images", "an IDX image file");
    if (vm.count("labels")) {
      o.labels = non_empty(vm, "labels", "an IDX label file");
      if (o.images.empty()) throw po::error("--labels needs --images (the embedded sample has its own labels)");
    }
    o.index = checked_count(vm, "index", 0);
    o.batch = checked_count(vm, "batch", 1);
    o.net = vm["net"].as<std::string>();
    if (o.net.empty()) throw po::error("--net needs seed, letters or a spec file's path");
    if (o.net != "seed" && o.net != "letters" && !vm["gelu"].defaulted())
      throw po::error("--gelu applies to --net seed and letters; a spec file names each GELU's form (gelu erf)");
    if (o.net != "seed")
      for (const char* name : {"filters", "hidden", "conv-kernel", "pool-kernel"})
        if (!vm[name].defaulted())
          throw po::error("--" + std::string(name) + " shapes --net seed only (this run uses --net " + o.net + ")");
    if (vm.count("split")) {
      try {
        o.splits = parse_split_choices(vm["split"].as<std::string>());
      } catch (const std::invalid_argument& e) {
        throw po::error(std::string("--split: ") + e.what());
      }
    }
    if (vm.count("grid")) {
      try {
        o.grid = parse_grid(vm["grid"].as<std::string>());
      } catch (const std::invalid_argument& e) {
        throw po::error(e.what());
      }
    }
    o.filters = checked_count(vm, "filters", 1);
    o.hidden = checked_count(vm, "hidden", 1);
    o.conv_kernel = checked_count(vm, "conv-kernel", 1);
    o.pool_kernel = checked_count(vm, "pool-kernel", 1);
    o.seed = static_cast<std::uint64_t>(vm["seed"].as<long long>());
    o.iterations = checked_count(vm, "iterations", 1);
    o.kernels = vm["kernels"].as<std::string>();
    const std::string fusion = vm["fusion"].as<std::string>();
    if (fusion != "on" && fusion != "off") throw po::error("--fusion must be on or off (got '" + fusion + "')");
    o.fusion = fusion == "on";
    o.warmup = checked_count(vm, "warmup", 0);
    const std::string gelu = vm["gelu"].as<std::string>();
    if (gelu == "tanh") o.gelu = GeluForm::tanh;
    else if (gelu == "erf") o.gelu = GeluForm::erf;
    else throw po::error("--gelu must be tanh or erf (got '" + gelu + "')");
    const std::string consolidation = vm["consolidation"].as<std::string>();
    const auto kind = parse_consolidation_kind(consolidation);
    if (!kind)
      throw po::error("--consolidation must be allgatherv, shared or hierarchical (got '" + consolidation + "')");
    o.consolidation = *kind;
    const std::string plan = vm["plan"].as<std::string>();
    const auto plan_kind = parse_plan_kind(plan);
    if (!plan_kind) throw po::error("--plan must be per-layer, fused or fused-column (got '" + plan + "')");
    o.plan = *plan_kind;
    o.ranks_per_node = checked_count(vm, "ranks-per-node", 0);
    o.compare = vm.count("compare") > 0;
    if (o.compare) {
      o.compare_what = vm["compare"].as<std::string>();
      if (o.compare_what != "plans" && o.compare_what != "splits")
        throw po::error("--compare takes plans or splits (got '" + o.compare_what + "')");
      if (o.compare_what == "splits" && vm.count("split"))
        throw po::error("--compare splits chooses every layer's split itself; do not give --split with it");
    }
    o.calibrate = vm.count("calibrate") > 0;
    if (o.compare && (!vm["consolidation"].defaulted() || !vm["plan"].defaulted()))
      throw po::error("--compare runs every --consolidation and --plan; do not give either with it");
    if (vm.count("output")) {
      o.output = vm["output"].as<std::string>();
      if (o.output.empty()) throw po::error("--output needs a file or directory name");
    }
    o.force = vm.count("force") > 0;
    if (vm.count("weights")) o.weights = non_empty(vm, "weights", "an HDF5 weights file");
    if (vm.count("dump-tensors")) {
      o.dump_tensors = vm["dump-tensors"].as<std::string>();
      // (checked here, once the option is stored: checking it earlier let --compare --dump-tensors through)
      if (o.compare) throw po::error("--dump-tensors is not available with --compare");
      if (o.dump_tensors != "final" && o.dump_tensors != "all")
        throw po::error("--dump-tensors must be final or all (got '" + o.dump_tensors + "')");
      if (o.output.empty()) throw po::error("--dump-tensors needs --output (the tensors go into the results file)");
    }
    o.verify = vm.count("verify") > 0;
    o.quiet = vm.count("quiet") > 0;
    o.progress = vm.count("no-progress") == 0;
  } catch (const po::error& e) {
    result.action = ParsedCommandLine::Action::error;
    result.message = e.what();
  }
  return result;
}

}  // namespace cnnpar
