// Simulated compute for the SMPI build (see sim_compute.hpp). Compiled only with CNNPAR_SMPI.
#include "cnnpar/sim_compute.hpp"

#include <mpi.h>

#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>

namespace cnnpar::sim {
namespace {

// Operations per second of the serial kernels on the development VM (2-core, no -march=native), measured by
// scripts/smpi_calibrate.sh from a 1-rank run with --batch 16. Overridden by $CNNPAR_SMPI_RATES.
constexpr const char* kDefaultRates = "conv=3.363e9,fc=6.245e9,gelu=5.368e7,logsoftmax=8.47e7,pool=1.587e9";

std::map<std::string, double, std::less<>> parse(const std::string& text) {
  std::map<std::string, double, std::less<>> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("CNNPAR_SMPI_RATES: expected kind=rate, got '" + item + "'");
    const double rate = std::stod(item.substr(eq + 1));
    if (!(rate > 0)) throw std::invalid_argument("CNNPAR_SMPI_RATES: rate of '" + item + "' must be positive");
    out[item.substr(0, eq)] = rate;
  }
  return out;
}

const std::string& rate_text() {
  static const std::string text = [] {
    const char* env = std::getenv("CNNPAR_SMPI_RATES");
    return std::string(env && *env ? env : kDefaultRates);
  }();
  return text;
}

}  // namespace

std::string rates() { return rate_text(); }

void charge(const LayerInfo& layer, std::uint64_t ops) {
  static const auto table = parse(rate_text());
  const auto it = table.find(kind_name(layer.spec));
  if (it == table.end())
    throw std::invalid_argument("CNNPAR_SMPI_RATES has no rate for layer kind '" + std::string(kind_name(layer.spec)) +
                                "'");
  if (ops > 0) smpi_execute(static_cast<double>(ops) / it->second);
}

}  // namespace cnnpar::sim
