// UserRegex (ir/user_regex.h): the same answers as std::regex_search, without its traps.
// The reference is std::regex_search with libstdc++'s default (depth-first) executor, run on
// short names where it is safe; every pattern x name pair below is compared.
#include "ir/user_regex.h"

#include <gtest/gtest.h>

#include <regex>

#include "ir/limits.h"

namespace ampc {
namespace {

TEST(UserRegex, AgreesWithRegexSearch) {
  const char* patterns[] = {"fc1",       "^fc",         "fc$",       "^/encoder/.*MatMul$",
                            "Soft|Norm", "(a|b)+c",     "x{2,3}",    "^$",
                            "[0-9]+",    "\\.bias$",    "(?=Mat)M",  "\\bfc\\d\\b",
                            "a*?",       "[^/]*/[^/]*", ".",         "^(?:ab){2}$"};
  const char* names[] = {"",
                         "fc1",
                         "/encoder/layer.0/MatMul",
                         "/encoder/layer.0/MatMul_1",
                         "LayerNorm",
                         "Softmax_3",
                         "abac",
                         "xx",
                         "xxxx",
                         "fc2.bias",
                         "abab",
                         "ababab",
                         "a fc3 b",
                         "node/with/slashes"};
  for (const char* p : patterns) {
    auto re = UserRegex::Compile(p, "--fp32-nodes");
    ASSERT_TRUE(re.ok()) << p << ": " << re.status().message();
    const std::regex reference(p);
    for (const char* n : names) {
      EXPECT_EQ(re.value().Search(n), std::regex_search(std::string(n), reference))
          << "pattern '" << p << "' name '" << n << "'";
    }
  }
}

TEST(UserRegex, LongNamesNeitherOverflowTheStackNorTakeQuadraticTime) {
  // std::regex_search("^.*$") recurses once per character: a 1 MB name overflowed the stack.
  const std::string name(1 << 20, 'a');
  for (const auto& [p, want] : {std::pair<const char*, bool>{"^.*$", true},
                                {"a.*b", false},
                                {"(x|a)+$", true},
                                {"aab$", false}}) {
    auto re = UserRegex::Compile(p, "--freeze");
    ASSERT_TRUE(re.ok()) << re.status().message();
    EXPECT_EQ(re.value().Search(name), want) << p;
  }
}

TEST(UserRegex, HugeNumbersAreRefusedBeforeStdRegexReadsThem) {
  // libstdc++ reads these into a long without an overflow check (UBSan found it by fuzzing).
  for (const char* p : {"a{2222222222222222222}", "a{1,99999999999999999999}", "(a)\\9999999"}) {
    auto re = UserRegex::Compile(p, "--fp32-nodes");
    ASSERT_FALSE(re.ok()) << p;
    EXPECT_NE(re.status().message().find("digits"), std::string::npos) << re.status().message();
    EXPECT_NE(re.status().message().find("--fp32-nodes"), std::string::npos);
  }
  // Six digits pass the digit check and then meet std::regex's own state limit: still an error.
  auto big = UserRegex::Compile("a{999999}", "--fp32-nodes");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("states"), std::string::npos) << big.status().message();
  // Literal digits elsewhere are names, not numbers.
  EXPECT_TRUE(UserRegex::Compile("node_12345678901234", "--fp32-nodes").ok());
  EXPECT_TRUE(UserRegex::Compile("[{]12345678901234", "--fp32-nodes").ok());
}

TEST(UserRegex, InvalidPatternsAndBackReferencesAreClearErrors) {
  for (const auto& [p, want] : {std::pair<const char*, const char*>{"(", "not a valid"},
                                {"a)(b", "not a valid"},
                                {"[z-a]", "not a valid"},
                                {"(a)\\1", "back-references are not supported"}}) {
    auto re = UserRegex::Compile(p, "--trainable");
    ASSERT_FALSE(re.ok()) << p;
    EXPECT_NE(re.status().message().find(want), std::string::npos) << re.status().message();
    EXPECT_EQ(re.status().message().rfind("--trainable '", 0), 0u) << re.status().message();
  }
}

TEST(UserRegex, NestingIsBoundedByMaxNesting) {
  const int64_t limit = GetInputLimits().max_nesting;
  const std::string ok = std::string(limit, '(') + "a" + std::string(limit, ')');
  const std::string deep = "(" + ok + ")";
  EXPECT_TRUE(UserRegex::Compile(ok, "--freeze").ok());
  auto re = UserRegex::Compile(deep, "--freeze");
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.status().message().find("--max-nesting"), std::string::npos)
      << re.status().message();
}

}  // namespace
}  // namespace ampc
