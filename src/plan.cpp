// Names of the run-plan choices (see plan.hpp).
#include "cnnpar/plan.hpp"

namespace cnnpar {

std::string_view to_string(ConsolidationKind kind) {
  switch (kind) {
    case ConsolidationKind::allgatherv: return "allgatherv";
  }
  return "unknown";
}

std::optional<ConsolidationKind> parse_consolidation_kind(std::string_view name) {
  if (name == "allgatherv") return ConsolidationKind::allgatherv;
  return std::nullopt;
}

}  // namespace cnnpar
