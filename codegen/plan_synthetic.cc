// Synthetic data (codegen/plan.h: SynthesizeData, MaterializeFills, VerifyDataFills): the
// plan's DataFills, checked, made again at load, and chosen by the compiler.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "codegen/plan.h"
#include "ir/float16.h"

namespace ampc {
namespace {

int64_t RoundUp(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
void FillRepeat(uint8_t* at, int64_t n, uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));  // little-endian: the low bytes
  std::fill(reinterpret_cast<T*>(at), reinterpret_cast<T*>(at) + n, v);
}

}  // namespace

// The plan's DataFills (plan.h): known kinds and dtypes, inside [stored_data_bytes, data_bytes),
// whole elements, no two overlapping.
Status VerifyDataFills(const plan::PlanProto& p) {
  const int64_t data = p.data_bytes(), stored = p.stored_data_bytes();
  if (p.data_fills().empty()) {
    if (stored != 0) return InvalidArgument("plan: stored_data_bytes without data fills");
    return Status::Ok();
  }
  if (stored < 0 || stored > data) {
    return InvalidArgument("plan: stored_data_bytes " + std::to_string(stored) + " outside its " +
                           std::to_string(data) + "-byte data section");
  }
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (int i = 0; i < p.data_fills_size(); ++i) {
    const plan::DataFill& f = p.data_fills(i);
    const std::string what = "plan data fill " + std::to_string(i) + " ('" + f.name() + "')";
    auto dt = DTypeFromName(f.dtype());
    if (!dt || *dt == DType::kUndefined)
      return InvalidArgument(what + ": unknown dtype '" + f.dtype() + "'");
    const int64_t es = DTypeSize(*dt);
    if (f.offset() < stored || f.bytes() < 0 || f.offset() > data - f.bytes() ||
        f.offset() % es != 0 || f.bytes() % es != 0) {
      return InvalidArgument(what + ": [" + std::to_string(f.offset()) + ", +" +
                             std::to_string(f.bytes()) + ") is not whole " + f.dtype() +
                             " elements between the stored data's end (" + std::to_string(stored) +
                             ") and the data section's (" + std::to_string(data) + ")");
    }
    switch (f.kind()) {
      case plan::DataFill::ZEROS:
        break;
      case plan::DataFill::REPEAT:
        if (es < 8 && (f.bits() >> (8 * es)) != 0)
          return InvalidArgument(what + ": its bit pattern is wider than " + f.dtype());
        break;
      case plan::DataFill::UNIFORM:
        if (!IsFloat(*dt) || !std::isfinite(f.low()) || !std::isfinite(f.high()) ||
            f.low() > f.high()) {
          return InvalidArgument(what +
                                 ": a uniform fill needs a float dtype and finite low <= high");
        }
        break;
      default:
        return InvalidArgument(what + ": unknown kind " + std::to_string(f.kind()));
    }
    spans.emplace_back(f.offset(), f.bytes());
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i - 1].first + spans[i - 1].second > spans[i].first)
      return InvalidArgument("plan: data fills overlap at byte " + std::to_string(spans[i].first));
  }
  return Status::Ok();
}

double UniformFillValue(const plan::DataFill& f, int64_t index) {
  const uint64_t r = SplitMix64(f.seed() ^ SplitMix64(static_cast<uint64_t>(index)));
  const double u = static_cast<double>(r >> 11) * 0x1.0p-53;  // [0, 1)
  return f.low() + (f.high() - f.low()) * u;
}

void MaterializeFills(const plan::PlanProto& p, PlanData& data) {
  for (const plan::DataFill& f : p.data_fills()) {
    const DType dt = *DTypeFromName(f.dtype());
    const int64_t es = DTypeSize(dt), n = f.bytes() / es;
    uint8_t* at = data.data() + f.offset();
    if (f.kind() == plan::DataFill::ZEROS) {
      std::memset(at, 0, static_cast<size_t>(f.bytes()));
    } else if (f.kind() == plan::DataFill::REPEAT) {
      switch (es) {
        case 1:
          FillRepeat<uint8_t>(at, n, f.bits());
          break;
        case 2:
          FillRepeat<uint16_t>(at, n, f.bits());
          break;
        case 4:
          FillRepeat<uint32_t>(at, n, f.bits());
          break;
        default:
          FillRepeat<uint64_t>(at, n, f.bits());
          break;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const double v = UniformFillValue(f, i);
        // Rounding to nearest keeps v in [low, high]: both bounds are values of the dtype.
        if (dt == DType::kFloat64) {
          std::memcpy(at + i * 8, &v, 8);
        } else if (dt == DType::kFloat32) {
          const float x = static_cast<float>(v);
          std::memcpy(at + i * 4, &x, 4);
        } else {
          const float x = static_cast<float>(v);
          const uint16_t h = dt == DType::kFloat16 ? FloatToHalfBits(x) : FloatToBFloat16Bits(x);
          std::memcpy(at + i * 2, &h, 2);
        }
      }
    }
  }
  // An optimizer's half copy (Buffer.half_copy_of) is its parameter rounded, not a fill of its own.
  // This runs before VerifyPlan: anything out of place is skipped here and reported there.
  auto inside = [&](const plan::Buffer& b) {
    return b.kind() != plan::Buffer::ARENA && b.data_offset() >= 0 && b.size_bytes() >= 0 &&
           b.data_offset() <= data.size() && b.size_bytes() <= data.size() - b.data_offset();
  };
  for (const plan::Buffer& b : p.buffers()) {
    if (b.half_copy_of() <= 0 || b.half_copy_of() > p.buffers_size()) continue;
    const plan::Buffer& src = p.buffers(b.half_copy_of() - 1);
    const bool f16 = b.dtype() == DTypeName(DType::kFloat16);
    const int64_t n = b.size_bytes() / 2;
    if (!inside(b) || !inside(src) || src.dtype() != DTypeName(DType::kFloat32) ||
        src.size_bytes() / 4 != n) {
      continue;
    }
    const uint8_t* from = data.data() + src.data_offset();
    uint8_t* to = data.data() + b.data_offset();
    for (int64_t i = 0; i < n; ++i) {
      float x;
      std::memcpy(&x, from + i * 4, 4);
      const uint16_t h = f16 ? FloatToHalfBits(x) : FloatToBFloat16Bits(x);
      std::memcpy(to + i * 2, &h, 2);
    }
  }
}

namespace {

double ElementAsDouble(const uint8_t* at, DType dt) {
  switch (dt) {
    case DType::kFloat64: {
      double v;
      std::memcpy(&v, at, 8);
      return v;
    }
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, at, 4);
      return v;
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, at, 2);
      return HalfBitsToFloat(v);
    }
    default: {
      uint16_t v;
      std::memcpy(&v, at, 2);
      return BFloat16BitsToFloat(v);
    }
  }
}

}  // namespace

Status SynthesizeData(Plan& p, const SyntheticDataOptions& options) {
  if (!p.data) return Status::Ok();
  if (!p.proto.data_fills().empty()) return InvalidArgument("the plan's data is synthetic already");
  // Every CONSTANT/STATE range of the step and its evaluation pass, by data offset.
  struct Range {
    int64_t bytes = 0;
    DType dtype = DType::kUndefined;
    std::string name;
    int64_t new_offset = -1;
  };
  std::map<int64_t, Range> ranges;
  std::vector<plan::PlanProto*> protos{&p.proto};
  if (p.proto.has_training() && p.proto.training().has_eval())
    protos.push_back(p.proto.mutable_training()->mutable_eval());
  for (plan::PlanProto* proto : protos) {
    for (const plan::Buffer& b : proto->buffers()) {
      if (b.kind() == plan::Buffer::ARENA) continue;
      const DType dt = *DTypeFromName(b.dtype());
      auto [it, fresh] = ranges.try_emplace(b.data_offset(), Range{b.size_bytes(), dt, b.name()});
      if (!fresh && (it->second.bytes != b.size_bytes() || it->second.dtype != dt)) {
        return InvalidArgument("plan buffers '" + it->second.name + "' and '" + b.name() +
                               "' share data at " + std::to_string(b.data_offset()) +
                               " with different types");
      }
    }
  }
  int64_t end = 0;
  for (const auto& [offset, r] : ranges) {
    if (offset < end)
      return InvalidArgument("plan buffer '" + r.name + "' overlaps another's data");
    end = offset + r.bytes;
  }
  const int64_t align = std::max<int64_t>(p.proto.alignment(), kPlanAlignment);
  const uint8_t* old = p.data->data();
  std::vector<plan::DataFill> fills;
  std::vector<std::pair<int64_t, Range*>> stored;
  for (auto& [offset, r] : ranges) {
    const int64_t es = DTypeSize(r.dtype), n = r.bytes / es;
    const uint8_t* at = old + offset;
    plan::DataFill f;
    f.set_bytes(r.bytes);
    f.set_dtype(std::string(DTypeName(r.dtype)));
    f.set_name(r.name);
    // Period es: every element has the first one's bytes.
    const bool repeat = n > 0 && std::memcmp(at, at + es, static_cast<size_t>(r.bytes - es)) == 0;
    if (repeat) {
      uint64_t bits = 0;
      std::memcpy(&bits, at, static_cast<size_t>(es));
      f.set_kind(bits == 0 ? plan::DataFill::ZEROS : plan::DataFill::REPEAT);
      f.set_bits(bits);
    } else if (options.replace_weights && IsFloat(r.dtype) && n >= options.min_elements) {
      double lo = INFINITY, hi = -INFINITY;
      for (int64_t i = 0; i < n; ++i) {
        const double v = ElementAsDouble(at + i * es, r.dtype);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      if (!std::isfinite(lo) || !std::isfinite(hi)) {  // NaN or inf: keep the bytes
        stored.emplace_back(offset, &r);
        continue;
      }
      f.set_kind(plan::DataFill::UNIFORM);
      f.set_low(lo);
      f.set_high(hi);
      f.set_seed(SplitMix64(options.seed ^ std::hash<std::string>{}(r.name)));
    } else {
      stored.emplace_back(offset, &r);
      continue;
    }
    f.set_offset(offset);  // the old offset until the layout below
    fills.push_back(std::move(f));
  }
  // The stored ranges first, in their order, then the fills.
  int64_t at = 0;
  for (auto& [offset, r] : stored) {
    r->new_offset = RoundUp(at, align);
    at = r->new_offset + r->bytes;
  }
  const int64_t stored_bytes = at;
  for (plan::DataFill& f : fills) {
    Range& r = ranges.at(f.offset());
    r.new_offset = RoundUp(at, align);
    at = r.new_offset + r.bytes;
    f.set_offset(r.new_offset);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<PlanData> data, PlanData::Allocate(at));
  for (const auto& [offset, r] : stored) {
    std::memcpy(data->data() + r->new_offset, old + offset, static_cast<size_t>(r->bytes));
  }
  for (plan::PlanProto* proto : protos) {
    for (plan::Buffer& b : *proto->mutable_buffers()) {
      if (b.kind() != plan::Buffer::ARENA) b.set_data_offset(ranges.at(b.data_offset()).new_offset);
    }
    proto->set_data_bytes(at);
  }
  p.proto.set_stored_data_bytes(stored_bytes);
  for (plan::DataFill& f : fills) *p.proto.add_data_fills() = std::move(f);
  RETURN_IF_ERROR(VerifyDataFills(p.proto));
  MaterializeFills(p.proto, *data);
  p.data = std::move(data);
  return Status::Ok();
}

}  // namespace ampc
