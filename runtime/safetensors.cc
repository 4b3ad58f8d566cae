#include "runtime/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "ir/file_io.h"

namespace ampc {
namespace {

const char* SafetensorsDType(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat16:
      return "F16";
    case DType::kBFloat16:
      return "BF16";
    case DType::kFloat64:
      return "F64";
    case DType::kInt64:
      return "I64";
    case DType::kInt32:
      return "I32";
    case DType::kInt8:
      return "I8";
    case DType::kUInt8:
      return "U8";
    case DType::kBool:
      return "BOOL";
    case DType::kUndefined:
      break;
  }
  return nullptr;
}

std::optional<DType> DTypeOfSafetensors(const std::string& s) {
  for (DType t : kAllDTypes) {
    const char* n = SafetensorsDType(t);
    if (n && s == n) return t;
  }
  return std::nullopt;
}

}  // namespace

StatusOr<std::string> EncodeSafetensors(const SafetensorsFile& f) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : f.tensors) {
    const char* dt = SafetensorsDType(t.dtype());
    if (!dt) return InvalidArgument("tensor '" + name + "' has a type safetensors cannot hold");
    const uint64_t n = t.bytes().size();
    header[name] = {{"dtype", dt}, {"shape", t.dims()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  if (!f.metadata.empty()) header["__metadata__"] = f.metadata;
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  out += json;
  out.reserve(out.size() + offset);
  for (const auto& [name, t] : f.tensors) {
    out.append(reinterpret_cast<const char*>(t.bytes().data()), t.bytes().size());
  }
  return out;
}

Status WriteSafetensors(const std::string& path, const SafetensorsFile& f) {
  ASSIGN_OR_RETURN(std::string bytes, EncodeSafetensors(f));
  return WriteFileAtomically(path, bytes);
}

StatusOr<SafetensorsFile> DecodeSafetensors(const std::string& bytes, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument(path + ": not a valid safetensors file: " + why);
  };
  if (bytes.size() < 8) return bad("shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8 || n > (uint64_t{100} << 20))
    return bad("its header length is too large");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(n));
  } catch (const nlohmann::json::exception&) {
    return bad("its header is not JSON");
  }
  if (!header.is_object()) return bad("its header is not a JSON object");
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;
  SafetensorsFile f;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) return bad("metadata '" + k + "' is not a string");
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string what = "tensor '" + name + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets") || !v["dtype"].is_string() || !v["shape"].is_array() ||
        !v["data_offsets"].is_array() || v["data_offsets"].size() != 2) {
      return bad(what + " needs dtype, shape and data_offsets");
    }
    auto dt = DTypeOfSafetensors(v["dtype"].get<std::string>());
    if (!dt)
      return bad(what + " has dtype " + v["dtype"].get<std::string>() + ", which ampc lacks");
    std::vector<int64_t> dims;
    int64_t elements = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(kMaxDim)) {
        return bad(what + " has a bad dimension");
      }
      const auto dim = static_cast<int64_t>(d.get<uint64_t>());
      if (dim > 0 && elements > kMaxElements / dim) return bad(what + " is too large");
      elements *= dim;
      dims.push_back(dim);
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return bad(what + " has bad data_offsets");
    }
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) return bad(what + " lies outside the file");
    if (end - begin != static_cast<uint64_t>(elements) * DTypeSize(*dt)) {
      return bad(what + "'s byte size does not match its shape");
    }
    ranges.emplace_back(begin, end);
    f.tensors.emplace(name, Tensor(*dt, dims, std::vector<uint8_t>(data + begin, data + end)));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return bad("two tensors overlap");
  }
  return f;
}

StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return DecodeSafetensors(bytes, path);
}

}  // namespace ampc
