// Built only with the CUDA toolkit (the file is empty otherwise).
#ifdef AMPC_HAVE_CUDA
#include "runtime/cuda/window_step.h"

#include <cstring>
#include <string>

#include "runtime/cuda/copy_kernels.h"
#include "runtime/cuda/cuda_api.h"
#include "runtime/cuda/window_kernels.h"

namespace ampc::cuda {

namespace {

Status Launched(int e, const char* what) {
  return e == 0 ? Status::Ok() : CudaFailure(static_cast<cudaError_t>(e), what);
}

}  // namespace

StatusOr<std::unique_ptr<WindowStep>> WindowStep::Bind(const plan::PlanProto& p,
                                                       const plan::Step& s, StepKind kind,
                                                       const WindowBinding& b) {
  std::unique_ptr<WindowStep> w(new WindowStep());
  w->kind_ = kind;
  for (int id : s.inputs()) w->in_.push_back(id < 0 ? nullptr : b.address(id));
  for (int id : s.outputs()) w->out_.push_back(id < 0 ? nullptr : b.address(id));
  switch (kind) {
    case StepKind::kConv: {
      ASSIGN_OR_RETURN(w->conv_, DescribeConv(p, s));
      const ConvStep& c = *w->conv_;
      w->col_ = b.scratch + c.col_at;
      w->yt_ = b.scratch + c.yt_at;
      w->dyt_ = b.scratch + c.dyt_at;
      w->dcol_ = b.scratch + c.dcol_at;
      auto matrix = [&](ConvMatrix m) -> uint8_t* {
        switch (m) {
          case ConvMatrix::kW:
            return const_cast<uint8_t*>(w->in_[c.grad ? 2 : 1]);
          case ConvMatrix::kDw:
            return w->out_[1];
          case ConvMatrix::kCol:
            return w->col_;
          case ConvMatrix::kYt:
            return w->yt_;
          case ConvMatrix::kDyt:
            return w->dyt_;
          case ConvMatrix::kDcol:
            return w->dcol_;
        }
        return nullptr;
      };
      for (const ConvGemm& g : c.gemms) {
        w->gemms_.push_back(std::make_unique<GemmCall>());
        RETURN_IF_ERROR(w->gemms_.back()->Bind(b.lt, g.desc, matrix(g.a), matrix(g.b), nullptr,
                                               matrix(g.d), b.workspace_bytes));
      }
      break;
    }
    case StepKind::kPool: {
      ASSIGN_OR_RETURN(w->pool_, DescribePool(p, s));
      break;
    }
    case StepKind::kPad: {
      ASSIGN_OR_RETURN(const std::vector<int64_t> pads,
                       HostInts(p, s.inputs(1), b.host_value, "Pad's pads"));
      std::vector<int64_t> axes;
      if (s.inputs_size() > 3 && s.inputs(3) >= 0) {
        ASSIGN_OR_RETURN(axes, HostInts(p, s.inputs(3), b.host_value, "Pad's axes"));
      }
      ASSIGN_OR_RETURN(w->pad_, DescribePad(p, s, pads, axes));
      if (s.inputs_size() > 2 && s.inputs(2) >= 0) {
        const uint8_t* v = b.host_value(s.inputs(2));
        if (!v) return Unimplemented("Pad's constant_value is not known before the step runs");
        std::memcpy(&w->pad_.value_bits, v, static_cast<size_t>(w->pad_.elem_bytes));
      }
      break;
    }
    case StepKind::kClip: {
      const plan::Buffer& x = p.buffers(s.inputs(0));
      ASSIGN_OR_RETURN(w->clip_type_,
                       FloatTypeOf(DTypeFromName(x.dtype()).value_or(DType::kUndefined)));
      w->clip_n_ = 1;
      for (int64_t d : x.dims()) w->clip_n_ *= d;
      break;  // ClassifySteps checked the bounds
    }
    default:
      return Internal("not a window step");
  }
  return w;
}

Status WindowStep::Enqueue(cublasLtHandle_t lt, void* workspace, size_t workspace_bytes,
                           cudaStream_t stream) const {
  switch (kind_) {
    case StepKind::kConv: {
      const ConvStep& c = *conv_;
      const ConvDesc& d = c.conv;
      const int e = FloatTypeBytes(c.type);
      if (!c.grad || c.dw) {
        RETURN_IF_ERROR(Launched(LaunchIm2Col(d, e, in_[c.grad ? 1 : 0], col_, stream), "im2col"));
      }
      if (c.grad) {
        RETURN_IF_ERROR(Launched(LaunchStridedCopy(c.dy_to_dyt, in_[0], dyt_, stream), "dY"));
      }
      for (const auto& g : gemms_)
        RETURN_IF_ERROR(g->Enqueue(lt, workspace, workspace_bytes, stream));
      if (!c.grad) {
        return Launched(LaunchConvOut(d, c.type, reinterpret_cast<const float*>(yt_),
                                      c.bias ? in_[2] : nullptr, out_[0], stream),
                        "conv output");
      }
      if (c.dx) {
        RETURN_IF_ERROR(Launched(
            LaunchCol2Im(d, c.type, reinterpret_cast<const float*>(dcol_), out_[0], stream),
            "col2im"));
      }
      if (c.db) {
        RETURN_IF_ERROR(
            Launched(LaunchConvBiasGrad(d, c.type, in_[0], out_[2], stream), "bias gradient"));
      }
      return Status::Ok();
    }
    case StepKind::kPool:
      if (!pool_->grad)
        return Launched(LaunchPool(pool_->pool, pool_->type, in_[0], out_[0], stream), "pool");
      return Launched(LaunchPoolGrad(pool_->pool, pool_->type,
                                     pool_->pool.kind == PoolKind::kMax ? in_[1] : nullptr, in_[0],
                                     out_[0], stream),
                      "pool gradient");
    case StepKind::kPad:
      return Launched(LaunchPad(pad_, in_[0], out_[0], stream), "pad");
    case StepKind::kClip:
      return Launched(LaunchClip(clip_n_, clip_type_, in_[0], in_.size() > 1 ? in_[1] : nullptr,
                                 in_.size() > 2 ? in_[2] : nullptr, out_[0], stream),
                      "clip");
    default:
      return Internal("not a window step");
  }
}

}  // namespace ampc::cuda
#endif  // AMPC_HAVE_CUDA
