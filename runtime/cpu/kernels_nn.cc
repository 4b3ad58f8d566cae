// CPU kernels for the matmul-like NN ops: MatMul (numpy semantics), Gemm and Einsum (one or two
// operands, no ellipsis, no repeated label within an operand). All float products go through
// runtime/cpu/gemm.h (OpenBLAS; f16/bf16 accumulate in fp32 and round once). The convolution,
// pooling, normalisation, softmax and loss kernels live in kernels_conv.cc and kernels_norm.cc;
// RegisterNNKernels registers all of them.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"
#include "runtime/cpu/broadcast.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {

void RegisterConvKernels(KernelRegistry& r);  // kernels_conv.cc
void RegisterNormKernels(KernelRegistry& r);  // kernels_norm.cc

namespace {

std::string S(int64_t v) { return std::to_string(v); }

int64_t Product(const std::vector<int64_t>& d) {
  int64_t p = 1;
  for (int64_t v : d) p *= v;
  return p;
}

bool IsGemmType(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 ||
         t == DType::kBFloat16;
}

// Numpy broadcast of two shapes; false when they do not broadcast.
bool BroadcastDims(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                   std::vector<int64_t>* out) {
  const size_t n = std::max(a.size(), b.size());
  out->assign(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (x != y && x != 1 && y != 1) return false;
    (*out)[i] = x == 1 ? y : x;
  }
  return true;
}

// -------------------------------------------------------------------------------- MatMul

// Integer MatMul: int64 accumulation, wrapping into the output type as numpy does.
template <typename I>
void IntMatMul(const I* a, const I* b, I* c, int64_t batch, int64_t M, int64_t N, int64_t K,
               const std::vector<int64_t>& oa, const std::vector<int64_t>& ob) {
  for (int64_t t = 0; t < batch; ++t) {
    const I* pa = a + oa[t];
    const I* pb = b + ob[t];
    I* pc = c + t * M * N;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          acc += static_cast<int64_t>(pa[i * K + k]) * static_cast<int64_t>(pb[k * N + j]);
        }
        pc[i * N + j] = static_cast<I>(acc);
      }
    }
  }
}

Status MatMulKernel(KernelContext& ctx) {
  const TensorView* A = ctx.in(0);
  const TensorView* B = ctx.in(1);
  TensorView* Y = ctx.out(0);
  if (!A || !B || !Y) return InvalidArgument("MatMul needs inputs A, B and output Y");
  if (A->dtype != B->dtype || Y->dtype != A->dtype) {
    return InvalidArgument("MatMul: A, B and Y have different dtypes");
  }
  if (A->rank() < 1 || B->rank() < 1) return InvalidArgument("MatMul does not accept scalars");
  // com.ampc::MatMul's transA / transB: the last two axes of A / B swapped (read transposed).
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  if ((ta && A->rank() < 2) || (tb && B->rank() < 2)) {
    return InvalidArgument("MatMul: transA / transB need an input of rank >= 2");
  }
  std::vector<int64_t> ad = A->dims, bd = B->dims;
  const bool pa = ad.size() == 1, pb = bd.size() == 1;
  if (pa) ad.insert(ad.begin(), 1);
  if (pb) bd.push_back(1);
  if (ta) std::swap(ad[ad.size() - 1], ad[ad.size() - 2]);
  if (tb) std::swap(bd[bd.size() - 1], bd[bd.size() - 2]);
  const int64_t M = ad[ad.size() - 2], K = ad.back(), N = bd.back();
  const std::vector<int64_t> abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  std::vector<int64_t> obatch;
  if (bd[bd.size() - 2] != K || !BroadcastDims(abatch, bbatch, &obatch)) {
    return InvalidArgument("MatMul: A " + DimsToString(A->dims) + " and B " +
                           DimsToString(B->dims) + " do not match");
  }
  std::vector<int64_t> expect = obatch;
  if (!pa) expect.push_back(M);
  if (!pb) expect.push_back(N);
  if (Y->dims != expect) {
    return InvalidArgument("MatMul: output " + DimsToString(Y->dims) + " should be " +
                           DimsToString(expect));
  }
  const int64_t batch = Product(obatch);
  GemmDesc d;
  d.dtype = A->dtype;
  d.trans_a = ta;
  d.trans_b = tb;
  d.m = M;
  d.n = N;
  d.k = K;
  std::vector<int64_t> oa, ob, oc;
  if (!ta && Product(bbatch) == 1 && Product(abatch) == batch) {
    d.m = batch * M;  // B is shared: fold A's batch into its rows, one GEMM
  } else {
    oa.resize(batch);
    ob.resize(batch);
    oc.resize(batch);
    BroadcastCursor cur(obatch,
                        {BroadcastStrides(abatch, obatch), BroadcastStrides(bbatch, obatch)}, 0);
    for (int64_t t = 0; t < batch; ++t, cur.Next()) {
      oa[t] = cur.offset(0) * M * K;
      ob[t] = cur.offset(1) * K * N;
      oc[t] = t * M * N;
    }
    d.batch = batch;
    d.offsets_a = oa.data();
    d.offsets_b = ob.data();
    d.offsets_c = oc.data();
  }
  if (IsGemmType(A->dtype)) return Gemm(d, A->data, B->data, Y->data, ctx.pool);
  if (ta || tb)
    return Unimplemented("MatMul with transA / transB on " + std::string(DTypeName(A->dtype)));
  if (oa.empty()) {
    oa.assign(1, 0);
    ob.assign(1, 0);
  }
  const int64_t nb = static_cast<int64_t>(oa.size()), m = oa.size() == 1 ? d.m : M;
  switch (A->dtype) {
    case DType::kInt64:
      IntMatMul(A->as<const int64_t>(), B->as<const int64_t>(), Y->as<int64_t>(), nb, m, N, K, oa,
                ob);
      return Status::Ok();
    case DType::kInt32:
      IntMatMul(A->as<const int32_t>(), B->as<const int32_t>(), Y->as<int32_t>(), nb, m, N, K, oa,
                ob);
      return Status::Ok();
    default:
      return Unimplemented("MatMul on " + std::string(DTypeName(A->dtype)));
  }
}

// ---------------------------------------------------------------------------------- Gemm

template <typename E>
void FillBroadcast(const E* c, E* y, int64_t M, int64_t N, int64_t s0, int64_t s1) {
  for (int64_t i = 0; i < M; ++i) {
    E* row = y + i * N;
    const E* src = c + i * s0;
    if (s1 == 1) {
      std::copy(src, src + N, row);
    } else {
      std::fill(row, row + N, src[0]);
    }
  }
}

Status GemmKernel(KernelContext& ctx) {
  const TensorView* A = ctx.in(0);
  const TensorView* B = ctx.in(1);
  const TensorView* C = ctx.in(2);
  TensorView* Y = ctx.out(0);
  if (!A || !B || !Y) return InvalidArgument("Gemm needs inputs A, B and output Y");
  if (A->dtype != B->dtype || Y->dtype != A->dtype || (C && C->dtype != A->dtype)) {
    return InvalidArgument("Gemm: inputs and output have different dtypes");
  }
  if (!IsGemmType(A->dtype)) return Unimplemented("Gemm on " + std::string(DTypeName(A->dtype)));
  if (A->rank() != 2 || B->rank() != 2) {
    return InvalidArgument("Gemm: A " + DimsToString(A->dims) + " and B " + DimsToString(B->dims) +
                           " must be 2-D");
  }
  GemmDesc d;
  d.dtype = A->dtype;
  d.trans_a = ctx.attr_int("transA", 0) != 0;
  d.trans_b = ctx.attr_int("transB", 0) != 0;
  d.m = A->dims[d.trans_a ? 1 : 0];
  d.k = A->dims[d.trans_a ? 0 : 1];
  d.n = B->dims[d.trans_b ? 0 : 1];
  if (B->dims[d.trans_b ? 1 : 0] != d.k || Y->dims != std::vector<int64_t>{d.m, d.n}) {
    return InvalidArgument("Gemm: A " + DimsToString(A->dims) + ", B " + DimsToString(B->dims) +
                           " and Y " + DimsToString(Y->dims) + " do not match");
  }
  d.alpha = ctx.attr_float("alpha", 1.0f);
  const float beta = ctx.attr_float("beta", 1.0f);
  if (C && beta != 0.0f) {
    const std::vector<int64_t> out = {d.m, d.n};
    std::vector<int64_t> bc;
    if (C->rank() > 2 || !BroadcastDims(C->dims, out, &bc) || bc != out) {
      return InvalidArgument("Gemm: C " + DimsToString(C->dims) + " does not broadcast to " +
                             DimsToString(out));
    }
    const std::vector<int64_t> st = BroadcastStrides(C->dims, out);
    if (d.m > 0 && d.n > 0) {
      switch (DTypeSize(C->dtype)) {
        case 2:
          FillBroadcast(C->as<const uint16_t>(), Y->as<uint16_t>(), d.m, d.n, st[0], st[1]);
          break;
        case 4:
          FillBroadcast(C->as<const uint32_t>(), Y->as<uint32_t>(), d.m, d.n, st[0], st[1]);
          break;
        default:
          FillBroadcast(C->as<const uint64_t>(), Y->as<uint64_t>(), d.m, d.n, st[0], st[1]);
      }
    }
    d.beta = beta;  // Y = alpha * A B + beta * C, summed in the compute type, rounded once
  }
  return Gemm(d, A->data, B->data, Y->data, ctx.pool);
}

// -------------------------------------------------------------------------------- Einsum

// Copies `src` (labels `from`, row-major dims from the label sizes) into dst laid out by the
// labels `keep`, summing over the labels of `from` that are not kept.
template <typename T>
void PermuteSum(const T* src, const std::string& from, const std::string& keep,
                const std::map<char, int64_t>& size, T* dst) {
  std::vector<int64_t> stride(from.size());
  int64_t s = 1;
  for (size_t i = from.size(); i-- > 0;) {
    stride[i] = s;
    s *= size.at(from[i]);
  }
  std::vector<int64_t> kd, ks, rd, rs;  // kept / reduced dims and their source strides
  for (char c : keep) {
    kd.push_back(size.at(c));
    ks.push_back(stride[from.find(c)]);
  }
  for (size_t i = 0; i < from.size(); ++i) {
    if (keep.find(from[i]) == std::string::npos) {
      rd.push_back(size.at(from[i]));
      rs.push_back(stride[i]);
    }
  }
  const int64_t total = Product(kd), rtotal = Product(rd);
  std::vector<int64_t> ki(kd.size(), 0), ri(rd.size(), 0);
  int64_t base = 0;
  for (int64_t o = 0; o < total; ++o) {
    T acc = 0;
    int64_t off = base;
    for (int64_t r = 0; r < rtotal; ++r) {
      acc += src[off];
      for (size_t j = rd.size(); j-- > 0;) {  // odometer over the reduced labels
        off += rs[j];
        if (++ri[j] < rd[j]) break;
        off -= rs[j] * rd[j];
        ri[j] = 0;
      }
    }
    dst[o] = acc;
    for (size_t j = kd.size(); j-- > 0;) {
      base += ks[j];
      if (++ki[j] < kd[j]) break;
      base -= ks[j] * kd[j];
      ki[j] = 0;
    }
  }
}

template <typename T>
Status EinsumImpl(KernelContext& ctx, const std::vector<std::string>& terms, const std::string& rhs,
                  const std::map<char, int64_t>& size) {
  ThreadPool* pool = ctx.pool;
  ComputeOut<T> yout(*ctx.out(0));
  ComputeIn<T> a(*ctx.in(0), pool);
  if (terms.size() == 1) {
    PermuteSum(a.get(), terms[0], rhs, size, yout.get());
    yout.Finish(pool);
    return Status::Ok();
  }
  ComputeIn<T> b(*ctx.in(1), pool);
  const std::string& ta = terms[0];
  const std::string& tb = terms[1];
  auto has = [](const std::string& s, char c) { return s.find(c) != std::string::npos; };
  std::string bl, ml, nl, kl;  // batch, rows (A only), columns (B only), contracted labels
  for (char c : rhs) {
    if (has(ta, c) && has(tb, c)) {
      bl += c;
    } else if (has(ta, c)) {
      ml += c;
    } else {
      nl += c;
    }
  }
  for (char c : ta) {
    if (has(tb, c) && !has(rhs, c)) kl += c;
  }
  auto prod = [&](const std::string& ls) {
    int64_t p = 1;
    for (char c : ls) p *= size.at(c);
    return p;
  };
  const int64_t nb = prod(bl), M = prod(ml), N = prod(nl), K = prod(kl);
  std::vector<T> pa(static_cast<size_t>(nb * M * K)), pb(static_cast<size_t>(nb * K * N));
  std::vector<T> pc(static_cast<size_t>(nb * M * N));
  PermuteSum(a.get(), ta, bl + ml + kl, size, pa.data());
  PermuteSum(b.get(), tb, bl + kl + nl, size, pb.data());
  GemmDesc d;
  d.dtype = kDTypeOf<T>;
  d.m = M;
  d.n = N;
  d.k = K;
  d.batch = nb;
  d.stride_a = M * K;
  d.stride_b = K * N;
  d.stride_c = M * N;
  RETURN_IF_ERROR(Gemm(d, pa.data(), pb.data(), pc.data(), pool));
  PermuteSum(pc.data(), bl + ml + nl, rhs, size, yout.get());
  yout.Finish(pool);
  return Status::Ok();
}

Status EinsumKernel(KernelContext& ctx) {
  ASSIGN_OR_RETURN(infer::EinsumEquation parsed,
                   infer::ParseEinsum(ctx.attr_string("equation", ""), ctx.num_inputs()));
  const std::vector<std::string>& terms = parsed.terms;
  const std::string eq = ctx.attr_string("equation", "");
  if (terms.size() > 2) {
    return Unimplemented("Einsum with " + S(terms.size()) + " operands (at most 2 supported)");
  }
  if (!ctx.out(0)) return InvalidArgument("Einsum has no output");
  std::map<char, int64_t> size;
  for (size_t t = 0; t < terms.size(); ++t) {
    const TensorView* v = ctx.in(static_cast<int>(t));
    if (!v || v->rank() != static_cast<int64_t>(terms[t].size())) {
      return InvalidArgument("Einsum operand '" + terms[t] + "' does not match input " + S(t));
    }
    if (!IsGemmType(v->dtype) || v->dtype != ctx.in(0)->dtype) {
      return Unimplemented("Einsum on " + std::string(DTypeName(v->dtype)) + " inputs");
    }
    for (size_t k = 0; k < terms[t].size(); ++k) {
      const char c = terms[t][k];
      if (terms[t].find(c) != k) {
        return Unimplemented("Einsum with a repeated label within an operand: " + eq);
      }
      auto [it, fresh] = size.emplace(c, v->dims[k]);
      if (!fresh && it->second != v->dims[k]) {
        return InvalidArgument(std::string("Einsum label '") + c + "' has differing sizes");
      }
    }
  }
  const std::string& rhs = parsed.output;
  std::vector<int64_t> odims;
  for (char c : rhs) odims.push_back(size[c]);
  TensorView& Y = *ctx.out(0);
  if (Y.dims != odims || Y.dtype != ctx.in(0)->dtype) {
    return InvalidArgument("Einsum: output " + DimsToString(Y.dims) + " should be " +
                           DimsToString(odims));
  }
  if (Y.dtype == DType::kFloat64) return EinsumImpl<double>(ctx, terms, rhs, size);
  return EinsumImpl<float>(ctx, terms, rhs, size);
}

}  // namespace

void RegisterNNKernels(KernelRegistry& r) {
  r.Register("", "MatMul", MatMulKernel);
  r.Register(kAmpcDomain, "MatMul", MatMulKernel);
  r.Register("", "Gemm", GemmKernel);
  r.Register("", "Einsum", EinsumKernel);
  RegisterConvKernels(r);
  RegisterNormKernels(r);
}

}  // namespace ampc::cpu
