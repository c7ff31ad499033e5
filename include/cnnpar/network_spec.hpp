// Network spec files (--net FILE): a network a person writes by hand, one layer per line, in order
// (docs/network-spec.md):
//
//   # the seed network
//   conv 32 kernel=3 stride=1     # conv FILTERS [kernel=K] [stride=S]      (K 3, S 1 by default)
//   maxpool 2                     # maxpool K [stride=S]                    (S = K by default; "pool" too)
//   gelu tanh                     # gelu [tanh|erf]                         (tanh by default)
//   flatten                       # optional: a linear layer flattens its input (C,H,W order) anyway
//   linear 128                    # linear OUT_FEATURES                     ("fc" too)
//   logsoftmax                    # over the features of a flat vector
//
// Pure text processing, no files and no MPI: rank 0 reads the file and every rank parses the same text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cnnpar/network.hpp"

namespace cnnpar {

// A spec file that cannot be read as one (as opposed to a network whose shapes do not fit its input).
class NetworkSpecError : public NetworkError {
 public:
  using NetworkError::NetworkError;
};

// The layers of a spec. Throws NetworkSpecError "SOURCE:LINE: what is wrong" for an unknown layer, a missing or
// malformed number, an unknown key or a spec without layers. Shapes are checked later, by describe().
std::vector<LayerSpec> parse_network_spec(std::string_view text, std::string_view source);

// The network --net names: "seed" (shaped by the seed options), "letters", or a spec file whose text is
// `spec_text`. `input` is the image shape.
NetworkSpec build_network(const std::string& net, const std::string& spec_text, Shape input, std::size_t filters,
                          std::size_t hidden, std::size_t conv_kernel, std::size_t pool_kernel, GeluForm gelu);

}  // namespace cnnpar
