// libFuzzer target: the network spec parser (--net FILE) and the shape inference and plans after it. Any text must
// end in a network or in one NetworkError (or a plan's std::invalid_argument), never a crash, a hang or a huge
// allocation: the parser bounds every number, describe() checks every shape.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "cnnpar/network_spec.hpp"
#include "cnnpar/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const cnnpar::NetworkSpec net{"fuzz.net", cnnpar::Shape{1, 28, 28}, cnnpar::parse_network_spec(text, "fuzz.net")};
    const auto layers = cnnpar::describe(net);
    std::size_t elements = 0;
    for (const auto& l : layers) elements += l.out.elements() + l.weight_count;
    if (elements > (std::size_t{1} << 26)) return 0;  // the program's size checks refuse such networks first
    for (cnnpar::PlanKind plan : cnnpar::kAllPlans) cnnpar::make_plan(plan, layers, 2, 3);
  } catch (const cnnpar::NetworkError&) {
  } catch (const std::invalid_argument&) {
  } catch (const std::overflow_error&) {
  }
  return 0;
}
