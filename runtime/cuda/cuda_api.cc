// Built only with the CUDA toolkit (the file is empty otherwise).
#ifdef AMPC_HAVE_CUDA
#include "runtime/cuda/cuda_api.h"

#include <dlfcn.h>

#include <type_traits>

namespace ampc::cuda {

namespace {

CublasLt lt_api;  // filled by LoadCublasLt

}  // namespace

Status CudaFailure(cudaError_t e, const std::string& what) {
  return Internal("CUDA: " + what + ": " + cudaGetErrorString(e));
}

const CublasLt& LtApi() { return lt_api; }

Status LoadCublasLt() {
  static const Status st = [] {
    void* h = nullptr;
    for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
      if ((h = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    }
    if (!h)
      return Unimplemented(std::string("cuBLASLt not found (libcublasLt.so.13): ") + dlerror());
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      ok = ok && fn;
    };
    sym(lt_api.Create, "cublasLtCreate");
    sym(lt_api.Destroy, "cublasLtDestroy");
    sym(lt_api.GetStatusString, "cublasLtGetStatusString");
    sym(lt_api.MatmulDescCreate, "cublasLtMatmulDescCreate");
    sym(lt_api.MatmulDescDestroy, "cublasLtMatmulDescDestroy");
    sym(lt_api.MatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
    sym(lt_api.MatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
    sym(lt_api.MatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
    sym(lt_api.MatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
    sym(lt_api.MatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate");
    sym(lt_api.MatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy");
    sym(lt_api.MatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
    sym(lt_api.MatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
    sym(lt_api.Matmul, "cublasLtMatmul");
    if (!ok) return Unimplemented("cuBLASLt: a function ampc needs is missing from the library");
    return Status::Ok();
  }();
  return st;
}

StatusOr<const Driver*> GetDriver() {
  static Driver d;
  static const Status st = [] {
    auto get = [](const char* name, void** fn) -> Status {
      cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
      const cudaError_t e =
          cudaGetDriverEntryPointByVersion(name, fn, 12000, cudaEnableDefault, &q);
      if (e != cudaSuccess) return CudaFailure(e, std::string("driver entry point ") + name);
      if (q != cudaDriverEntryPointSuccess || !*fn) {
        return Internal(std::string("CUDA: the driver has no entry point ") + name);
      }
      return Status::Ok();
    };
    RETURN_IF_ERROR(get("cuModuleLoadData", reinterpret_cast<void**>(&d.module_load_data)));
    RETURN_IF_ERROR(get("cuModuleGetFunction", reinterpret_cast<void**>(&d.module_get_function)));
    RETURN_IF_ERROR(get("cuModuleUnload", reinterpret_cast<void**>(&d.module_unload)));
    RETURN_IF_ERROR(get("cuLaunchKernel", reinterpret_cast<void**>(&d.launch_kernel)));
    return Status::Ok();
  }();
  if (!st.ok()) return st;
  return &d;
}

Status DriverFailure(CUresult r, const std::string& what) {
  return Internal("CUDA driver: " + what + ": error " + std::to_string(static_cast<int>(r)));
}

StatusOr<cudaDataType_t> CudaType(DType t) {
  switch (t) {
    case DType::kFloat32:
      return CUDA_R_32F;
    case DType::kFloat16:
      return CUDA_R_16F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    default:
      return Unimplemented("cuBLASLt: no " + std::string(DTypeName(t)) + " matrices");
  }
}

}  // namespace ampc::cuda

#endif  // AMPC_HAVE_CUDA
