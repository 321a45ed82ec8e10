// edgeq quantize end to end on the shipped model: schemes, outlier methods, mixed
// precision, and broken quantized files.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "format/gguf.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "test_util.h"

namespace edgeq {
namespace {

using test::RunEdgeq;

std::string M() { return test::SourceDir() + "/models/stories260K/stories260K.bin -z " + test::SourceDir() + "/models/stories260K/tok512.bin"; }

std::string Read(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CalibFile() {
  static const std::string p = [] {
    std::string g = Read(test::SourceDir() + "/tests/stories260K-greedy200.txt");
    std::string path = test::TempDir() + "/calib.txt";
    std::ofstream out(path);
    for (int i = 0; i < 12; ++i) out << g << "\n";
    return path;
  }();
  return p;
}

TEST(Quantize, W8A8KeepsGreedyTextCloseToFp32) {
  const std::string out = test::TempDir() + "/q_w8a8.gguf";
  auto q = RunEdgeq("quantize " + M() + " " + out + " --scheme w8a8 -q");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("w8c"), std::string::npos) << q.out;
  auto r = RunEdgeq("run -m " + out + " --temp 0 -n 40");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string golden = Read(test::SourceDir() + "/tests/stories260K-greedy200.txt");
  // 8-bit weights and activations: the first sentence survives unchanged.
  EXPECT_EQ(r.out.substr(0, 60), golden.substr(0, 60));
}

TEST(Quantize, EverySchemeAndOutlierMethodRuns) {
  for (const char* scheme : {"w4a8-g32", "w4a8-g128", "w4a8-g64a", "w4e0m4-g32"}) {
    for (const char* outliers : {"none", "smooth", "rotate"}) {
      const std::string out = test::TempDir() + "/q_" + scheme + "_" + outliers + ".gguf";
      auto q = RunEdgeq(std::string("quantize ") + M() + " " + out + " --scheme " + scheme + " --outliers " + outliers +
                        " --calib " + CalibFile() + " --calib-chunks 2 -q");
      ASSERT_EQ(q.exit_code, 0) << scheme << " " << outliers << ": " << q.err;
      auto r = RunEdgeq("run -m " + out + " --temp 0 -n 20");
      ASSERT_EQ(r.exit_code, 0) << scheme << " " << outliers << ": " << r.err;
      EXPECT_FALSE(r.out.empty());
    }
  }
}

// The kernels' packed copies of all the matrices are one buffer, in the order decode
// reads them (model.cc RepackForKernels), each on a 4 KiB boundary: no partly used huge
// page per matrix, and the prefetch past one op's end fetches the next op's start.
TEST(Quantize, PackedWeightsAreOneBufferInDecodeOrder) {
  const std::string out = test::TempDir() + "/q_layout.gguf";
  auto q = RunEdgeq("quantize " + M() + " " + out + " --scheme w4a8-g32 -q");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  ASSERT_NE(Kernels().gemm_eq_packed, nullptr) << Kernels().isa;
  auto m = LoadModel({out, ""});
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelWeights& w = (*m)->weights;
  std::vector<const Tensor2D*> order;
  for (const LayerWeights& l : w.layers) {
    for (const Tensor2D* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) order.push_back(t);
  }
  order.push_back(&w.output);
#if defined(__SANITIZE_ADDRESS__)
  const uint64_t guard = 4096;  // a poisoned gap after each matrix (the test below)
#else
  const uint64_t guard = 0;
#endif
  const uint8_t* next = order[0]->packed;
  for (size_t i = 0; i < order.size(); ++i) {
    ASSERT_NE(order[i]->packed, nullptr) << "matrix " << i;
    EXPECT_EQ(order[i]->packed, next) << "matrix " << i << " is not where the previous one ends";
    EXPECT_EQ(order[i]->packed_bytes, Kernels().packed_eq_bytes(static_cast<EqType>(order[i]->type), order[i]->rows,
                                                                  order[i]->cols));
    next = order[i]->packed + (order[i]->packed_bytes + guard + 4095) / 4096 * 4096;
  }
  // The memory check before loading counts the same buffer, padding included.
  EXPECT_EQ(EstimateModelMemory(**m).repacked_bytes, static_cast<uint64_t>(next - order[0]->packed));
}

// One buffer for all packed matrices must not hide a kernel that reads past the end of
// its matrix from AddressSanitizer (the fuzz targets rely on it): under ASan each matrix is
// followed by a poisoned gap (model.cc RepackForKernels).
TEST(Quantize, ReadingPastAPackedMatrixIsCaughtUnderAsan) {
#if defined(__SANITIZE_ADDRESS__)
  const std::string out = test::TempDir() + "/q_guard.gguf";
  auto q = RunEdgeq("quantize " + M() + " " + out + " --scheme w4a8-g32 -q");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto m = LoadModel({out, ""});
  ASSERT_TRUE(m.ok()) << m.status().message();
  const Tensor2D& wk = (*m)->weights.layers[0].wk;
  ASSERT_NE(wk.packed, nullptr);
  volatile uint8_t last = wk.packed[wk.packed_bytes - 1];  // the matrix itself is readable
  (void)last;
  EXPECT_DEATH(
      {
        volatile uint8_t past = wk.packed[wk.packed_bytes];
        (void)past;
      },
      "AddressSanitizer");
#else
  GTEST_SKIP() << "needs an AddressSanitizer build (scripts/sanitize.sh runs it)";
#endif
}

TEST(Quantize, MixedPrecisionMeetsItsBudget) {
  const std::string out = test::TempDir() + "/q_mixed.gguf";
  auto q = RunEdgeq("quantize " + M() + " " + out + " --bpw 5.5 --calib " + CalibFile() + " --calib-chunks 2 -q");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  // The plan lists each tensor with its measured sensitivity, and some went to 8 bits.
  EXPECT_NE(q.out.find("w8c"), std::string::npos);
  EXPECT_NE(q.out.find("w4g32"), std::string::npos);
  const size_t at = q.out.rfind(": ");
  const double bpw = std::stod(q.out.substr(at + 2));
  EXPECT_LE(bpw, 5.5 + 1e-6) << q.out;
  EXPECT_GT(bpw, 4.5) << q.out;
}

TEST(Quantize, CalibrationIsRequiredWhereUsed) {
  auto q = RunEdgeq("quantize " + M() + " " + test::TempDir() + "/x.gguf --scheme w4a8-g32 --outliers smooth");
  EXPECT_EQ(q.exit_code, 1);
  EXPECT_NE(q.err.find("--calib"), std::string::npos) << q.err;
  auto u = RunEdgeq("quantize " + M() + " " + test::TempDir() + "/x.gguf --scheme w3a8");
  EXPECT_EQ(u.exit_code, 1);
  EXPECT_NE(u.err.find("unknown scheme"), std::string::npos) << u.err;
}

TEST(Quantize, BrokenQuantizedFilesGiveClearErrors) {
  const std::string out = test::TempDir() + "/q_break.gguf";
  ASSERT_EQ(RunEdgeq("quantize " + M() + " " + out + " --scheme w4a8-g32 -q").exit_code, 0);
  std::string bytes = Read(out);
  // Truncated in the middle of the tensor data.
  std::ofstream(test::TempDir() + "/q_trunc.gguf", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  auto r = RunEdgeq("run -m " + test::TempDir() + "/q_trunc.gguf -n 5");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("past the end"), std::string::npos) << r.err;
  // Mismatched scales: relabel a w4g32 tensor as w4g128 (different block layout and
  // row size) so the sizes no longer agree with the data that follows.
  std::string key = "blk.0.attn_q.weight";
  size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  const size_t type_off = at + key.size() + 4 + 2 * 8;
  uint32_t t;
  std::memcpy(&t, bytes.data() + type_off, 4);
  ASSERT_EQ(t, 101u);  // w4g32
  uint32_t w4g128 = 103;
  std::memcpy(bytes.data() + type_off, &w4g128, 4);
  std::ofstream(test::TempDir() + "/q_relabel.gguf", std::ios::binary) << bytes;
  auto r2 = RunEdgeq("run -m " + test::TempDir() + "/q_relabel.gguf -n 5");
  EXPECT_EQ(r2.exit_code, 1) << r2.err;
  EXPECT_NE(r2.err.find("overlaps"), std::string::npos) << r2.err;
}

}  // namespace
}  // namespace edgeq
