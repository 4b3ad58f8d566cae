#include "runtime/cuda/gemm_layout.h"

#include <algorithm>
#include <numeric>

namespace ampc::cuda {

namespace {

int64_t Product(const std::vector<int64_t>& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= d[i];
  return p;
}

int64_t IntAttr(const AttributeMap& attrs, const std::string& name, int64_t dflt) {
  auto it = attrs.find(name);
  return it == attrs.end() ? dflt : it->second.i();
}

float FloatAttr(const AttributeMap& attrs, const std::string& name, float dflt) {
  auto it = attrs.find(name);
  return it == attrs.end() ? dflt : it->second.f();
}

std::string Name(DType t) { return std::string(DTypeName(t)); }

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// The element offset of each output batch matrix's operand matrix, numpy broadcasting `batch`
// (the operand's leading axes) against `out` (the output's), for matrices of `matrix` elements.
std::vector<int64_t> BatchOffsets(const std::vector<int64_t>& batch,
                                  const std::vector<int64_t>& out, int64_t matrix) {
  const size_t r = out.size();
  std::vector<int64_t> b(r, 1);  // right-aligned
  std::copy(batch.begin(), batch.end(), b.begin() + (r - batch.size()));
  std::vector<int64_t> stride(r, 0);
  int64_t s = matrix;
  for (size_t i = r; i-- > 0;) {
    stride[i] = b[i] == 1 ? 0 : s;
    s *= b[i];
  }
  const int64_t total = Product(out, 0, r);
  std::vector<int64_t> offsets(static_cast<size_t>(total), 0);
  std::vector<int64_t> idx(r, 0);
  for (int64_t t = 0; t < total; ++t) {
    int64_t o = 0;
    for (size_t i = 0; i < r; ++i) o += idx[i] * stride[i];
    offsets[static_cast<size_t>(t)] = o;
    for (size_t i = r; i-- > 0;) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return offsets;
}

// The common stride of `offsets` (offsets[t] == t * stride), or -1.
int64_t UniformStride(const std::vector<int64_t>& offsets) {
  if (offsets.size() < 2) return 0;
  const int64_t s = offsets[1] - offsets[0];
  if (offsets[0] != 0) return -1;
  for (size_t t = 0; t < offsets.size(); ++t) {
    if (offsets[t] != static_cast<int64_t>(t) * s) return -1;
  }
  return s;
}

}  // namespace

bool CublasLtSupportsTypes(DType ab, DType d) {
  const bool ab_ok = ab == DType::kFloat32 || ab == DType::kFloat16 || ab == DType::kBFloat16;
  return ab_ok && (d == ab || d == DType::kFloat32);
}

// The calls, layouts and epilogue (alignments unset).
StatusOr<GemmDesc> DescribeGemmCalls(const std::string& domain, const std::string& op,
                                     const AttributeMap& attrs,
                                     const std::vector<GemmOperand>& inputs,
                                     const GemmOperand& output) {
  const bool gemm = op == "Gemm" && domain.empty();
  const bool matmul = op == "MatMul" && (domain.empty() || domain == "com.ampc");
  if (!gemm && !matmul) return InvalidArgument("not a GEMM: " + domain + "::" + op);
  if (inputs.size() < 2 || (matmul && inputs.size() != 2) || inputs.size() > 3) {
    return InvalidArgument(op + ": " + std::to_string(inputs.size()) + " inputs");
  }
  const GemmOperand& A = inputs[0];
  const GemmOperand& B = inputs[1];
  if (A.dtype != B.dtype) {
    return Unimplemented(op + ": inputs of two types (" + Name(A.dtype) + ", " + Name(B.dtype) +
                         ")");
  }
  if (!CublasLtSupportsTypes(A.dtype, output.dtype)) {
    return Unimplemented(op + ": cuBLASLt has no " + Name(A.dtype) + " x " + Name(A.dtype) +
                         " -> " + Name(output.dtype) + " GEMM with fp32 accumulation");
  }
  const bool ta = IntAttr(attrs, "transA", 0) != 0;
  const bool tb = IntAttr(attrs, "transB", 0) != 0;
  // Matrices of A and B as stored (row-major [rows, cols]) and their leading axes.
  std::vector<int64_t> a = A.dims, b = B.dims;
  if (a.empty() || b.empty()) return InvalidArgument(op + ": scalar input");
  if (gemm && (a.size() != 2 || b.size() != 2)) return InvalidArgument("Gemm: inputs of rank != 2");
  if ((ta && a.size() < 2) || (tb && b.size() < 2)) {
    return InvalidArgument(op + ": transA / transB on a vector");
  }
  if (a.size() == 1) a.insert(a.begin(), 1);  // [K] -> [1, K]
  if (b.size() == 1) b.push_back(1);          // [K] -> [K, 1]
  const int64_t ar = a[a.size() - 2], ac = a.back(), br = b[b.size() - 2], bc = b.back();
  const int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
  if ((tb ? bc : br) != K) {
    return InvalidArgument(op + ": inner dimensions " + std::to_string(K) + " and " +
                           std::to_string(tb ? bc : br) + " differ");
  }
  const std::vector<int64_t> a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  std::vector<int64_t> out_batch(std::max(a_batch.size(), b_batch.size()), 1);
  for (size_t i = 0; i < out_batch.size(); ++i) {
    auto at = [&](const std::vector<int64_t>& v) -> int64_t {
      const size_t pad = out_batch.size() - v.size();
      return i < pad ? 1 : v[i - pad];
    };
    const int64_t x = at(a_batch), y = at(b_batch);
    if (x != y && x != 1 && y != 1) return InvalidArgument(op + ": batch axes do not broadcast");
    out_batch[i] = std::max(x, y);
  }
  const int64_t batches = Product(out_batch, 0, out_batch.size());
  if (Product(output.dims, 0, output.dims.size()) != batches * M * N) {
    return InvalidArgument(op + ": the output does not hold " + std::to_string(batches) + " x " +
                           std::to_string(M) + " x " + std::to_string(N) + " elements");
  }

  GemmDesc d;
  d.a_type = B.dtype;
  d.b_type = A.dtype;
  d.d_type = output.dtype;
  d.trans_a = tb;
  d.trans_b = ta;
  d.m = N;
  d.n = M;
  d.k = K;
  // cuBLASLt's A is the step's B stored row-major [br, bc]: column-major [bc, br], ld bc.
  d.a = {bc, br, bc, 0};
  d.b = {ac, ar, ac, 0};
  d.d = {N, M, N, M * N};
  if (gemm) {
    d.alpha = FloatAttr(attrs, "alpha", 1.0f);
    d.beta = FloatAttr(attrs, "beta", 1.0f);
    if (inputs.size() == 3 && d.beta != 0) {
      const GemmOperand& C = inputs[2];
      const int64_t elements = Product(C.dims, 0, C.dims.size());
      const bool row = (C.dims.size() == 1 && C.dims[0] == N) ||
                       (C.dims.size() == 2 && C.dims[0] == 1 && C.dims[1] == N);
      d.c_type = C.dtype;
      if (row && d.beta == 1 && (C.dtype == output.dtype || C.dtype == DType::kFloat32)) {
        d.epilogue = GemmEpilogue::kBias;  // one value per cuBLASLt row (the step's columns)
      } else if (C.dims.size() == 2 && C.dims[0] == M && C.dims[1] == N &&
                 C.dtype == output.dtype) {
        d.c_matrix = true;
      } else {
        return Unimplemented("Gemm: C of shape " + DimsText(C.dims) + " (" +
                             std::to_string(elements) + " elements, beta " +
                             std::to_string(d.beta) + ") is neither a bias row nor Y's shape");
      }
    } else {
      d.beta = 0;
    }
    d.calls.push_back({});
    return d;
  }
  // MatMul: batches.
  const std::vector<int64_t> oa = BatchOffsets(a_batch, out_batch, ar * ac);
  const std::vector<int64_t> ob = BatchOffsets(b_batch, out_batch, br * bc);
  const int64_t sa = UniformStride(oa), sb = UniformStride(ob);
  if (batches > 1 && sb == 0 && sa == ar * ac && !ta) {
    // The step's B is shared by every batch and A's matrices are contiguous rows: one GEMM with
    // batches * M rows (cuBLASLt's n).
    d.n = batches * M;
    d.b = {ac, batches * ar, ac, 0};
    d.d = {N, batches * M, N, 0};
    d.calls.push_back({});
    return d;
  }
  if (sa >= 0 && sb >= 0) {
    d.batch = batches;
    d.a.batch_stride = sb;  // cuBLASLt's A is the step's B
    d.b.batch_stride = sa;
    d.calls.push_back({});
    return d;
  }
  for (int64_t t = 0; t < batches; ++t) {
    d.calls.push_back({ob[static_cast<size_t>(t)], oa[static_cast<size_t>(t)], t * M * N});
  }
  return d;
}

namespace {}  // namespace

// The largest power of two (at most 256) dividing `base` and every byte offset in `offsets`.
uint32_t GemmAlignment(int64_t base, const std::vector<int64_t>& offsets) {
  uint64_t g = static_cast<uint64_t>(std::min<int64_t>(std::max<int64_t>(base, 1), 256));
  for (int64_t o : offsets) g = std::gcd(g, static_cast<uint64_t>(o < 0 ? -o : o));
  uint32_t a = 1;
  while (a < 256 && g % (2 * a) == 0) a *= 2;
  return a;
}

StatusOr<GemmDesc> DescribeGemm(const std::string& domain, const std::string& op,
                                const AttributeMap& attrs, const std::vector<GemmOperand>& inputs,
                                const GemmOperand& output, int64_t base_alignment) {
  ASSIGN_OR_RETURN(GemmDesc d, DescribeGemmCalls(domain, op, attrs, inputs, output));
  std::vector<int64_t> oa, ob, od;
  const int64_t ea = static_cast<int64_t>(DTypeSize(d.a_type));
  const int64_t eb = static_cast<int64_t>(DTypeSize(d.b_type));
  const int64_t ed = static_cast<int64_t>(DTypeSize(d.d_type));
  for (const GemmCallOffsets& c : d.calls) {
    oa.push_back(c.a * ea);
    ob.push_back(c.b * eb);
    od.push_back(c.d * ed);
  }
  if (d.batch > 1) {
    oa.push_back(d.a.batch_stride * ea);
    ob.push_back(d.b.batch_stride * eb);
    od.push_back(d.d.batch_stride * ed);
  }
  d.a_align = GemmAlignment(base_alignment, oa);
  d.b_align = GemmAlignment(base_alignment, ob);
  d.d_align = GemmAlignment(base_alignment, od);
  return d;
}

}  // namespace ampc::cuda
