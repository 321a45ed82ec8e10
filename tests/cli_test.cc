// End-to-end tests of the edgeq binary: golden greedy text, conversion, one-line
// errors with exit code 1 for broken inputs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "kernels/kernels.h"
#include "nlohmann/json.hpp"
#include "test_util.h"

namespace edgeq {
namespace {

using test::RunEdgeq;

std::string Read(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Models() { return test::SourceDir() + "/models/stories260K/"; }
std::string Golden() { return Read(test::SourceDir() + "/tests/stories260K-greedy200.txt"); }

// A one-line error: "edgeq: error: ..." and exit code 1.
void ExpectCleanError(const test::CmdResult& r, const std::string& must_contain) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("edgeq: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, GoldenGreedyStories260K) {
  auto r = RunEdgeq("run -m " + Models() + "stories260K.bin -z " + Models() + "tok512.bin --temp 0 -n 200 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Golden());
}

TEST(Cli, GoldenGreedyDefaultModel) {
  auto r = RunEdgeq("run --temp 0 -n 200");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Golden());
  EXPECT_NE(r.err.find("tok/s"), std::string::npos);  // stats go to stderr
}

TEST(Cli, GoldenThroughGgufF32Conversion) {
  const std::string out = test::TempDir() + "/stories-f32.gguf";
  auto c = RunEdgeq("convert " + Models() + "stories260K.bin " + out + " -z " + Models() + "tok512.bin");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto r = RunEdgeq("run -m " + out + " --temp 0 -n 200 -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Golden());
}

TEST(Cli, SeededSamplingIsDeterministic) {
  auto a = RunEdgeq("run -p 'Once upon' -n 40 --temp 0.9 --seed 7");
  auto b = RunEdgeq("run -p 'Once upon' -n 40 --temp 0.9 --seed 7 -t 1");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_FALSE(a.out.empty());
}

TEST(Cli, StopStringEndsGeneration) {
  auto r = RunEdgeq("run --temp 0 -n 200 --stop Lily");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Golden text: "...a little girl named Lily..." -> output stops right before it.
  EXPECT_EQ(r.out, Golden().substr(0, Golden().find("Lily")));
}

// One binary, every tier: EDGEQ_ISA forces each tier this CPU has, -v names the tier
// chosen, and a quantized model (integer kernels, prefill and decode) generates text and
// scores the golden text with generic's perplexity within 1% (tiers differ in float
// details such as the exp approximation, so greedy text may part at a near tie; the
// integer kernels themselves are compared exactly in quant_test).
TEST(Cli, EveryKernelTierRunsAQuantizedModelAndVerboseNamesIt) {
  const std::string q = test::TempDir() + "/s260-w4g32.gguf";
  auto c = RunEdgeq("quantize " + Models() + "stories260K.bin " + q + " -z " + Models() + "tok512.bin --scheme w4a8-g32");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  double ref = -1;
  int n_tiers = 0;
  for (const char* tier : {"generic", "avx2", "avxvnni", "avx512vnni"}) {
    if (KernelsForTier(tier) == nullptr) continue;
    ++n_tiers;
    setenv("EDGEQ_ISA", tier, 1);
    auto r = RunEdgeq("run -v -m " + q + " -p 'Once upon a time' --temp 0 -n 60 -t 2");
    auto p = RunEdgeq("perplexity -m " + q + " -f " + test::SourceDir() + "/tests/stories260K-greedy200.txt -c 128 --json");
    unsetenv("EDGEQ_ISA");
    ASSERT_EQ(r.exit_code, 0) << tier << ": " << r.err;
    EXPECT_NE(r.err.find(std::string("edgeq: kernels: ") + tier + " tier"), std::string::npos) << r.err;
    EXPECT_GT(r.out.size(), 100u) << tier;
    ASSERT_EQ(p.exit_code, 0) << tier << ": " << p.err;
    const size_t at = p.out.find("\"ppl\":");
    ASSERT_NE(at, std::string::npos) << p.out;
    const double ppl = std::stod(p.out.substr(at + 6));
    EXPECT_GT(ppl, 1.0) << tier;
    if (ref < 0) ref = ppl;
    EXPECT_NEAR(ppl, ref, 0.01 * ref) << tier << " vs generic";
  }
  EXPECT_GE(n_tiers, 1);
}

TEST(Cli, MissingModelFile) {
  ExpectCleanError(RunEdgeq("run -m /nonexistent/model.gguf"), "/nonexistent/model.gguf");
}

TEST(Cli, MissingTokenizer) {
  ExpectCleanError(RunEdgeq("run -m " + Models() + "stories260K.bin -z /nonexistent/tok.bin"), "/nonexistent/tok.bin");
}

TEST(Cli, TruncatedModel) {
  std::string full = Read(Models() + "stories260K.bin");
  std::string p = test::TempDir() + "/cli_trunc.bin";
  std::ofstream(p, std::ios::binary) << full.substr(0, full.size() / 3);
  ExpectCleanError(RunEdgeq("run -m " + p + " -z " + Models() + "tok512.bin"), "truncated");
}

TEST(Cli, WrongMagicGguf) {
  std::string p = test::TempDir() + "/wrong_magic.gguf";
  std::ofstream(p, std::ios::binary) << std::string("GGUX") + std::string(100, '\0');
  auto r = RunEdgeq("run -m " + p + " -z " + Models() + "tok512.bin");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("edgeq: error: "), std::string::npos);
}

TEST(Cli, PromptLongerThanContext) {
  ExpectCleanError(RunEdgeq("run -c 8 -p 'Once upon a time there was a little girl named Lily who loved to play'"),
                   "longer than the context");
}

TEST(Cli, BadFlagIsAUsageError) {
  auto r = RunEdgeq("run --temp notanumber");
  EXPECT_EQ(r.exit_code, 1);
}

TEST(Cli, InfoPrintsTensorTable) {
  auto r = RunEdgeq("info " + Models() + "stories260K.bin -z " + Models() + "tok512.bin");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("blk.4.ffn_down"), std::string::npos);
  EXPECT_NE(r.out.find("dim 64, hidden 172, layers 5, heads 8, kv heads 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("260032 parameters"), std::string::npos) << r.out;
}

// edgeq's own quantized types are named in the table and the totals, not "unknown".
TEST(Cli, InfoNamesEdgeqQuantizedTypes) {
  const std::string q = test::TempDir() + "/s260-info-w4g32.gguf";
  auto c = RunEdgeq("quantize " + Models() + "stories260K.bin " + q + " -z " + Models() + "tok512.bin --scheme w4a8-g32");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto r = RunEdgeq("info -m " + q);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("unknown"), std::string::npos) << r.out;
  const size_t row = r.out.find("blk.0.attn_q");
  ASSERT_NE(row, std::string::npos) << r.out;
  EXPECT_NE(r.out.substr(row, 60).find(" w4g32 "), std::string::npos) << r.out.substr(row, 60);
  EXPECT_NE(r.out.find(", w4g32 "), std::string::npos) << r.out;  // in the totals line
}

TEST(Cli, TokenizeIds) {
  auto r = RunEdgeq("tokenize -z " + Models() + "tok512.bin -p 'Once upon a time' --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 2), "1 ");  // BOS first
  auto r2 = RunEdgeq("tokenize -z " + Models() + "tok512.bin -p 'Once upon a time' --ids --no-bos");
  EXPECT_EQ(r.out.substr(2), r2.out);
}

TEST(Cli, ChatWithPlainFallbackTemplate) {
  // stories260K has no chat template: the documented plain fallback is used and said.
  auto r = RunEdgeq("chat --temp 0 -n 30", "Once upon a time\n\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("plain"), std::string::npos) << r.err;
  EXPECT_GT(r.out.size(), 10u);
}

TEST(Cli, ChatRejectsUnknownTemplateName) {
  ExpectCleanError(RunEdgeq("chat --chat-template nosuch", "hi\n"), "nosuch");
}

TEST(Cli, RunAndChatShareTheSamplingFlagsAndTheirRangeChecks) {
  for (const char* cmd : {"run", "chat"}) {
    ExpectCleanError(RunEdgeq(std::string(cmd) + " --top-p 5", "hi\n"), "--top-p");
    ExpectCleanError(RunEdgeq(std::string(cmd) + " --min-p -1", "hi\n"), "--min-p");
    auto r = RunEdgeq(std::string(cmd) + " --temp 0 -n 4 --repeat-last-n 8 --frequency-penalty 0.5", "Once\n\n");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
  }
}

TEST(Cli, NoArgumentsListsTheSubcommands) {
  auto r = RunEdgeq("");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  for (const char* sub : {"run", "chat", "bench", "quantize", "perplexity"}) {
    EXPECT_NE(r.err.find(std::string("  ") + sub), std::string::npos) << sub << " missing from:\n" << r.err;
  }
}

TEST(Cli, NonFiniteAndOutOfRangeNumbersAreUsageErrors) {
  // NaN passes a range check (every comparison with it is false): each float flag of every
  // subcommand also checks for a finite value (cli/common.h RejectNonFiniteFloats).
  ExpectCleanError(RunEdgeq("run --temp nan -n 4"), "--temp");
  ExpectCleanError(RunEdgeq("run --top-p NaN -n 4"), "--top-p");
  ExpectCleanError(RunEdgeq("run --presence-penalty inf -n 4"), "--presence-penalty");
  // (a model that does not exist: were the flag let through, serve fails at once, not listens)
  ExpectCleanError(RunEdgeq("serve -m /nonexistent.gguf --timeout nan"), "--timeout");
  ExpectCleanError(RunEdgeq("quantize --bpw nan in.gguf out.gguf"), "--bpw");
  ExpectCleanError(RunEdgeq("bench -t 1,0 -n 4"), "--threads");
  ExpectCleanError(RunEdgeq("bench -p -5 -n 4"), "--n-prompt");
  ExpectCleanError(RunEdgeq("bench --membw-gbps -3 -n 4"), "--membw-gbps");
  auto r = RunEdgeq("run --temp 1e-3 --presence-penalty -0.5 -n 4");  // finite values still pass
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// edgeq bench --json: one object per test, llama-bench's field names where they exist
// (the performance issue lists them), and with --membw the decode fraction of the
// measured bandwidth. peak_rss_bytes is the engine's: the probe's 2 GiB buffer is not in
// it (stories260K needs ~10 MiB).
TEST(Cli, BenchJsonHasTheLlamaBenchFieldsAndAPeakRssWithoutTheProbe) {
  auto r = RunEdgeq("bench -p 8 -n 4 -r 2 -t 1,2 --json --membw");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 4u) << r.out;  // pp8 and tg4 at 1 and 2 threads
  int pp = 0, tg = 0;
  for (const auto& o : j) {
    SCOPED_TRACE(o.dump());
    for (const char* k : {"model_filename", "n_threads", "n_prompt", "n_gen", "avg_ts", "stddev_ts", "samples_ts",
                          "test", "scheme", "bpw", "peak_rss_bytes", "model_size", "model_n_params", "isa"}) {
      EXPECT_TRUE(o.contains(k)) << k;
    }
    const int n_threads = o.value("n_threads", 0);
    EXPECT_TRUE(n_threads == 1 || n_threads == 2);
    EXPECT_GT(o.value("avg_ts", 0.0), 0.0);
    EXPECT_GE(o.value("stddev_ts", -1.0), 0.0);
    EXPECT_EQ(o.value("samples_ts", nlohmann::json::array()).size(), 2u);
    EXPECT_GT(o.value("bpw", 0.0), 30.0);  // fp32 weights
    const auto peak = o.value("peak_rss_bytes", uint64_t{0});
    EXPECT_GT(peak, 0u);
    EXPECT_LT(peak, uint64_t{1} << 30) << "the bandwidth probe's buffer counted in the engine's peak RSS";
    EXPECT_FALSE(o.contains("peak_rss_includes_membw_probe"));
    if (o.value("test", "") == "pp8") {
      ++pp;
      EXPECT_EQ(o.value("n_prompt", -1), 8);
      EXPECT_EQ(o.value("n_gen", -1), 0);
    } else {
      ++tg;
      EXPECT_EQ(o.value("test", ""), "tg4");
      EXPECT_EQ(o.value("n_prompt", -1), 0);
      EXPECT_EQ(o.value("n_gen", -1), 4);
      const double gbps = o.value("decode_weight_gbps", 0.0), bw = o.value("membw_gbps", 0.0);
      EXPECT_GT(gbps, 0.0);
      EXPECT_GT(bw, 0.0);
      EXPECT_NEAR(o.value("membw_fraction", 0.0), gbps / bw, 1e-9);
      EXPECT_NEAR(gbps, o.value("avg_ts", 0.0) * o.value("weight_bytes_per_token", 0.0) / 1e9, 1e-9 * gbps);
    }
  }
  EXPECT_EQ(pp, 2);
  EXPECT_EQ(tg, 2);
}

// bench --profile: every step of the forward pass timed; the steps and the time outside
// them add up to the forward pass, which fits in the measured time per token, and the
// matrix steps report the GB/s of weights they read.
TEST(Cli, BenchProfileAccountsForTheForwardPass) {
  auto r = RunEdgeq("bench -p 8 -n 4 -r 2 -t 2 --json --profile");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 2u) << r.out;
  for (const auto& o : j) {
    SCOPED_TRACE(o.dump());
    ASSERT_TRUE(o.contains("profile"));
    const auto& p = o["profile"];
    const bool pp = o.value("n_prompt", 0) > 0;
    // Timed repetitions only: pp8 is one pass of 8 tokens, tg4 four passes of one.
    EXPECT_EQ(p.value("tokens", 0), 2 * (pp ? 8 : 4));
    double sum = 0;
    for (const char* step : {"embed", "attn_norm", "qkv", "rope_kv", "attention", "wo", "ffn_norm", "gate_up",
                             "swiglu", "down", "residual", "head"}) {
      const double ms = p["ms_per_token"].value(step, -1.0);
      EXPECT_GE(ms, 0.0) << step;
      sum += ms;
    }
    for (const char* step : {"qkv", "wo", "gate_up", "down", "head"}) {
      EXPECT_GT(p["weight_gbps"].value(step, 0.0), 0.0) << step;
    }
    EXPECT_FALSE(p["weight_gbps"].contains("attention"));
    const double forward = p.value("forward_ms_per_token", 0.0);
    EXPECT_GT(forward, 0.0);
    EXPECT_GE(p.value("unprofiled_ms_per_token", -1.0), 0.0);
    EXPECT_NEAR(sum + p.value("unprofiled_ms_per_token", 0.0), forward, 1e-6 * forward);
    double wall_ms = 0;  // per token over the timed repetitions (each the same number of tokens)
    for (double ts : o["samples_ts"]) wall_ms += 1e3 / ts / o["samples_ts"].size();
    EXPECT_LE(forward, wall_ms * 1.001);
  }
  EXPECT_NE(r.err.find("tg4 profile, ms per token: embed"), std::string::npos) << r.err;
}

// --dummy: random weights in a real model's shapes; --gguf writes them as GGUF F16 (for
// llama.cpp), and that file loads and runs here too, in the shape asked for.
TEST(Cli, BenchDummyShapesRunAndExportAsGguf) {
  auto q = RunEdgeq("bench --dummy stories260k --scheme w4a8-g32 -p 4 -n 4 -r 1 -t 1 --json");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const auto j = nlohmann::json::parse(q.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 2u) << q.out;
  EXPECT_EQ(j[0].value("model_filename", ""), "stories260k");
  EXPECT_EQ(j[0].value("scheme", ""), "w4a8-g32");
  EXPECT_LT(j[0].value("bpw", 99.0), 8.0);

  const std::string out = test::TempDir() + "/dummy-s260k.gguf";
  auto w = RunEdgeq("bench --dummy stories260k --gguf " + out);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto info = RunEdgeq("info -m " + out);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  for (const char* t : {"dim 64, hidden 172, layers 5, heads 8, kv heads 4", "vocab 512", "blk.4.ffn_down", " f16 "}) {
    EXPECT_NE(info.out.find(t), std::string::npos) << t << " not in:\n" << info.out;
  }
  EXPECT_EQ(info.out.find("blk.5."), std::string::npos) << "stories260k has 5 layers";
  auto run = RunEdgeq("bench -m " + out + " -p 4 -n 4 -r 1 -t 1 --json");
  EXPECT_EQ(run.exit_code, 0) << run.err;

  ExpectCleanError(RunEdgeq("bench --dummy llama-7b -n 4"), "tinyllama-1.1b");  // names the known shapes
}

TEST(Cli, PerplexityJson) {
  REQUIRE_SHARED();
  const std::string d = test::SharedDir() + "/models/ref6m/";
  auto r = RunEdgeq("perplexity -m " + d + "ref6m-f32.gguf -f " + d + "val.txt --chunks 4 -c 256 --json --kl-base " +
                    d + "ref6m-f32.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ppl\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"kld_mean\":0"), std::string::npos) << r.out;  // same model: KLD exactly 0
  EXPECT_NE(r.out.find("\"top1_agree\":1"), std::string::npos) << r.out;
}


// Resource exhaustion (docs/reliability.md): EDGEQ_MEMORY_LIMIT_BYTES stands in for the
// available memory (the child process inherits it). stories260K holds 1.0 MiB of fp32
// weights; one slot's KV cache for its 512-token context is 640 KiB.
struct ScopedMemoryLimit {
  explicit ScopedMemoryLimit(const std::string& v) { setenv("EDGEQ_MEMORY_LIMIT_BYTES", v.c_str(), 1); }
  ~ScopedMemoryLimit() { unsetenv("EDGEQ_MEMORY_LIMIT_BYTES"); }
};

TEST(Cli, ModelLargerThanAvailableMemoryIsACleanErrorNamingTheSizes) {
  ScopedMemoryLimit lim("500000");
  auto r = RunEdgeq("run --temp 0 -n 4");
  ExpectCleanError(r, " needs ");
  EXPECT_NE(r.err.find("only 488.3 KiB of memory is available (EDGEQ_MEMORY_LIMIT_BYTES)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stories260K.bin"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;  // refused before generating anything
}

TEST(Cli, ServerKvCacheThatCannotFitIsACleanErrorBeforeServing) {
  // 256 slots x 512 tokens = 160 MiB of KV cache: the model (1 MiB) fits in 20 MB, the cache does not.
  ScopedMemoryLimit lim("20000000");
  auto r = RunEdgeq("serve --port 0 --parallel 256 --no-log");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("edgeq: error: the KV cache for context 512 x 256 sequence(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("KV cache 160.0 MiB"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("but only 19.1 MiB of memory is available"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ready"), std::string::npos) << r.err;  // never started serving
}

TEST(Cli, EnoughMemoryStillRuns) {
  ScopedMemoryLimit lim("200000000");  // 200 MB: model + one context fit
  auto r = RunEdgeq("run --temp 0 -n 200");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Golden());
}

}  // namespace
}  // namespace edgeq
