// Data readers against independent references: Python's gzip module and numpy, run at test time.
#include "runtime/data/datasets.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>

#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

// Runs a Python snippet with Debian's interpreter and returns its stdout.
std::string Python(const std::string& code, const TempDir& dir) {
  WriteBytes(dir / "script.py", code);
  const std::string cmd = "/usr/bin/python3 " + (dir / "script.py") + " > " + (dir / "py.out");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << code;
  return ReadBytes(dir / "py.out");
}

TEST(FashionMnist, TrainAndTestSplitsMatchPythonsReading) {
  auto train = ReadFashionMnist(kFashionMnistDir, "train");
  ASSERT_TRUE(train.ok()) << train.status().message();
  auto test = ReadFashionMnist(kFashionMnistDir, "test");
  ASSERT_TRUE(test.ok()) << test.status().message();
  EXPECT_EQ(train->images.type().ToString(), "f32[60000,28,28]");
  EXPECT_EQ(train->labels.type().ToString(), "i64[60000]");
  EXPECT_EQ(test->images.type().ToString(), "f32[10000,28,28]");
  // The data set is balanced: 6,000 training and 1,000 test images per class (Zalando's README).
  for (const auto* split : {&*train, &*test}) {
    std::vector<int64_t> count(10, 0);
    const std::vector<int64_t> labels = *split->labels.AsInt64s();
    for (int64_t c : labels) ++count[c];
    for (int64_t c : count) EXPECT_EQ(c, split->labels.NumElements() / 10);
  }
  // Independent reading with Python's gzip module: first labels and the byte sum of image 7.
  TempDir dir;
  const std::string out = Python(
      "import gzip\n"
      "l = gzip.open('" +
          std::string(kFashionMnistDir) +
          "/t10k-labels-idx1-ubyte.gz').read()[8:]\n"
          "i = gzip.open('" +
          std::string(kFashionMnistDir) +
          "/t10k-images-idx3-ubyte.gz').read()[16:]\n"
          "print(' '.join(str(x) for x in l[:8]), sum(i[7*784:8*784]))\n",
      dir);
  std::string labels;
  auto ints = *test->labels.AsInt64s();
  for (int k = 0; k < 8; ++k) labels += std::to_string(ints[k]) + " ";
  const auto px = *test->images.AsDoubles();
  const double sum = std::accumulate(px.begin() + 7 * 784, px.begin() + 8 * 784, 0.0);
  EXPECT_EQ(out, labels + std::to_string(static_cast<int64_t>(std::lround(sum * 255))) + "\n");
}

TEST(FashionMnist, BrokenFilesAreCleanErrors) {
  TempDir dir;
  const std::string good = ReadBytes(std::string(kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz");
  WriteBytes(dir / "cut.gz", good.substr(0, good.size() / 2));
  auto r = ReadIdx(dir / "cut.gz");
  EXPECT_FALSE(r.ok());
  WriteBytes(dir / "magic", std::string("\x01\x02\x08\x01\x00\x00\x00\x01x", 9));
  r = ReadIdx(dir / "magic");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad magic number"), std::string::npos);
  WriteBytes(dir / "short", std::string("\x00\x00\x08\x01\x00\x00\x00\x05xy", 10));
  r = ReadIdx(dir / "short");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("header says 5 bytes of data, the file holds 2"),
            std::string::npos);
  auto missing = ReadFashionMnist(dir.path(), "train");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos);
}

class NpzTest : public ::testing::TestWithParam<bool> {};

// Arrays written by numpy (np.savez / np.savez_compressed) read back exactly.
TEST_P(NpzTest, ReadsWhatNumpyWrote) {
  TempDir dir;
  const std::string fn = GetParam() ? "savez_compressed" : "savez";
  Python(
      "import numpy as np\n"
      "np." +
          fn + "('" + (dir / "d.npz") +
          "', x=np.arange(12, dtype=np.float32).reshape(3, 4) / 8,"
          " labels=np.array([3, -1, 7], dtype=np.int64), mask=np.array([True, False]),"
          " h=np.array([0.5, 65504, -2.0 ** -24], dtype=np.float16), s=np.float64(2.5))\n",
      dir);
  auto npz = ReadNpz(dir / "d.npz");
  ASSERT_TRUE(npz.ok()) << npz.status().message();
  ASSERT_EQ(npz->size(), 5u);
  EXPECT_EQ(npz->at("x").type().ToString(), "f32[3,4]");
  auto x = *npz->at("x").AsDoubles();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(x[i], i / 8.0);
  EXPECT_EQ(*npz->at("labels").AsInt64s(), (std::vector<int64_t>{3, -1, 7}));
  EXPECT_EQ(*npz->at("mask").AsInt64s(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(*npz->at("h").AsDoubles(), (std::vector<double>{0.5, 65504, -std::ldexp(1.0, -24)}));
  EXPECT_EQ(npz->at("s").type().ToString(), "f64[]");
  // A flipped byte inside a member is caught by its CRC (stored) or by inflate (deflated).
  std::string bytes = ReadBytes(dir / "d.npz");
  // Stored: a byte of x's data (the .npy header is 128 bytes from the magic at "\x93NUMPY");
  // deflated: a byte inside the first member's compressed stream.
  const size_t at = GetParam() ? 70 : bytes.find("NUMPY") - 1 + 128 + 3;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
  WriteBytes(dir / "bad.npz", bytes);
  EXPECT_FALSE(ReadNpz(dir / "bad.npz").ok());
  WriteBytes(dir / "cut.npz", ReadBytes(dir / "d.npz").substr(0, 100));
  auto cut = ReadNpz(dir / "cut.npz");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("not a valid .npz file"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(StoredAndDeflated, NpzTest, ::testing::Bool());

}  // namespace
}  // namespace ampc
