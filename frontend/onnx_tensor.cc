#include "frontend/onnx_tensor.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "ir/limits.h"

namespace ampc::onnx_conv {

namespace fs = std::filesystem;
using onnx::TensorProto;

std::string OnnxTypeName(int32_t t) {
  if (TensorProto::DataType_IsValid(t)) {
    return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(t));
  }
  return "type number " + std::to_string(t);
}

namespace {

// Copies integer-typed repeated fields into little-endian element bytes of width `size`.
template <typename Field>
std::vector<uint8_t> PackInts(const Field& f, int size) {
  std::vector<uint8_t> out(static_cast<size_t>(f.size()) * size);
  for (int i = 0; i < f.size(); ++i) {
    const int64_t v = f.Get(i);
    std::memcpy(out.data() + static_cast<size_t>(i) * size, &v, size);  // little-endian host
  }
  return out;
}

// `expected`: the bytes the tensor's dims and type declare; nothing more is read or allocated.
StatusOr<std::vector<uint8_t>> ReadExternal(const TensorProto& p, const std::string& model_dir,
                                            const std::string& what, int64_t expected) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    auto parse = [&](int64_t* out) -> Status {
      try {
        size_t used = 0;
        *out = std::stoll(kv.value(), &used);
        if (used != kv.value().size() || *out < 0) throw std::invalid_argument("");
      } catch (...) {
        return InvalidArgument(what + ": external data " + kv.key() + " '" + kv.value() +
                               "' is not a non-negative integer");
      }
      return Status::Ok();
    };
    if (kv.key() == "location")
      location = kv.value();
    else if (kv.key() == "offset")
      RETURN_IF_ERROR(parse(&offset));
    else if (kv.key() == "length")
      RETURN_IF_ERROR(parse(&length));
  }
  if (location.empty()) return InvalidArgument(what + ": external data without a location");
  if (model_dir.empty()) {
    return InvalidArgument(what + ": external data '" + location +
                           "' cannot be resolved for a model read from memory");
  }
  // The data file must lie inside the model's folder: no absolute paths, no '..' escapes, no
  // symlinks leading out (checked on the canonical path).
  const fs::path rel(location);
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::path(model_dir), ec);
  const fs::path full = fs::weakly_canonical(fs::path(model_dir) / rel, ec);
  auto inside = [&] {
    auto b = base.begin(), f = full.begin();
    for (; b != base.end(); ++b, ++f) {
      if (f == full.end() || *b != *f) return false;
    }
    return f != full.end();
  };
  if (rel.is_absolute() || ec || !inside()) {
    return InvalidArgument(what + ": external data path '" + location +
                           "' escapes the model's folder");
  }
  std::ifstream in(full, std::ios::binary);
  if (!in) return NotFound(what + ": external data file '" + location + "' not found");
  in.seekg(0, std::ios::end);
  const int64_t file_size = in.tellg();
  if (offset > file_size) {
    return InvalidArgument(what + ": external data '" + location + "' starts at byte " +
                           std::to_string(offset) + " but the file has " +
                           std::to_string(file_size));
  }
  if (length < 0) length = file_size - offset;
  if (length > file_size - offset) {  // (offset + length could overflow)
    return InvalidArgument(what + ": external data '" + location + "' wants " +
                           std::to_string(length) + " bytes from byte " + std::to_string(offset) +
                           " but the file has " + std::to_string(file_size));
  }
  if (length != expected) {
    return InvalidArgument(what + ": external data '" + location + "' holds " +
                           std::to_string(length) + " bytes but its shape and type need " +
                           std::to_string(expected));
  }
  std::vector<uint8_t> bytes(length);
  in.seekg(offset);
  in.read(reinterpret_cast<char*>(bytes.data()), length);
  if (!in) return Internal(what + ": reading external data '" + location + "' failed");
  return bytes;
}

}  // namespace

StatusOr<Tensor> TensorFromProto(const TensorProto& p, const std::string& model_dir,
                                 const std::string& what) {
  auto dt = DTypeFromOnnxNumber(p.data_type());
  if (!dt) {
    return Unimplemented(what + " has unsupported element type " + OnnxTypeName(p.data_type()));
  }
  std::vector<int64_t> dims;
  int64_t n = 1;
  for (int64_t d : p.dims()) {
    if (d < 0) return InvalidArgument(what + " has negative dimension " + std::to_string(d));
    if (d > kMaxDim || (d != 0 && n > kMaxElements / d)) {
      return InvalidArgument(what + " has an absurdly large shape (dimension " + std::to_string(d) +
                             ")");
    }
    n *= d;
    dims.push_back(d);
  }
  const int size = DTypeSize(*dt);
  RETURN_IF_ERROR(CheckTensorBytes(n * size, what));
  std::vector<uint8_t> bytes;
  if (p.data_location() == TensorProto::EXTERNAL) {
    ASSIGN_OR_RETURN(bytes, ReadExternal(p, model_dir, what, n * size));
  } else if (p.has_raw_data()) {
    bytes.assign(p.raw_data().begin(), p.raw_data().end());
  } else {
    switch (*dt) {
      case DType::kFloat32: {
        bytes.resize(static_cast<size_t>(p.float_data_size()) * 4);
        if (!bytes.empty()) std::memcpy(bytes.data(), p.float_data().data(), bytes.size());
        break;
      }
      case DType::kFloat64: {
        bytes.resize(static_cast<size_t>(p.double_data_size()) * 8);
        if (!bytes.empty()) std::memcpy(bytes.data(), p.double_data().data(), bytes.size());
        break;
      }
      case DType::kInt64:
        bytes = PackInts(p.int64_data(), 8);
        break;
      default:
        bytes = PackInts(p.int32_data(), size);
        break;  // i32 i8 u8 bool f16 bf16
    }
  }
  const int64_t have = static_cast<int64_t>(bytes.size());
  if (have != n * size) {
    return InvalidArgument(
        what + " has " + std::to_string(have / size) + " elements of data but its shape " +
        TensorType(*dt, {dims.begin(), dims.end()}).ToString() + " needs " + std::to_string(n));
  }
  return Tensor(*dt, std::move(dims), std::move(bytes));
}

void TensorToProto(const Tensor& t, TensorProto* p) {
  p->set_data_type(DTypeToOnnxNumber(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  p->set_raw_data(std::string(t.bytes().begin(), t.bytes().end()));
}

StatusOr<TensorType> TypeFromProto(const onnx::TypeProto& p, const std::string& what) {
  if (p.value_case() == onnx::TypeProto::VALUE_NOT_SET) return TensorType();
  if (!p.has_tensor_type()) {
    return Unimplemented(what +
                         " is not a tensor (sequences, maps and optionals are not supported)");
  }
  const auto& tt = p.tensor_type();
  TensorType out;
  if (tt.has_elem_type() && tt.elem_type() != TensorProto::UNDEFINED) {
    auto dt = DTypeFromOnnxNumber(tt.elem_type());
    if (!dt) {
      return Unimplemented(what + " has unsupported element type " + OnnxTypeName(tt.elem_type()));
    }
    out.dtype = *dt;
  }
  if (!tt.has_shape()) return out;
  out.has_rank = true;
  int i = 0;
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value()) {
      const int64_t v = d.dim_value();
      if (v < 0) {
        return InvalidArgument(what + " has negative dimension " + std::to_string(v) + " at axis " +
                               std::to_string(i));
      }
      if (v > kMaxDim) {
        return InvalidArgument(what + " has absurdly large dimension " + std::to_string(v) +
                               " at axis " + std::to_string(i) + " (limit 2^40)");
      }
      out.dims.emplace_back(v);
    } else if (d.has_dim_param() && !d.dim_param().empty()) {
      out.dims.push_back(Dim::Symbol(d.dim_param()));
    } else {
      out.dims.emplace_back();
    }
    ++i;
  }
  return out;
}

void TypeToProto(const TensorType& t, onnx::TypeProto* p) {
  auto* tt = p->mutable_tensor_type();
  tt->set_elem_type(DTypeToOnnxNumber(t.dtype));
  if (!t.has_rank) return;
  auto* shape = tt->mutable_shape();
  for (const Dim& d : t.dims) {
    auto* pd = shape->add_dim();
    if (d.is_static())
      pd->set_dim_value(d.value());
    else if (d.is_symbolic())
      pd->set_dim_param(d.symbol());
  }
}

}  // namespace ampc::onnx_conv
