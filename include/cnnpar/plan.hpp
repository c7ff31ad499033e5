// The choices that say how a run moves data between ranks, as plain enums (no MPI), so the command line, the
// reports and the results file can name them without linking MPI.
#pragma once

#include <optional>
#include <string_view>

namespace cnnpar {

// How a layer's slices become a whole tensor on every rank (consolidation.hpp).
enum class ConsolidationKind { allgatherv };

std::string_view to_string(ConsolidationKind kind);
std::optional<ConsolidationKind> parse_consolidation_kind(std::string_view name);

}  // namespace cnnpar
