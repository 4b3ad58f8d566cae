// The 2x2 / stride 2 max pool and its gradient over one f32 plane (a DenseWalk2D<2, 2> geometry:
// windows wholly inside the input, no padding or dilation), 8 windows at a time in AVX2. The
// values are the generic window walk's bit for bit (kernels_conv.cc's MaxPoolPlane without
// indices, kernels_grad_window.cc's MaxPoolGradPlane): taps in row order; forward, the max by
// `>` and NaN when any tap is NaN; gradient, dY (as 0 + dY) at the first maximum of each window,
// the first NaN winning, and 0 elsewhere. Each returns false, computing nothing, on a CPU without
// AVX2 (the caller walks the windows instead).
#pragma once

#include "runtime/cpu/window.h"

namespace ampc::cpu::window {

bool MaxPool2x2Plane(const float* x, const Geometry& g, float* y);
bool MaxPoolGrad2x2Plane(const float* x, const float* dy, const Geometry& g, float* dx);
// Other element types always walk the windows. (These keep the callers' calls well-formed for
// every element type: clang checks a call in a discarded `if constexpr` branch when it does not
// depend on the generic lambda's own parameter.)
template <typename T>
bool MaxPool2x2Plane(const T*, const Geometry&, T*) {
  return false;
}
template <typename T>
bool MaxPoolGrad2x2Plane(const T*, const T*, const Geometry&, T*) {
  return false;
}

}  // namespace ampc::cpu::window
