// Limits on what one input file may ask ampc to hold: models, textual IR, plans, checkpoints and
// data sets come from anywhere, so a few bytes must not be able to make ampc allocate gigabytes,
// recurse without end or run for hours. The limits are process-wide because every reader checks
// them (from ir/ up to runtime/) and the command line sets them once (`ampc --max-tensor-bytes`
// ...); the defaults are far above any real model the CPU runtime trains and only catch inputs
// whose declared sizes are absurd. Exceeding one is an InvalidArgument that names the limit and
// the flag that raises it.
#pragma once

#include <cstdint>
#include <string>

#include "ir/status.h"

namespace ampc {

struct InputLimits {
  // Bytes of tensor data one input may declare: the sum over a model's initializers and constant
  // attributes, one tensor of textual IR, one .npy/.npz/IDX data set, a plan's arena and data
  // section, a checkpoint file. 64 GiB: twice the largest model a 2 x 64 GiB host would train.
  int64_t max_tensor_bytes = int64_t{64} << 30;
  // Nodes of one graph (all of a model's graphs together).
  int64_t max_nodes = 10'000'000;
  // Nesting of graphs in attributes and of functions; also the depth of nested brackets in JSON
  // and textual IR.
  int64_t max_nesting = 64;
  // One string (a name, a string attribute, a regular expression, a JSON value) in bytes.
  int64_t max_string_bytes = int64_t{16} << 20;
  // Elements of one list attribute (ints, floats, strings).
  int64_t max_attribute_elements = 100'000'000;
};

const InputLimits& GetInputLimits();
void SetInputLimits(const InputLimits& limits);

// "WHAT: N bytes of tensor data exceed the limit of L (--max-tensor-bytes raises it)" when
// `value` > the limit; the flag names are those of `ampc` (tools/ampc/main.cc).
Status CheckTensorBytes(int64_t bytes, const std::string& what);
Status CheckNodeCount(int64_t nodes, const std::string& what);
Status CheckNesting(int64_t depth, const std::string& what);
Status CheckStringBytes(int64_t bytes, const std::string& what);
Status CheckAttributeElements(int64_t elements, const std::string& what);

// a * b and a + b for sizes, false on overflow of int64 or a negative operand.
inline bool MulSize(int64_t a, int64_t b, int64_t* out) {
  return a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, out);
}
inline bool AddSize(int64_t a, int64_t b, int64_t* out) {
  return a >= 0 && b >= 0 && !__builtin_add_overflow(a, b, out);
}

}  // namespace ampc
