// Overflow-safe sizes and the memory budget (see limits.hpp).
#include "cnnpar/limits.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <variant>

#include "cnnpar/report.hpp"  // with_commas

namespace cnnpar {

Bytes operator*(Bytes a, std::uint64_t b) {
  Bytes r{0, a.overflow};
  if (__builtin_mul_overflow(a.value, b, &r.value)) r.overflow = true;
  if (b == 0) r = Bytes{};  // nothing of anything, however large the other factor
  return r;
}

Bytes operator+(Bytes a, Bytes b) {
  Bytes r{0, a.overflow || b.overflow};
  if (__builtin_add_overflow(a.value, b.value, &r.value)) r.overflow = true;
  return r;
}

std::string to_string(Bytes b) {
  return b.overflow ? "more than " + with_commas(UINT64_MAX) + " B" : with_commas(b.value) + " B";
}

namespace {

// Elements of a per-image shape, without wrapping (Shape::elements() would).
Bytes elements(const Shape& s) { return Bytes{s.c} * s.h * s.w; }

// Weight + bias floats of a layer, from its spec and input shape (LayerInfo's counts may have wrapped).
Bytes parameters(const LayerInfo& layer) {
  if (const auto* conv = std::get_if<Conv2dSpec>(&layer.spec))
    return Bytes{conv->out_channels} * layer.in.c * conv->kernel * conv->kernel + Bytes{conv->out_channels};
  if (const auto* fc = std::get_if<LinearSpec>(&layer.spec))
    return elements(layer.in) * fc->out_features + Bytes{fc->out_features};
  return {};  // pooling, activations: no parameters
}

std::string network_options(const Options& o) {
  if (o.net != "seed") return "--net " + o.net;
  return "--filters " + std::to_string(o.filters) + " --hidden " + std::to_string(o.hidden) + " --conv-kernel " +
         std::to_string(o.conv_kernel);
}

std::uint64_t read_first_number(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!key.empty() && line.rfind(key, 0) != 0) continue;
    std::istringstream fields(key.empty() ? line : line.substr(key.size()));
    std::uint64_t v = 0;
    if (fields >> v) return v;
    return 0;  // "max" (no limit) and anything unreadable
  }
  return 0;
}

}  // namespace

MemoryBudget memory_budget(std::size_t ranks_on_node) {
  if (const char* env = std::getenv("CNNPAR_MEMORY_BUDGET"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0') return {v, "CNNPAR_MEMORY_BUDGET"};
  }
  ranks_on_node = std::max<std::size_t>(ranks_on_node, 1);
  std::uint64_t total = read_first_number("/proc/meminfo", "MemTotal:") * 1024;
  std::string source = with_commas(total) + " B of physical memory";
  if (total == 0) {
    total = static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    source = with_commas(total) + " B of physical memory";
  }
  if (const std::uint64_t cg = read_first_number("/sys/fs/cgroup/memory.max", ""); cg > 0 && cg < total) {
    total = cg;
    source = with_commas(cg) + " B, the cgroup's memory.max";
  }
  std::uint64_t per_rank = total / ranks_on_node;
  std::string per_rank_source = source + " / " + std::to_string(ranks_on_node) + " rank" +
                                (ranks_on_node == 1 ? "" : "s") + " on this node";
  for (const auto& [resource, name] : {std::pair{RLIMIT_AS, "RLIMIT_AS (ulimit -v)"},
                                       std::pair{RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)"}}) {
    rlimit rl{};
    if (getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < per_rank) {
      per_rank = rl.rlim_cur;
      per_rank_source = with_commas(rl.rlim_cur) + " B, this process's " + name;
    }
  }
  return {per_rank, per_rank_source};
}

std::vector<MemoryNeed> job_memory(const Options& opt, const std::vector<LayerInfo>& layers, std::size_t batch,
                                   std::size_t ranks, std::size_t combinations) {
  combinations = std::max<std::size_t>(combinations, 1);
  Bytes floats_per_image = layers.empty() ? Bytes{} : elements(layers.front().in);
  Bytes params{};
  for (const LayerInfo& l : layers) {
    floats_per_image = floats_per_image + elements(l.out);
    params = params + parameters(l);
  }
  const std::string net = network_options(opt);
  std::vector<MemoryNeed> needs;
  // Whole tensors of every layer: consolidated outputs and kernel buffers per combination, and the serial
  // reference's outputs, layer outputs and input.
  needs.push_back({"activations", "--batch " + std::to_string(batch) + " with " + net,
                   floats_per_image * batch * sizeof(float) * (2 * combinations + 2)});
  // Whole weights on rank 0 (and read as double once while the file is checked), a slice per combination.
  needs.push_back({"weights", net, params * sizeof(float) * (combinations + 3)});
  // Per pass: compute, consolidation entry and exit per layer; broadcast entry, exit, pass start and duration. Every
  // rank's records reach rank 0, serialised and then unpacked (2P + its own).
  const Bytes per_rank = Bytes{opt.iterations} * (3 * layers.size() + 4) * sizeof(double);
  needs.push_back({"timing records", "--iterations " + std::to_string(opt.iterations) + (opt.compare ? " with --compare" : ""),
                   per_rank * combinations * (2 * ranks + 1)});
  // Who sent what to whom: per rank and stage (the broadcast and every layer) a row of P byte counts sent and one
  // read in place. Rank 0 gathers every rank's (serialised, then unpacked: 2P + its own, as the timing records) and
  // assembles each [S, P, P] matrix once more for the results file: P^2 grows past the rest at large P (SMPI runs).
  const Bytes rows_per_rank = Bytes{layers.size() + 1} * ranks * sizeof(std::uint64_t) * 2;
  needs.push_back({"communication matrices",
                   std::to_string(ranks) + " ranks" + (opt.compare ? " with --compare" : ""),
                   rows_per_rank * combinations * (3 * ranks + 1)});
  return needs;
}

void check_sizes(const Options& opt, const std::vector<LayerInfo>& layers, std::size_t batch) {
  const std::string net = network_options(opt);
  for (const LayerInfo& l : layers) {
    const Bytes per_image = elements(l.out);
    const Bytes whole = per_image * batch;
    const Bytes params = parameters(l);
    if (per_image.overflow || params.overflow || (params * sizeof(float) * 4).overflow ||
        (whole * sizeof(float) * 8).overflow)
      throw LimitError(net + ": layer '" + l.name + "' would have " + to_string(params * sizeof(float)) +
                       " of weights and " + to_string(whole * sizeof(float)) + " of output; sizes this large overflow");
    if (whole > static_cast<std::uint64_t>(INT_MAX)) {
      const bool batch_is_why = batch > 1 && !(per_image > static_cast<std::uint64_t>(INT_MAX));
      throw LimitError((batch_is_why ? "--batch " + std::to_string(batch) : net + " (--batch " + std::to_string(batch) + ")") +
                       ": layer '" + l.name + "' output is " + with_commas(whole.value) + " floats (" +
                       to_string(whole * sizeof(float)) + "), more than MPI's int count limit of " +
                       with_commas(INT_MAX) + " floats per collective" +
                       (batch_is_why ? "; use a smaller batch" : "; use a smaller network"));
    }
  }
}

void check_memory(const std::vector<MemoryNeed>& needs, const MemoryBudget& budget) {
  const auto bigger = [](Bytes a, Bytes b) { return a.overflow != b.overflow ? a.overflow : a.value > b.value; };
  Bytes total{};
  const MemoryNeed* largest = nullptr;
  for (const MemoryNeed& n : needs) {
    total = total + n.bytes;
    if (largest == nullptr || bigger(n.bytes, largest->bytes)) largest = &n;
  }
  if (largest == nullptr || !(total > budget.bytes)) return;
  throw LimitError(largest->options + " needs " + to_string(largest->bytes) + " of " + largest->what +
                   " on rank 0 (the whole job " + to_string(total) + "), more than the memory budget of " +
                   with_commas(budget.bytes) + " B per rank (" + budget.source +
                   "; CNNPAR_MEMORY_BUDGET=bytes sets another)");
}

}  // namespace cnnpar
