#include "ir/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "ir/file_io.h"

namespace ampc {
namespace {

const char* EncodeDType(DType t) {
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

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and copied as is");

// The reference implementation refuses headers over 100 MB; so do we, before parsing.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::optional<DType> DTypeFromSafetensors(const std::string& s) {
  if (s == "F32") return DType::kFloat32;
  if (s == "F16") return DType::kFloat16;
  if (s == "BF16") return DType::kBFloat16;
  if (s == "F64") return DType::kFloat64;
  if (s == "I64") return DType::kInt64;
  if (s == "I32") return DType::kInt32;
  if (s == "I8") return DType::kInt8;
  if (s == "U8") return DType::kUInt8;
  if (s == "BOOL") return DType::kBool;
  return std::nullopt;
}

// A JSON number that is a non-negative integer (not a float, not negative).
bool AsCount(const nlohmann::json& j, uint64_t* out) {
  if (!j.is_number_unsigned()) return false;
  *out = j.get<uint64_t>();
  return true;
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> dims;
  uint64_t begin, end;
};

}  // namespace

StatusOr<SafetensorsFile> ParseSafetensors(std::string_view bytes, const std::string& name) {
  auto bad = [&](const std::string& what) {
    return InvalidArgument(name + ": not a valid safetensors file: " + what);
  };
  if (bytes.size() < 8) return bad("shorter than its 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kMaxHeaderBytes || n > bytes.size() - 8) {
    return bad("header length " + std::to_string(n) + " exceeds the file (" +
               std::to_string(bytes.size()) + " bytes)");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, n));
  } catch (const nlohmann::json::exception& e) {
    return bad("the header is not JSON (" + std::string(e.what()) + ")");
  }
  if (!header.is_object()) return bad("the header is not a JSON object");
  const std::string_view data = bytes.substr(8 + n);
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [key, v] : header.items()) {
    if (key == "__metadata__") {
      if (!v.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [mk, mv] : v.items()) {
        if (!mv.is_string()) return bad("__metadata__ '" + mk + "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      return bad(where + " lacks dtype, shape or data_offsets");
    }
    if (!v["dtype"].is_string()) return bad(where + ": dtype is not a string");
    const std::string ds = v["dtype"].get<std::string>();
    const std::optional<DType> dtype = DTypeFromSafetensors(ds);
    if (!dtype) {
      return InvalidArgument(name + ": " + where + " has dtype " + ds +
                             ", which ampc does not read (F32, F16, BF16, F64, I64, I32, I8, U8, "
                             "BOOL)");
    }
    const nlohmann::json& shape = v["shape"];
    const nlohmann::json& off = v["data_offsets"];
    if (!shape.is_array()) return bad(where + ": shape is not an array");
    Entry e{key, *dtype, {}, 0, 0};
    uint64_t elements = 1;
    for (const auto& d : shape) {
      uint64_t x = 0;
      if (!AsCount(d, &x) || x > static_cast<uint64_t>(INT64_MAX)) {
        return bad(where + ": shape holds " + d.dump() + ", not a size");
      }
      // Overflow of the element count (then of the byte count) would let a tiny file claim a
      // huge tensor.
      if (x != 0 && elements > UINT64_MAX / x) return bad(where + ": shape overflows");
      elements *= x;
      e.dims.push_back(static_cast<int64_t>(x));
    }
    if (!off.is_array() || off.size() != 2 || !AsCount(off[0], &e.begin) ||
        !AsCount(off[1], &e.end) || e.begin > e.end) {
      return bad(where + ": data_offsets " + off.dump() + " is not [begin, end] with begin <= end");
    }
    if (e.end > data.size()) {
      return bad(where + ": data_offsets end " + std::to_string(e.end) + " is past the data (" +
                 std::to_string(data.size()) + " bytes)");
    }
    const uint64_t size = static_cast<uint64_t>(DTypeSize(*dtype));
    if (elements > UINT64_MAX / size || elements * size != e.end - e.begin) {
      return bad(where + ": " + std::to_string(e.end - e.begin) + " bytes for shape " +
                 shape.dump() + " of " + ds);
    }
    entries.push_back(std::move(e));
  }
  // The tensors tile the data section exactly: no overlap (two names, one buffer) and no gap.
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  for (const Entry* e : order) {
    if (e->begin != at) {
      return bad("tensor '" + e->name + "' starts at " + std::to_string(e->begin) +
                 (e->begin < at ? ", inside the previous tensor" : ", leaving a gap") +
                 " (expected " + std::to_string(at) + ")");
    }
    at = e->end;
  }
  if (at != data.size()) {
    return bad("the tensors cover " + std::to_string(at) + " of " + std::to_string(data.size()) +
               " data bytes");
  }
  for (const Entry& e : entries) {
    std::vector<uint8_t> b(data.begin() + static_cast<ptrdiff_t>(e.begin),
                           data.begin() + static_cast<ptrdiff_t>(e.end));
    out.tensors.emplace(e.name, Tensor(e.dtype, e.dims, std::move(b)));
  }
  return out;
}

StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseSafetensors(bytes, path);
}

StatusOr<std::string> EncodeSafetensors(const SafetensorsFile& f) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : f.tensors) {
    const char* dt = EncodeDType(t.dtype());
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

}  // namespace ampc
