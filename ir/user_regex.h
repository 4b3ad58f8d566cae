// Regular expressions the user writes (`--fp32-nodes`, `--freeze`, `--trainable`, an
// `--amp-config` file's fp32_nodes) and that ampc then matches against names taken from models,
// which may be hostile. std::regex has three traps here, and UserRegex closes each:
// - its compiler reads a repeat count or back-reference number into a `long` without an overflow
//   check (`a{99999999999999999999}` is undefined behaviour): digit runs there are bounded first;
// - its default executor recurses once per input character, so `^.*$` against a 100 kB node name
//   overflows the stack: patterns run on the breadth-first executor (libstdc++'s __polynomial),
//   which does not recurse per character and so cannot take back-references;
// - regex_search retries from every start position (quadratic in the name's length): a search is
//   run as one anchored match of `[\s\S]*(?:PATTERN)[\s\S]*`, linear in the name's length.
// Group nesting is bounded by --max-nesting and the pattern's length by --max-string-bytes.
#pragma once

#include <regex>
#include <string>

#include "ir/status.h"

namespace ampc {

class UserRegex {
 public:
  // `what` names the pattern's origin in errors ("--fp32-nodes", "--amp-config F: 'fp32_nodes'").
  static StatusOr<UserRegex> Compile(const std::string& pattern, const std::string& what);

  // True when the pattern matches somewhere in `text` (std::regex_search's meaning).
  bool Search(const std::string& text) const;

 private:
  std::regex re_;
};

}  // namespace ampc
