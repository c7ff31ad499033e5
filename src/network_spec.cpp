// The network spec parser (see network_spec.hpp).
#include "cnnpar/network_spec.hpp"

#include <charconv>
#include <map>
#include <sstream>

namespace cnnpar {

namespace {

struct Line {
  std::string_view source;
  std::size_t number;
  [[noreturn]] void fail(const std::string& what) const {
    throw NetworkSpecError(std::string(source) + ":" + std::to_string(number) + ": " + what);
  }
};

std::size_t positive(const Line& line, std::string_view word, const std::string& what) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
  if (ec != std::errc() || end != word.data() + word.size() || v == 0)
    line.fail(what + " must be a positive integer (got '" + std::string(word) + "')");
  if (v > (std::size_t{1} << 31)) line.fail(what + " " + std::string(word) + " is too large");
  return v;
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (at < text.size()) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == '\r')) ++at;
    std::size_t end = at;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t' && text[end] != '\r') ++end;
    if (end > at) out.push_back(text.substr(at, end - at));
    at = end;
  }
  return out;
}

// key=value options after the positional arguments; only `allowed` keys.
std::map<std::string, std::size_t> options(const Line& line, const std::vector<std::string_view>& w, std::size_t from,
                                           std::initializer_list<const char*> allowed) {
  std::map<std::string, std::size_t> out;
  for (std::size_t i = from; i < w.size(); ++i) {
    const std::size_t eq = w[i].find('=');
    const std::string key(w[i].substr(0, eq));
    bool ok = eq != std::string_view::npos;
    bool known = false;
    for (const char* a : allowed) known |= key == a;
    if (!ok || !known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a) + "=N";
      line.fail("unexpected '" + std::string(w[i]) + "' after " + std::string(w[0]) +
                (list.empty() ? " (it takes no options)" : " (options: " + list + ")"));
    }
    if (out.count(key)) line.fail(key + " given twice");
    out[key] = positive(line, w[i].substr(eq + 1), key);
  }
  return out;
}

}  // namespace

std::vector<LayerSpec> parse_network_spec(std::string_view text, std::string_view source) {
  std::vector<LayerSpec> layers;
  std::size_t number = 0, at = 0;
  while (at <= text.size()) {
    const std::size_t nl = std::min(text.find('\n', at), text.size());
    std::string_view content = text.substr(at, nl - at);
    at = nl + 1;
    ++number;
    const Line line{source, number};
    if (const std::size_t hash = content.find('#'); hash != std::string_view::npos) content = content.substr(0, hash);
    const std::vector<std::string_view> w = words(content);
    if (w.empty()) continue;
    const std::string_view kind = w[0];
    if (kind == "conv") {
      if (w.size() < 2 || w[1].find('=') != std::string_view::npos) line.fail("conv needs its number of filters");
      Conv2dSpec c{positive(line, w[1], "conv filters"), 3, 1};
      const auto opt = options(line, w, 2, {"kernel", "stride"});
      if (opt.count("kernel")) c.kernel = opt.at("kernel");
      if (opt.count("stride")) c.stride = opt.at("stride");
      layers.emplace_back(c);
    } else if (kind == "maxpool" || kind == "pool") {
      if (w.size() < 2 || w[1].find('=') != std::string_view::npos) line.fail("maxpool needs its window size");
      MaxPool2dSpec p;
      p.kernel = p.stride = positive(line, w[1], "maxpool window");
      const auto opt = options(line, w, 2, {"stride"});
      if (opt.count("stride")) p.stride = opt.at("stride");
      layers.emplace_back(p);
    } else if (kind == "gelu") {
      GeluSpec g;
      if (w.size() >= 2) {
        if (w[1] == "erf") g.form = GeluForm::erf;
        else if (w[1] != "tanh") line.fail("gelu takes tanh or erf (got '" + std::string(w[1]) + "')");
      }
      if (w.size() > 2) line.fail("unexpected '" + std::string(w[2]) + "' after gelu " + std::string(w[1]));
      layers.emplace_back(g);
    } else if (kind == "linear" || kind == "fc") {
      if (w.size() < 2) line.fail("linear needs its number of output features");
      LinearSpec l{positive(line, w[1], "linear output features")};
      options(line, w, 2, {});
      layers.emplace_back(l);
    } else if (kind == "logsoftmax") {
      options(line, w, 1, {});
      layers.emplace_back(LogSoftmaxSpec{});
    } else if (kind == "flatten") {
      options(line, w, 1, {});  // linear layers flatten their input in C,H,W order: nothing to add
    } else {
      line.fail("unknown layer '" + std::string(kind) + "' (conv, maxpool, gelu, flatten, linear, logsoftmax)");
    }
  }
  if (layers.empty()) throw NetworkSpecError(std::string(source) + ": the spec has no layers");
  return layers;
}

NetworkSpec build_network(const std::string& net, const std::string& spec_text, Shape input, std::size_t filters,
                          std::size_t hidden, std::size_t conv_kernel, std::size_t pool_kernel, GeluForm gelu) {
  if (net == "seed") return seed_network(input.h, input.w, filters, hidden, gelu, conv_kernel, pool_kernel);
  if (net == "letters") return letters_network(input.h, input.w, gelu);
  return NetworkSpec{net, input, parse_network_spec(spec_text, net)};
}

}  // namespace cnnpar
