// The safetensors reader (ir/safetensors.h). The valid file is the output of the reference
// implementation (safetensors 0.8.0, `safetensors.numpy.save` of three arrays with metadata),
// copied as hex; the corrupt ones are written here by hand, one broken rule each.
#include "ir/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace ampc {
namespace {

// save({'w': f32 [[1.5, -2], [3, 0.25]], 'h': f16 [1, -0.5, 65504], 'i': i64 [7, -1]},
//      metadata={'format': 'pt'}): the header is padded with spaces to a multiple of 8 bytes.
const char* kReferenceHex =
    "c8000000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c2269223a7b"
    "226474797065223a22493634222c227368617065223a5b325d2c22646174615f6f666673657473223a5b302c31"
    "365d7d2c2277223a7b226474797065223a22463332222c227368617065223a5b322c325d2c22646174615f6f66"
    "6673657473223a5b31362c33325d7d2c2268223a7b226474797065223a22463136222c227368617065223a5b33"
    "5d2c22646174615f6f666673657473223a5b33322c33385d7d7d20200700000000000000ffffffffffffffff00"
    "00c03f000000c0000040400000803e003c00b8ff7b";

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string File(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

TEST(Safetensors, ReadsTheReferenceImplementationsFile) {
  auto f = ParseSafetensors(FromHex(kReferenceHex), "ref.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->tensors.size(), 3u);
  EXPECT_EQ(f->metadata.at("format"), "pt");
  const Tensor& w = f->tensors.at("w");
  EXPECT_EQ(w.type().ToString(), "f32[2,2]");
  EXPECT_EQ(*w.AsDoubles(), (std::vector<double>{1.5, -2, 3, 0.25}));
  const Tensor& h = f->tensors.at("h");
  EXPECT_EQ(h.type().ToString(), "f16[3]");
  EXPECT_EQ(*h.AsDoubles(), (std::vector<double>{1, -0.5, 65504}));
  EXPECT_EQ(*f->tensors.at("i").AsInt64s(), (std::vector<int64_t>{7, -1}));
}

TEST(Safetensors, EmptyTensorsAndNoMetadata) {
  auto f = ParseSafetensors(File(R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
                                 R"("b":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]}})",
                                 std::string(1, '\1')),
                            "x");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors.at("e").NumElements(), 0);
  EXPECT_EQ(f->tensors.at("b").type().ToString(), "bool[]");
  EXPECT_TRUE(f->metadata.empty());
}

struct Corrupt {
  const char* what;
  std::string bytes;
  const char* message;
};

TEST(Safetensors, RefusesEveryCorruption) {
  const std::string t4 = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string huge(8, '\0');
  const uint64_t big = 1ull << 40;
  std::memcpy(huge.data(), &big, 8);
  const Corrupt cases[] = {
      {"shorter than 8 bytes", "abc", "shorter than its 8-byte header length"},
      {"header past the end", huge + "{}", "exceeds the file"},
      {"header not JSON", File("{\"t\":", ""), "not JSON"},
      {"header an array", File("[1,2]", ""), "not a JSON object"},
      {"metadata not strings", File(R"({"__metadata__":{"a":1}})", ""), "__metadata__ 'a'"},
      {"missing dtype", File(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", "1234"), "lacks dtype"},
      {"unknown dtype", File(R"({"t":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "1"),
       "dtype F8_E4M3"},
      {"negative dim", File(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "1234"),
       "shape holds -1"},
      {"float dim", File(R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "1234"),
       "shape holds 1.5"},
      {"overflowing shape",
       File(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
            "1234"),
       "shape overflows"},
      {"begin after end", File(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "1234"),
       "begin <= end"},
      {"three offsets", File(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "1234"),
       "data_offsets"},
      {"end past the data", File(t4, "12"), "past the data"},
      {"bytes do not match the shape",
       File(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "1234"),
       "4 bytes for shape [2]"},
      {"overlap",
       File(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
            "1234"),
       "inside the previous tensor"},
      {"gap", File(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678"),
       "leaving a gap"},
      {"trailing bytes", File(t4, "12345"), "cover 4 of 5 data bytes"},
  };
  for (const Corrupt& c : cases) {
    auto f = ParseSafetensors(c.bytes, "bad.safetensors");
    ASSERT_FALSE(f.ok()) << c.what;
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(f.status().message().rfind("bad.safetensors: ", 0), 0u) << f.status().message();
    EXPECT_NE(f.status().message().find(c.message), std::string::npos)
        << c.what << ": " << f.status().message();
    EXPECT_EQ(f.status().message().find('\n'), std::string::npos) << c.what;
  }
}

TEST(Safetensors, MissingFile) {
  auto f = ReadSafetensors("/nonexistent/x.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace ampc
