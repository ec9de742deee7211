#include "common/gguf_file.h"

#include <cstring>
#include <map>

#include "common/error.h"
#include "common/json_text.h"
#include "common/mapped_file.h"

namespace tallrec {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxTensors = 1 << 20, kMaxKeys = 1 << 16, kMaxDims = 4;

// ggml_type -> (elements per block, bytes per block), for the layout check of every tensor.
const std::map<uint32_t, std::pair<uint64_t, uint64_t>>& block_sizes() {
  static const std::map<uint32_t, std::pair<uint64_t, uint64_t>> sizes = {
      {0, {1, 4}},      {1, {1, 2}},      {2, {32, 18}},    {3, {32, 20}},    {6, {32, 22}},
      {7, {32, 24}},    {8, {32, 34}},    {9, {32, 40}},    {10, {256, 84}},  {11, {256, 110}},
      {12, {256, 144}}, {13, {256, 176}}, {14, {256, 210}}, {15, {256, 292}}, {30, {1, 2}}};
  return sizes;
}

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4):
// 12 bytes hold 8 scales and 8 mins, the high bits of the last four in the first eight bytes.
std::pair<uint8_t, uint8_t> k_scale_min(int j, const uint8_t* q) {
  if (j < 4) return {uint8_t(q[j] & 63), uint8_t(q[j + 4] & 63)};
  return {uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)),
          uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4))};
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// A cursor over the mapped bytes that refuses to read past the end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& origin)
      : data_(data), size_(size), origin_(origin) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + at_), size_t(n));
    at_ += size_t(n);
    return s;
  }
  void need(uint64_t n, const char* what) const {
    if (n > size_ - at_)
      throw InputError(origin_ + ": truncated GGUF (" + what + " at byte " + std::to_string(at_) +
                       " runs past the end of the file)");
  }
  size_t at() const { return at_; }
  size_t left() const { return size_ - at_; }

 private:
  const uint8_t* data_;
  size_t size_, at_ = 0;
  const std::string& origin_;
};

json read_value(Reader& r, uint32_t type, const std::string& key, const std::string& origin,
                bool in_array) {
  switch (type) {
    case 0:
      return r.get<uint8_t>("a value");
    case 1:
      return r.get<int8_t>("a value");
    case 2:
      return r.get<uint16_t>("a value");
    case 3:
      return r.get<int16_t>("a value");
    case 4:
      return r.get<uint32_t>("a value");
    case 5:
      return r.get<int32_t>("a value");
    case 6:
      return double(r.get<float>("a value"));
    case 7:
      return r.get<uint8_t>("a value") != 0;
    case 8:
      return printable_utf8(r.string("a string"));
    case 10:
      return r.get<uint64_t>("a value");
    case 11:
      return r.get<int64_t>("a value");
    case 12:
      return r.get<double>("a value");
    case 9: {
      if (in_array)
        throw InputError(origin + ": key \"" + key + "\": nested arrays are not supported");
      const uint32_t item = r.get<uint32_t>("an array type");
      const uint64_t n = r.get<uint64_t>("an array length");
      // Every item takes at least one byte: a count beyond the bytes left is a lie, refused
      // before anything is allocated for it.
      if (n > r.left())
        throw InputError(origin + ": key \"" + key + "\": array of " + std::to_string(n) +
                         " items in " + std::to_string(r.left()) + " bytes");
      json a = json::array();
      for (uint64_t i = 0; i < n; ++i) a.push_back(read_value(r, item, key, origin, true));
      return a;
    }
    default:
      throw InputError(origin + ": key \"" + key + "\": unknown value type " +
                       std::to_string(type));
  }
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  static const std::map<uint32_t, const char*> names = {
      {0, "F32"},   {1, "F16"},   {2, "Q4_0"},  {3, "Q4_1"},  {6, "Q5_0"},
      {7, "Q5_1"},  {8, "Q8_0"},  {9, "Q8_1"},  {10, "Q2_K"}, {11, "Q3_K"},
      {12, "Q4_K"}, {13, "Q5_K"}, {14, "Q6_K"}, {15, "Q8_K"}, {30, "BF16"}};
  auto it = names.find(type);
  return it == names.end() ? "type " + std::to_string(type) : it->second;
}

GgufFile::GgufFile(const std::filesystem::path& path)
    : origin_(path.string()), file_(std::make_unique<MappedFile>(path)) {
  Reader r(file_->data(), file_->size(), origin_);
  if (file_->size() < 4 || std::memcmp(file_->data(), "GGUF", 4) != 0)
    throw InputError(origin_ + ": not a GGUF file (no GGUF magic)");
  r.get<uint32_t>("the magic");
  const uint32_t version = r.get<uint32_t>("the version");
  if (version != 2 && version != 3)
    throw InputError(origin_ + ": GGUF version " + std::to_string(version) +
                     " is not supported (2 or 3)");
  const uint64_t n_tensors = r.get<uint64_t>("the tensor count");
  const uint64_t n_keys = r.get<uint64_t>("the key count");
  if (n_tensors > kMaxTensors || n_keys > kMaxKeys)
    throw InputError(origin_ + ": " + std::to_string(n_tensors) + " tensors and " +
                     std::to_string(n_keys) + " keys: more than a GGUF model may have");
  metadata_ = json::object();
  for (uint64_t k = 0; k < n_keys; ++k) {
    const std::string key = printable_utf8(r.string("a key"));
    const uint32_t type = r.get<uint32_t>("a value type");
    metadata_[key] = read_value(r, type, key, origin_, false);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = printable_utf8(r.string("a tensor name"));
    const uint32_t n_dims = r.get<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      throw InputError(origin_ + ": tensor \"" + t.name + "\": " + std::to_string(n_dims) +
                       " dimensions (1 to 4)");
    t.elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = r.get<uint64_t>("a tensor dimension");
      if (n == 0 || n > (uint64_t(1) << 32) || uint64_t(t.elements) * n > (uint64_t(1) << 40))
        throw InputError(origin_ + ": tensor \"" + t.name + "\": dimension " + std::to_string(n) +
                         " out of range");
      t.dims.push_back(int64_t(n));
      t.elements *= int64_t(n);
    }
    t.type = r.get<uint32_t>("a tensor type");
    t.offset = r.get<uint64_t>("a tensor offset");
    auto size = block_sizes().find(t.type);
    if (size == block_sizes().end())
      throw InputError(origin_ + ": tensor \"" + t.name + "\": unknown ggml type " +
                       std::to_string(t.type));
    const auto [block, block_bytes] = size->second;
    if (uint64_t(t.dims[0]) % block != 0)
      throw InputError(origin_ + ": tensor \"" + t.name + "\": a row of " +
                       std::to_string(t.dims[0]) + " is not whole blocks of " +
                       ggml_type_name(t.type));
    t.bytes = uint64_t(t.elements) / block * block_bytes;
    tensors_.push_back(std::move(t));
  }
  uint64_t alignment = 32;
  if (metadata_.contains("general.alignment")) {
    const json& a = metadata_["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || a.get<uint64_t>() > 65536 ||
        (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) != 0)
      throw InputError(origin_ + ": general.alignment must be a power of two up to 65536");
    alignment = a.get<uint64_t>();
  }
  const uint64_t data_start = (r.at() + alignment - 1) / alignment * alignment;
  for (auto& t : tensors_) {
    if (t.offset % alignment != 0 || t.offset > file_->size() ||
        data_start > file_->size() - t.offset || t.bytes > file_->size() - data_start - t.offset)
      throw InputError(origin_ + ": tensor \"" + t.name + "\": its " + std::to_string(t.bytes) +
                       " bytes at offset " + std::to_string(t.offset) +
                       " are not inside the file, or not aligned");
    t.offset += data_start;
  }
}

GgufFile::~GgufFile() = default;

const GgufTensor* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<float> GgufFile::dequantize(const GgufTensor& t) const {
  const uint8_t* p = file_->data() + t.offset;
  std::vector<float> out(size_t(t.elements));
  auto f16 = [](const uint8_t* b) {
    uint16_t h;
    std::memcpy(&h, b, 2);
    return half_to_float(h);
  };
  const size_t n = out.size();
  switch (t.type) {
    case 0:  // F32
      std::memcpy(out.data(), p, n * 4);
      break;
    case 1:  // F16
      for (size_t i = 0; i < n; ++i) out[i] = f16(p + 2 * i);
      break;
    case 30:  // BF16: the high half of an fp32
      for (size_t i = 0; i < n; ++i) {
        uint32_t bits = uint32_t(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    case 8:  // Q8_0: d (f16), 32 x int8; x = q * d
      for (size_t b = 0; b < n / 32; ++b) {
        const uint8_t* block = p + b * 34;
        const float d = f16(block);
        for (size_t j = 0; j < 32; ++j)
          out[b * 32 + j] = float(static_cast<int8_t>(block[2 + j])) * d;
      }
      break;
    case 2:  // Q4_0: d (f16), 16 bytes of nibbles (low: 0..15, high: 16..31); x = (q - 8) * d
      for (size_t b = 0; b < n / 32; ++b) {
        const uint8_t* block = p + b * 18;
        const float d = f16(block);
        for (size_t j = 0; j < 16; ++j) {
          out[b * 32 + j] = d * float(int(block[2 + j] & 0x0F) - 8);
          out[b * 32 + j + 16] = d * float(int(block[2 + j] >> 4) - 8);
        }
      }
      break;
    case 3:  // Q4_1: d, m (f16), 16 bytes of nibbles; x = d * q + m
      for (size_t b = 0; b < n / 32; ++b) {
        const uint8_t* block = p + b * 20;
        const float d = f16(block), m = f16(block + 2);
        for (size_t j = 0; j < 16; ++j) {
          out[b * 32 + j] = d * float(block[4 + j] & 0x0F) + m;
          out[b * 32 + j + 16] = d * float(block[4 + j] >> 4) + m;
        }
      }
      break;
    case 12:  // Q4_K: super-blocks of 256 in 8 sub-blocks of 32 with 6-bit scales and mins
      for (size_t b = 0; b < n / 256; ++b) {
        const uint8_t* block = p + b * 144;
        const float d = f16(block), dmin = f16(block + 2);
        const uint8_t *scales = block + 4, *q = block + 16;
        float* y = out.data() + b * 256;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
          const auto [sc1, m1] = k_scale_min(is, scales);
          const auto [sc2, m2] = k_scale_min(is + 1, scales);
          const float d1 = d * float(sc1), min1 = dmin * float(m1);
          const float d2 = d * float(sc2), min2 = dmin * float(m2);
          for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - min1;
          for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - min2;
        }
      }
      break;
    case 13:  // Q5_K: Q4_K plus a fifth bit per value (qh)
      for (size_t b = 0; b < n / 256; ++b) {
        const uint8_t* block = p + b * 176;
        const float d = f16(block), dmin = f16(block + 2);
        const uint8_t *scales = block + 4, *qh = block + 16, *ql = block + 48;
        float* y = out.data() + b * 256;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
          const auto [sc1, m1] = k_scale_min(is, scales);
          const auto [sc2, m2] = k_scale_min(is + 1, scales);
          const float d1 = d * float(sc1), min1 = dmin * float(m1);
          const float d2 = d * float(sc2), min2 = dmin * float(m2);
          for (int l = 0; l < 32; ++l)
            *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - min1;
          for (int l = 0; l < 32; ++l)
            *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - min2;
        }
      }
      break;
    case 14:  // Q6_K: 6-bit values (4 low bits in ql, 2 high in qh), 16 int8 scales, d last
      for (size_t b = 0; b < n / 256; ++b) {
        const uint8_t* block = p + b * 210;
        const float d = f16(block + 208);
        const uint8_t *ql = block, *qh = block + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
        float* y = out.data() + b * 256;
        for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8)
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * float(sc[is]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
          }
      }
      break;
    default:
      throw InputError(origin_ + ": tensor \"" + t.name + "\" is " + ggml_type_name(t.type) +
                       ", which is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, "
                       "Q6_K)");
  }
  return out;
}

}  // namespace tallrec
