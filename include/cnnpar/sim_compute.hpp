// Simulated compute for the SMPI build (CNNPAR_SMPI; docs/simulation.md). In a normal build everything here is a
// no-op and the clock is the real one.
//
// Why not let SMPI time the kernels: by default SMPI measures each stretch of code between two MPI calls with the
// real clock and charges it to the simulated host. That makes simulated times as noisy as the machine running the
// simulation (two identical simulations differ), and on our 2-core machine running a thousand simulated ranks the
// real clock is not trustworthy anyway. So the SMPI runs switch that off (smpi/simulate-computation:no) and each kernel
// charges its exact operation count (network.hpp) at this machine's measured rate for that kind of layer
// (scripts/smpi_calibrate.sh): deterministic, and as fast as the kernel really is here. Packing, unpacking and the
// shared-window sums cost no simulated time (a limitation docs/simulation.md states).
#pragma once

#include <cstdint>
#include <string>

#include "cnnpar/network.hpp"

namespace cnnpar::sim {

#ifdef CNNPAR_SMPI
// Simulated compute is charged layer by layer, at rates measured layer by layer (scripts/smpi_calibrate.sh runs
// --fusion off), so the SMPI build never fuses a conv with its max-pool (plan.hpp: fuses_with_next).
inline constexpr bool kFusedKernels = false;
// Advances this rank's simulated clock by `ops` operations of `layer`'s kind at the calibrated rate: ops / rate
// seconds on a host as fast as this machine (smpi_execute: times smpi/host-speed flops on the simulated host).
void charge(const LayerInfo& layer, std::uint64_t ops);
// Operations per second of each layer kind, "conv=2.1e9,pool=...": $CNNPAR_SMPI_RATES, or the built-in defaults
// measured on the development machine. What this run charged with (written to /meta).
std::string rates();
#else
inline constexpr bool kFusedKernels = true;
inline void charge(const LayerInfo&, std::uint64_t) {}
inline std::string rates() { return {}; }
#endif

}  // namespace cnnpar::sim
