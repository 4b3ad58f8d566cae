// Helpers shared by the type/shape inference functions in ir/ops/*.cc: output setting, axis
// normalisation, dtype checks, numpy broadcasting over static / symbolic / unknown dims,
// checked dim arithmetic and compile-time integer data ("known ints") propagation.
//
// Known ints (Value::known_ints) describe the element values of a small integer tensor of rank
// 0 or 1 (at most kMaxKnownInts elements). Entries are static numbers (possibly negative),
// symbols (from Shape of a symbolic dim) or unknown Dims (an element whose value is not known,
// e.g. Shape of an unknown dim); consumers must check each entry.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/shape.h"
#include "ir/status.h"

namespace ampc::infer {

inline constexpr int64_t kMaxKnownInts = 64;

std::string TypeName(DType t);                            // "f32"
std::string DimsToString(const std::vector<Dim>& dims);   // "[batch,3]"
std::string IntsToString(const std::vector<int64_t>& v);  // "[1,2]"

// Input type, or nullptr for an omitted optional input.
const TensorType* InType(const Node& node, int i);

// Sets output i's type (no-op for an omitted output) and clears its known ints.
void SetOutput(Node& node, int i, TensorType t);
// Sets output i's known ints when present and valid (rank <= 1, small); no-op otherwise.
void SetKnown(Node& node, int i, std::optional<std::vector<Dim>> v);

// ---- axes -----------------------------------------------------------------------------------
// Maps axis in [-rank, rank) to [0, rank); else "axis 5 is out of range for rank 2".
StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank);
// Same for a list; also rejects repeated axes.
StatusOr<std::vector<int64_t>> NormalizeAxes(const std::vector<int64_t>& axes, int64_t rank);

// ---- dtypes ---------------------------------------------------------------------------------
bool IsNumeric(DType t);        // float or integer
bool IsSignedNumeric(DType t);  // float or signed integer
// Fails when input i is present but its dtype is undefined.
Status RequireTyped(const Node& node, int i);
// All listed (present) inputs have the same dtype:
// "type mismatch: input 0 is f32, input 1 is f16".
Status SameDType(const Node& node, std::initializer_list<int> inputs);
Status SameDTypeRange(const Node& node, int first, int last);  // inputs [first, last)
// Input i's dtype is floating point: "input 0 has type i64 but Sqrt needs a float type".
Status RequireFloat(const Node& node, int i);
Status RequireNumeric(const Node& node, int i);
Status RequireBool(const Node& node, int i);
Status RequireIndexType(const Node& node, int i);  // i32 or i64
Status RequireInt64(const Node& node, int i);
// Input i, when present, is a scalar: rank 0, or rank 1 of length 1 (as ONNX's Dropout and Clip
// accept). `what` names it in the error.
Status RequireScalar(const Node& node, int i, const char* what);
// Dropout's outputs: output 0 typed like input 0, output 1 the bool mask of the same shape.
void SetDropoutOutputs(Node& node);
// ONNX TensorProto data type number -> DType; error names the number.
StatusOr<DType> DTypeFromOnnx(int64_t onnx_type);

// ---- dims -----------------------------------------------------------------------------------
// a*b, a+b with the result limited to kMaxDim; errors say "size computation ... exceeds ...".
StatusOr<int64_t> CheckedMul(int64_t a, int64_t b);
StatusOr<int64_t> CheckedAdd(int64_t a, int64_t b);
// Product of dims: static when all static, a symbol when exactly one symbol and the static
// part is 1, static 0 when any static dim is 0, else unknown.
StatusOr<Dim> DimProduct(const std::vector<Dim>& dims);
// Dim arithmetic for shape computations: static (checked), x*1, x+0 stay symbolic.
StatusOr<Dim> DimMul(const Dim& a, const Dim& b);
StatusOr<Dim> DimAdd(const Dim& a, const Dim& b);
// Returns the better-informed of two dims that must be equal; error when both static and
// different ("dim 3 vs 4" with `what` as context).
StatusOr<Dim> MergeDims(const Dim& a, const Dim& b, const std::string& what);
// Fails unless every static dim of `dims` is in [0, kMaxDim].
Status ValidateDims(const std::vector<Dim>& dims, const std::string& what);

// ---- broadcasting ---------------------------------------------------------------------------
StatusOr<Dim> BroadcastDim(const Dim& a, const Dim& b);
// Multidirectional (numpy) broadcast of the present inputs' shapes; unknown rank if any
// input has unknown rank.
StatusOr<TensorType> BroadcastTypes(const std::vector<const TensorType*>& types, DType out);
StatusOr<std::vector<Dim>> BroadcastShapes(const std::vector<Dim>& a, const std::vector<Dim>& b);
// Unidirectional: `b` must broadcast to `a` (used for Gemm's C, LayerNorm's scale).
Status CheckUnidirectional(const std::vector<Dim>& target, const std::vector<Dim>& b,
                           const std::string& what);

// ---- known ints -----------------------------------------------------------------------------
// Values of v: its known_ints, or a small integer initializer's data. nullopt if unknown.
std::optional<std::vector<Dim>> KnownInts(const Value* v);
// Known values that are all static numbers.
std::optional<std::vector<int64_t>> KnownStatic(const Value* v);
// Length of a 1-D value (static first dim), if known from its type.
std::optional<int64_t> StaticLength(const Value* v);
// True when a tensor of this type may carry known ints (rank <= 1, <= kMaxKnownInts elems).
bool IsSmall(const TensorType& t);

// Reads an attribute that must be an int list of length n (or absent -> dflt repeated n times).
StatusOr<std::vector<int64_t>> IntsAttrOfLength(const Node& node, const std::string& key, size_t n,
                                                int64_t dflt);

// ---- shape-like inputs ----------------------------------------------------------------------
// Checks that input i (a shape, axes, repeats, ... tensor) is i64 and 1-D when its rank is known.
Status CheckShapeInput(const Node& node, int i, const char* what);
// A type whose rank is the static length of 1-D input i (dims unknown), else unknown rank.
TensorType RankFromLength(const Node& node, int i, DType dt);
// ONNX Reshape: output dims for input type x and target `shape` (entries may be 0 = copy,
// -1 = inferred, symbolic or unknown). -1 is resolved from the product of the input dims,
// cancelling shared symbols ([b,s,64] -> [b,s,4,-1] gives 16). Errors on count mismatches.
StatusOr<std::vector<Dim>> ReshapeDims(const TensorType& x, const std::vector<Dim>& shape,
                                       bool allowzero);
// ONNX Slice along a dim of static size d (starts/ends clamped, negative steps walk
// backwards): the first index taken and the number of elements.
void SliceRange(int64_t d, int64_t start, int64_t end, int64_t step, int64_t* first,
                int64_t* count);

// An Einsum equation without ellipsis: one label string per operand and the output labels
// (given after "->", or implicitly the labels used exactly once, in alphabetical order).
struct EinsumEquation {
  std::vector<std::string> terms;
  std::string output;
};
// Parses `equation` (spaces ignored) for `num_operands` operands. Errors name the problem:
// an ellipsis (Unimplemented), a bad character, an operand count mismatch, an output label that
// is repeated or not among the inputs.
StatusOr<EinsumEquation> ParseEinsum(const std::string& equation, int num_operands);

}  // namespace ampc::infer
