// .npz = a zip archive of .npy files. This reads the central directory (including zip64 size
// fields, which numpy writes), each member stored or deflated, and checks every CRC.
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "ir/file_io.h"
#include "ir/limits.h"
#include "runtime/data/datasets.h"
#include "runtime/npy.h"

namespace ampc {
namespace {

uint64_t Le(const std::string& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

// Inflates into a buffer that grows with what the stream really produces, up to the member's
// declared size: a few bytes declaring gigabytes allocate nothing until the data is there.
StatusOr<std::string> Inflate(const std::string& in, uint64_t out_size, const std::string& what) {
  RETURN_IF_ERROR(CheckTensorBytes(static_cast<int64_t>(std::min<uint64_t>(out_size, INT64_MAX)),
                                   what + ": its uncompressed size"));
  std::string out;
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return Internal(what + ": zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT32_MAX));
  int rc = Z_OK;
  while (rc == Z_OK && out.size() < out_size) {
    const size_t have = out.size();
    out.resize(std::min<uint64_t>(out_size, std::max<uint64_t>(have * 2, 1 << 16)));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + have);
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - have, UINT32_MAX));
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(out.size() - zs.avail_out);
  }
  if (rc == Z_OK && out.size() == out_size) {  // all declared bytes made: the stream must end
    char extra;
    zs.next_out = reinterpret_cast<Bytef*>(&extra);
    zs.avail_out = 1;
    rc = inflate(&zs, Z_FINISH);
    if (zs.avail_out == 0) rc = Z_DATA_ERROR;  // more data than declared
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out.size() != out_size)
    return InvalidArgument(what + ": corrupt deflate data");
  return out;
}

}  // namespace

StatusOr<std::map<std::string, Tensor>> ReadNpz(const std::string& path) {
  ASSIGN_OR_RETURN(std::string b, ReadFile(path));
  auto bad = [&](const std::string& m) {
    return InvalidArgument(path + ": not a valid .npz file: " + m);
  };
  if (b.size() < 22) return bad("too short for a zip archive");
  // End of central directory: the last 0x06054b50 within the final 64 KiB + 22 bytes.
  size_t eocd = std::string::npos;
  const size_t lo = b.size() > 65557 ? b.size() - 65557 : 0;
  for (size_t i = b.size() - 22 + 1; i-- > lo;) {
    if (Le(b, i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) return bad("no zip end-of-directory record");
  const uint64_t count = Le(b, eocd + 10, 2);
  uint64_t at = Le(b, eocd + 16, 4);
  if (count == 0xffff || at == 0xffffffff)
    return Unimplemented(path + ": zip64 archives with that many members");
  std::map<std::string, Tensor> out;
  int64_t total = 0;
  for (uint64_t k = 0; k < count; ++k) {
    if (at + 46 > b.size() || Le(b, at, 4) != 0x02014b50) return bad("broken central directory");
    const uint64_t method = Le(b, at + 10, 2), crc = Le(b, at + 16, 4);
    uint64_t csize = Le(b, at + 20, 4), usize = Le(b, at + 24, 4);
    const uint64_t name_len = Le(b, at + 28, 2), extra_len = Le(b, at + 30, 2),
                   comment_len = Le(b, at + 32, 2);
    uint64_t local = Le(b, at + 42, 4);
    if (at + 46 + name_len + extra_len > b.size()) return bad("broken central directory");
    const std::string name = b.substr(at + 46, name_len);
    // zip64 extended information: the 8-byte fields present are those whose 4-byte field is full.
    for (uint64_t e = at + 46 + name_len; e + 4 <= at + 46 + name_len + extra_len;) {
      const uint64_t id = Le(b, e, 2), len = Le(b, e + 2, 2);
      if (id == 0x0001) {
        uint64_t f = e + 4;
        auto take = [&](uint64_t& v) {
          if (v == 0xffffffff && f + 8 <= e + 4 + len) {
            v = Le(b, f, 8);
            f += 8;
          }
        };
        take(usize);
        take(csize);
        take(local);
      }
      e += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    const std::string what = path + ": member '" + name + "'";
    if (local > b.size() || b.size() - local < 30 || Le(b, local, 4) != 0x04034b50)
      return bad("broken local header of '" + name + "'");
    const uint64_t data = local + 30 + Le(b, local + 26, 2) + Le(b, local + 28, 2);
    if (data > b.size() || csize > b.size() - data)
      return bad("member '" + name + "' runs past the end");
    std::string raw = b.substr(data, csize), content;
    if (method == 0) {
      if (csize != usize) return bad("stored member '" + name + "' has two sizes");
      content = std::move(raw);
    } else if (method == 8) {
      ASSIGN_OR_RETURN(content, Inflate(raw, usize, what));
    } else {
      return Unimplemented(what + ": zip compression method " + std::to_string(method));
    }
    if (crc32(0L, reinterpret_cast<const Bytef*>(content.data()),
              static_cast<uInt>(content.size())) != crc) {
      return InvalidArgument(what + ": CRC mismatch (corrupt archive)");
    }
    std::string key = name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    ASSIGN_OR_RETURN(Tensor t, ParseNpy(content, what));
    total += static_cast<int64_t>(t.bytes().size());
    RETURN_IF_ERROR(CheckTensorBytes(total, path + ": its arrays"));
    out[key] = std::move(t);
  }
  return out;
}

}  // namespace ampc
