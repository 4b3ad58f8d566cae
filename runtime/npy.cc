#include "runtime/npy.h"

#include <charconv>
#include <cstring>

#include "ir/file_io.h"
#include "ir/limits.h"

namespace ampc {
namespace {

// Value of `key` in the header dict, e.g. 'descr': '<f4' -> <f4, 'shape': (2, 3) -> (2, 3).
std::string DictValue(const std::string& header, const std::string& key) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t p = header.find(':', k);
  if (p == std::string::npos) return "";
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) return "";
  if (header[p] == '\'') {
    const size_t e = header.find('\'', p + 1);
    return e == std::string::npos ? "" : header.substr(p + 1, e - p - 1);
  }
  if (header[p] == '(') {
    const size_t e = header.find(')', p);
    return e == std::string::npos ? "" : header.substr(p, e - p + 1);
  }
  const size_t e = header.find_first_of(",}", p);
  return e == std::string::npos ? "" : header.substr(p, e - p);
}

}  // namespace

StatusOr<Tensor> ParseNpy(const std::string& bytes, const std::string& what) {
  auto bad = [&](const std::string& m) {
    return InvalidArgument(what + ": not a valid .npy file: " + m);
  };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
    return bad("no NUMPY magic");
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, start;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    start = 12;
  } else {
    return bad("unsupported format version " + std::to_string(major));
  }
  if (header_len > bytes.size() - start) return bad("truncated header");
  const std::string header = bytes.substr(start, header_len);
  const std::string descr = DictValue(header, "descr");
  if (DictValue(header, "fortran_order") != "False") return bad("only C order is supported");
  DType dt;
  if (descr == "<f4")
    dt = DType::kFloat32;
  else if (descr == "<f8")
    dt = DType::kFloat64;
  else if (descr == "<f2")
    dt = DType::kFloat16;
  else if (descr == "<i8")
    dt = DType::kInt64;
  else if (descr == "<i4")
    dt = DType::kInt32;
  else if (descr == "|i1")
    dt = DType::kInt8;
  else if (descr == "|u1")
    dt = DType::kUInt8;
  else if (descr == "|b1")
    dt = DType::kBool;
  else
    return Unimplemented(what + ": unsupported .npy dtype '" + descr + "'");
  const std::string shape = DictValue(header, "shape");
  if (shape.size() < 2) return bad("no shape");
  std::vector<int64_t> dims;
  int64_t n = 1;
  for (size_t p = 1; p + 1 < shape.size();) {
    while (p + 1 < shape.size() && (shape[p] == ' ' || shape[p] == ',')) ++p;
    if (p + 1 >= shape.size()) break;
    int64_t d = -1;
    auto [end, ec] = std::from_chars(shape.data() + p, shape.data() + shape.size() - 1, d);
    if (ec != std::errc() || d < 0 || d > kMaxDim || (d && n > kMaxElements / d))
      return bad("bad shape " + shape);
    dims.push_back(d);
    n *= d;
    p = end - shape.data();
  }
  const size_t data_start = start + header_len;
  const size_t need = static_cast<size_t>(n) * DTypeSize(dt);
  RETURN_IF_ERROR(CheckTensorBytes(static_cast<int64_t>(need), what));
  if (bytes.size() - data_start != need) {
    return bad("holds " + std::to_string(bytes.size() - data_start) + " data bytes, shape " +
               shape + " needs " + std::to_string(need));
  }
  return Tensor(dt, std::move(dims), std::vector<uint8_t>(bytes.begin() + data_start, bytes.end()));
}

StatusOr<Tensor> ReadNpy(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseNpy(bytes, path);
}

}  // namespace ampc
