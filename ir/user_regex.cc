#include "ir/user_regex.h"

#include <algorithm>
#include <cctype>

#include "ir/limits.h"

namespace ampc {
namespace {

// Longest digit run accepted after a backslash or inside a {m,n} repeat. Six digits already ask
// for more NFA states than libstdc++ allows (it refuses over 100,000 with error_space); the bound
// only keeps the number itself from overflowing before that check runs.
constexpr size_t kMaxDigits = 6;

Status CheckShape(const std::string& p, const std::string& what) {
  RETURN_IF_ERROR(CheckStringBytes(static_cast<int64_t>(p.size()), what));
  int64_t depth = 0, deepest = 0;
  bool in_brace = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    bool digits_follow = false;
    if (c == '\\') {
      ++i;  // the escaped character: a digit starts a back-reference number
      digits_follow = i < p.size() && std::isdigit(static_cast<unsigned char>(p[i]));
      if (!digits_follow) continue;
      --i;
    } else if (c == '(') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ')') {
      --depth;
    } else if (c == '{') {
      in_brace = true;
      digits_follow = true;
    } else if (c == '}') {
      in_brace = false;
    } else if (c == ',' && in_brace) {
      digits_follow = true;
    }
    if (!digits_follow) continue;
    size_t run = 0;
    while (i + 1 + run < p.size() && std::isdigit(static_cast<unsigned char>(p[i + 1 + run]))) ++run;
    if (run > kMaxDigits) {
      return InvalidArgument(what + " '" + p + "': the number at offset " + std::to_string(i + 1) +
                             " has " + std::to_string(run) + " digits; repeat counts and " +
                             "back-references take at most " + std::to_string(kMaxDigits));
    }
    i += run;
  }
  return CheckNesting(deepest, what);
}

std::string Reason(const std::regex_error& e) {
  switch (e.code()) {
    case std::regex_constants::error_complexity:
    case std::regex_constants::error_backref:
      return "back-references are not supported";
    case std::regex_constants::error_space:
      return "it needs more states than std::regex allows (a repeat count too large?)";
    default:
      return e.what();
  }
}

}  // namespace

StatusOr<UserRegex> UserRegex::Compile(const std::string& pattern, const std::string& what) {
  RETURN_IF_ERROR(CheckShape(pattern, what));
  const auto flags = std::regex::ECMAScript | std::regex_constants::__polynomial;
  UserRegex r;
  try {
    // The pattern alone first, so that its errors do not mention the wrapper.
    std::regex alone(pattern, flags);
    r.re_ = std::regex("[\\s\\S]*(?:" + pattern + ")[\\s\\S]*", flags);
  } catch (const std::regex_error& e) {
    return InvalidArgument(what + " '" + pattern + "' is not a valid regular expression: " +
                           Reason(e));
  }
  return r;
}

bool UserRegex::Search(const std::string& text) const { return std::regex_match(text, re_); }

}  // namespace ampc
