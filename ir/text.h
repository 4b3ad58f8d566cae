// ampc's textual IR: what `ampc inspect` prints and what FileCheck tests match. One node per
// line, a type on every value, attributes and annotations sorted, and print -> parse -> print is
// the identity byte for byte. The grammar is in docs/TEXT_IR.md. Example:
//
//   graph "main_graph" opsets {"": 17} {
//     input %input: f32[batch,784]
//     init %fc1.weight: f32[256,784] = elided
//     init %shape: i64[2] = [-1, 784]
//     %h: f32[batch,256] = Gemm(%input, %fc1.weight, _) {alpha=1.0, transB=1} name="/fc1/Gemm"
//     output %h
//   }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

struct PrintOptions {
  // Tensors (initializers and tensor attributes) with more elements print as `elided`.
  int64_t max_inline_elements = 16;
};

// Canonical text of the graph: 2-space indent, inputs, initializers, nodes, outputs.
std::string PrintGraph(const Graph& g, const PrintOptions& opts = {});

// Parses text into a fresh graph. Types are recorded exactly as written (no shape inference);
// `elided` tensors become Tensor::Elided. Errors are
// InvalidArgument("line L, column C: what is wrong").
StatusOr<std::unique_ptr<Graph>> ParseGraph(std::string_view text);

namespace text_ir {

// `"..."` with C escapes (\\ \" \n \t \r \xHH); bytes >= 0x80 are kept as they are.
std::string QuoteString(std::string_view s);
// How a value is referred to in the text: `%name`, or `%"..."` when the name needs quoting.
std::string ValueRef(std::string_view name);

// Characters allowed in a value name printed without quotes (`%fc1.weight`); ':' is never one.
inline bool IsBareNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}
// Identifiers (symbolic dims, attribute and annotation keys): [A-Za-z_][A-Za-z0-9_.]*
inline bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

}  // namespace text_ir
}  // namespace ampc
