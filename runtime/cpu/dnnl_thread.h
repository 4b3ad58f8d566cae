// The calling thread's oneDNN engine and stream, shared by dnnl_gemm and dnnl_conv (built only
// with oneDNN). Created on the thread's first use, after holding the thread's OpenMP runtime to
// one thread: oneDNN runs on the calling thread only and never starts an OpenMP team (the
// runtime's ThreadPool splits the work; see dnnl_gemm.h).
#pragma once

#ifdef AMPC_HAVE_DNNL

#include <dnnl.hpp>

namespace ampc::cpu {

struct DnnlThread {
  dnnl::engine engine;
  dnnl::stream stream;
};

DnnlThread& ThisThreadDnnl();  // defined in dnnl_gemm.cc

}  // namespace ampc::cpu

#endif
