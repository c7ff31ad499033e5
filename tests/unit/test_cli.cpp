// Command-line parsing: defaults, values, and one clear message per mistake.
#include <gtest/gtest.h>

#include "cnnpar/cli.hpp"

using namespace cnnpar;

namespace {
ParsedCommandLine parse(std::vector<const char*> args) {
  args.insert(args.begin(), "cnnpar_mpi");
  return parse_command_line(static_cast<int>(args.size()), args.data());
}
}  // namespace

TEST(Cli, Defaults) {
  const auto p = parse({});
  ASSERT_EQ(p.action, ParsedCommandLine::Action::run) << p.message;
  EXPECT_EQ(p.options.batch, 1u);
  EXPECT_EQ(p.options.iterations, 100u);
  EXPECT_EQ(p.options.filters, 32u);
  EXPECT_EQ(p.options.hidden, 128u);
  EXPECT_EQ(p.options.gelu, GeluForm::tanh);
  EXPECT_TRUE(p.options.images.empty());
  EXPECT_FALSE(p.options.verify);
  EXPECT_TRUE(p.options.fusion);
  EXPECT_FALSE(parse({"--fusion", "off"}).options.fusion);
}

TEST(Cli, Values) {
  const auto p = parse({"--batch", "64", "--index=3", "--gelu", "erf", "--verify", "-q", "--images", "/x y.gz",
                        "--filters", "8", "--seed", "-5"});
  ASSERT_EQ(p.action, ParsedCommandLine::Action::run) << p.message;
  EXPECT_EQ(p.options.batch, 64u);
  EXPECT_EQ(p.options.index, 3u);
  EXPECT_EQ(p.options.gelu, GeluForm::erf);
  EXPECT_TRUE(p.options.verify);
  EXPECT_TRUE(p.options.quiet);
  EXPECT_EQ(p.options.images, "/x y.gz");
  EXPECT_EQ(p.options.filters, 8u);
  EXPECT_TRUE(p.options.output.empty());
  const auto q = parse({"--output", "run.h5", "--force", "--weights", "w.h5", "--dump-tensors", "all"});
  ASSERT_EQ(q.action, ParsedCommandLine::Action::run) << q.message;
  EXPECT_EQ(q.options.output, "run.h5");
  EXPECT_TRUE(q.options.force);
  EXPECT_EQ(q.options.weights, "w.h5");
  EXPECT_EQ(q.options.dump_tensors, "all");
  const auto c = parse({"--consolidation", "hierarchical", "--plan", "fused-column", "--ranks-per-node", "2"});
  ASSERT_EQ(c.action, ParsedCommandLine::Action::run) << c.message;
  EXPECT_EQ(c.options.consolidation, ConsolidationKind::hierarchical);
  EXPECT_EQ(c.options.plan, PlanKind::fused_column);
  EXPECT_EQ(c.options.ranks_per_node, 2u);
  EXPECT_TRUE(parse({"--compare"}).options.compare);
  EXPECT_TRUE(parse({"--calibrate"}).options.calibrate);
  EXPECT_EQ(p.options.command_line, "cnnpar_mpi --batch 64 --index=3 --gelu erf --verify -q --images '/x y.gz' "
                                    "--filters 8 --seed -5");
}

TEST(Cli, Errors) {
  const std::pair<std::vector<const char*>, std::string> cases[] = {
      {{"--bogus"}, "unrecognised option '--bogus'"},
      {{"--batch", "ten"}, "the argument ('ten') for option '--batch' is invalid"},
      {{"--batch", "0"}, "--batch must be a positive integer (got 0)"},
      {{"--batch", "-3"}, "--batch must be a positive integer (got -3)"},
      {{"--iterations", "0"}, "--iterations must be a positive integer (got 0)"},
      {{"--warmup", "-1"}, "--warmup must be 0 or more (got -1)"},
      {{"--index", "-1"}, "--index must be 0 or more (got -1)"},
      {{"--gelu", "relu"}, "--gelu must be tanh or erf (got 'relu')"},
      {{"--fusion", "yes"}, "--fusion must be on or off (got 'yes')"},
      {{"--consolidation", "carrier-pigeon"}, "--consolidation must be allgatherv, shared or hierarchical"},
      {{"--plan", "eager"}, "--plan must be per-layer, fused or fused-column (got 'eager')"},
      {{"--ranks-per-node", "-2"}, "--ranks-per-node must be 0 or more (got -2)"},
      {{"--compare", "--plan", "fused"}, "--compare runs every --consolidation and --plan"},
      {{"--labels", "l.idx"}, "--labels needs --images"},
      {{"--dump-tensors", "final"}, "--dump-tensors needs --output"},
      {{"--output", "r.h5", "--dump-tensors", "some"}, "--dump-tensors must be final or all (got 'some')"},
      {{"--output", ""}, "--output needs a file or directory name"},
      {{"--output"}, "the required argument for option '--output' is missing"},
      // issue 13: an empty string is not "use the default", stray words are not ignored, and --compare with
      // --dump-tensors is refused whichever comes first
      {{"--images", ""}, "--images is empty"},
      {{"--images", "i.idx", "--labels", ""}, "--labels is empty"},
      {{"--weights", ""}, "--weights is empty"},
      {{"--batch", "4", "16"}, "unexpected argument '16'"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--compare", "--output", "r.h5", "--dump-tensors", "final"}, "--dump-tensors is not available with --compare"},
      {{"--output", "r.h5", "--dump-tensors", "final", "--compare"}, "--dump-tensors is not available with --compare"},
  };
  for (const auto& [args, message] : cases) {
    const auto p = parse(args);
    EXPECT_EQ(p.action, ParsedCommandLine::Action::error) << args[0];
    EXPECT_NE(p.message.find(message), std::string::npos) << "got: " << p.message;
  }
}

TEST(Cli, HelpDocumentsEveryOption) {
  const auto p = parse({"--help"});
  ASSERT_EQ(p.action, ParsedCommandLine::Action::help);
  for (const char* opt : {"--images", "--labels", "--index", "--batch", "--filters", "--hidden", "--conv-kernel",
                          "--pool-kernel", "--gelu", "--seed", "--iterations", "--warmup", "--consolidation",
                          "--verify", "--quiet", "--help", "--version", "--output", "--force", "--weights",
                          "--dump-tensors", "--plan", "--ranks-per-node", "--compare", "--calibrate", "--no-progress"})
    EXPECT_NE(p.message.find(opt), std::string::npos) << opt;
}
