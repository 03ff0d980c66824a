#include "formats/gguf.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "paligemma/error.h"

namespace pg {
namespace {

// GGUF metadata value types (gguf.h enum gguf_type).
enum : uint32_t {
  kUint8 = 0, kInt8, kUint16, kInt16, kUint32, kInt32, kFloat32, kBool, kString, kArray, kUint64, kInt64, kFloat64
};
constexpr uint32_t kDefaultAlignment = 32;

size_t scalar_size(uint32_t type) {
  switch (type) {
    case kUint8: case kInt8: case kBool: return 1;
    case kUint16: case kInt16: return 2;
    case kUint32: case kInt32: case kFloat32: return 4;
    case kUint64: case kInt64: case kFloat64: return 8;
    default: return 0;
  }
}

bool known_ggml_type(uint32_t t) {
  return t == uint32_t(GgmlType::F32) || t == uint32_t(GgmlType::F16) || t == uint32_t(GgmlType::BF16) ||
         t == uint32_t(GgmlType::Q8_0) || t == uint32_t(GgmlType::Q4_0);
}

bool is_block_type(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0; }

// Bounds-checked reading of the file's header; every failure names the file.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("model file " + path_ + " is not a valid GGUF file: " + what +
                " (truncated or corrupt; re-create it with paligemma quantize)");
  }
  const uint8_t* take(uint64_t n, const char* what) {
    if (n > size_ - pos_) fail(std::string("it ends inside ") + what);
    const uint8_t* p = data_ + pos_;
    pos_ += size_t(n);
    return p;
  }
  template <class T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }
  std::string_view string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    return {reinterpret_cast<const char*>(take(n, what)), size_t(n)};
  }
  size_t pos() const { return pos_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

void append_raw(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <class T>
void append(std::string& out, T v) {
  append_raw(out, &v, sizeof(T));
}
void append_string(std::string& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  out.append(s);
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::BF16: return "BF16";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q4_0: return "Q4_0";
  }
  return "?";
}

size_t ggml_row_bytes(GgmlType t, int64_t cols) {
  switch (t) {
    case GgmlType::F32: return size_t(cols) * 4;
    case GgmlType::F16:
    case GgmlType::BF16: return size_t(cols) * 2;
    case GgmlType::Q8_0: return size_t(cols / 32) * 34;
    case GgmlType::Q4_0: return size_t(cols / 32) * 18;
  }
  return 0;
}

GgufFile::GgufFile(const std::string& path, FileResidency residency)
    : file_(std::make_unique<MappedFile>(path, residency)) {
  Cursor c(file_->data(), file_->size(), path);
  if (file_->size() < 4 || std::memcmp(file_->data(), "GGUF", 4) != 0)
    throw Error("model file " + path + " is not a GGUF file (it does not start with \"GGUF\"); pass a model "
                "directory or a file written by paligemma quantize");
  c.take(4, "the magic");
  const uint32_t version = c.read<uint32_t>("the version");
  if (version != 2 && version != 3)
    throw Error("model file " + path + " is GGUF version " + std::to_string(version) +
                "; paligemma reads versions 2 and 3");
  const uint64_t tensor_count = c.read<uint64_t>("the tensor count");
  const uint64_t kv_count = c.read<uint64_t>("the metadata count");
  // Each entry takes at least 8 bytes of the file: counts beyond that are corrupt, not large.
  if (tensor_count > c.size() / 8 || kv_count > c.size() / 8) c.fail("impossible tensor or metadata counts");

  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string key(c.string("a metadata key"));
    Value v;
    v.type = c.read<uint32_t>("a metadata type");
    if (v.type == kString) {
      v.raw = c.string("a metadata string");
    } else if (v.type == kArray) {
      const uint32_t element = c.read<uint32_t>("an array type");
      const uint64_t n = c.read<uint64_t>("an array length");
      if (element == kString) {
        const size_t begin = c.pos();
        for (uint64_t j = 0; j < n; ++j) c.string("an array of strings");
        v.raw = {reinterpret_cast<const char*>(file_->data() + begin), c.pos() - begin};
      } else {
        const size_t size = scalar_size(element);
        if (size == 0) c.fail("metadata " + key + " is an array of unsupported type " + std::to_string(element));
        if (n > c.size() / size) c.fail("metadata " + key + " has an impossible array length");
        v.raw = {reinterpret_cast<const char*>(c.take(n * size, "an array")), size_t(n * size)};
      }
      v.integer = element;  // arrays remember their element type here
    } else {
      const size_t size = scalar_size(v.type);
      if (size == 0) c.fail("metadata " + key + " has unknown type " + std::to_string(v.type));
      const uint8_t* p = c.take(size, "a metadata value");
      v.raw = {reinterpret_cast<const char*>(p), size};
      if (v.type == kUint8 || v.type == kUint16 || v.type == kUint32 || v.type == kUint64)
        std::memcpy(&v.integer, p, size);  // little-endian
    }
    if (!values_.emplace(key, v).second) c.fail("metadata key " + key + " appears twice");
  }

  uint64_t alignment = kDefaultAlignment;
  if (has("general.alignment")) {
    alignment = unsigned_integer("general.alignment");
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 65536)
      c.fail("general.alignment " + std::to_string(alignment) + " is not a power of two");
  }

  struct Info {
    GgufTensor tensor;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    Info info;
    GgufTensor& t = info.tensor;
    t.name = std::string(c.string("a tensor name"));
    const uint32_t dims = c.read<uint32_t>("a tensor's dimension count");
    if (dims == 0 || dims > 4) c.fail("tensor " + t.name + " has " + std::to_string(dims) + " dimensions");
    t.shape.resize(dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < dims; ++d) {
      const uint64_t n = c.read<uint64_t>("a tensor's dimensions");
      if (n == 0 || n > (uint64_t{1} << 40) || elements > (uint64_t{1} << 48) / n)
        c.fail("tensor " + t.name + " has an impossible dimension " + std::to_string(n));
      elements *= n;
      t.shape[dims - 1 - d] = int64_t(n);  // GGUF lists the innermost dimension first
    }
    const uint32_t type = c.read<uint32_t>("a tensor type");
    if (!known_ggml_type(type))
      throw Error("model file " + path + ": tensor " + t.name + " has ggml type " + std::to_string(type) +
                  ", which paligemma does not read (F32, F16, BF16, Q8_0, Q4_0)");
    t.type = GgmlType(type);
    const int64_t cols = t.shape.back();
    if (is_block_type(t.type) && cols % 32 != 0)
      c.fail("tensor " + t.name + " is " + ggml_type_name(t.type) + " with rows of " + std::to_string(cols) +
             " values, not a multiple of the 32-value block");
    t.bytes = ggml_row_bytes(t.type, cols) * size_t(elements / uint64_t(cols));
    info.offset = c.read<uint64_t>("a tensor offset");
    if (info.offset % alignment != 0) c.fail("tensor " + t.name + "'s data is not aligned");
    infos.push_back(std::move(info));
  }
  const size_t data_start = align_up(c.pos(), size_t(alignment));
  for (Info& info : infos) {
    GgufTensor& t = info.tensor;
    if (data_start > file_->size() || info.offset > file_->size() - data_start ||
        t.bytes > file_->size() - data_start - info.offset)
      c.fail("tensor " + t.name + "'s data (" + std::to_string(t.bytes) + " bytes) lies beyond the end of the file");
    t.data = file_->data() + data_start + info.offset;
    const std::string name = t.name;
    if (!tensors_.emplace(name, std::move(t)).second) c.fail("tensor " + name + " appears twice");
  }
}

const GgufFile::Value& GgufFile::value(const std::string& key, uint32_t type, const char* what) const {
  auto it = values_.find(key);
  if (it == values_.end())
    throw Error("model file " + path() + " has no metadata " + key + " (is it a paligemma quantize file?)");
  const Value& v = it->second;
  const bool integer =
      type == kUint64 && (v.type == kUint8 || v.type == kUint16 || v.type == kUint32 || v.type == kUint64);
  const bool byte_array = type == kArray && v.type == kArray && (v.integer == kUint8 || v.integer == kInt8);
  if (!(v.type == type && type == kString) && !integer && !byte_array)
    throw Error("model file " + path() + ": metadata " + key + " is not " + what);
  return v;
}

std::string_view GgufFile::string(const std::string& key) const { return value(key, kString, "a string").raw; }
std::string_view GgufFile::bytes(const std::string& key) const { return value(key, kArray, "a byte array").raw; }
uint64_t GgufFile::unsigned_integer(const std::string& key) const {
  return value(key, kUint64, "an unsigned integer").integer;
}

void GgufWriter::add_string(const std::string& key, std::string_view value) {
  append_string(metadata_, key);
  append<uint32_t>(metadata_, kString);
  append_string(metadata_, value);
  ++metadata_count_;
}

void GgufWriter::add_bytes(const std::string& key, std::string_view bytes) {
  append_string(metadata_, key);
  append<uint32_t>(metadata_, kArray);
  append<uint32_t>(metadata_, kUint8);
  append_string(metadata_, bytes);  // same layout: a uint64 count, then the elements
  ++metadata_count_;
}

void GgufWriter::add_u32(const std::string& key, uint32_t value) {
  append_string(metadata_, key);
  append<uint32_t>(metadata_, kUint32);
  append<uint32_t>(metadata_, value);
  ++metadata_count_;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                            Producer producer) {
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
  tensors_.push_back({name, type, shape, ggml_row_bytes(type, shape.back()) * size_t(rows), std::move(producer)});
}

void GgufWriter::write(const std::string& path) const {
  std::string header;
  append_raw(header, "GGUF", 4);
  append<uint32_t>(header, 3);
  append<uint64_t>(header, tensors_.size());
  append<uint64_t>(header, metadata_count_ + 1);
  header += metadata_;
  append_string(header, "general.alignment");
  append<uint32_t>(header, kUint32);
  append<uint32_t>(header, kDefaultAlignment);
  size_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    append_string(header, t.name);
    append<uint32_t>(header, uint32_t(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) append<uint64_t>(header, uint64_t(t.shape[d]));
    append<uint32_t>(header, uint32_t(t.type));
    append<uint64_t>(header, offset);
    offset = align_up(offset + t.bytes, kDefaultAlignment);
  }
  header.resize(align_up(header.size(), kDefaultAlignment), '\0');

  const std::string part = path + ".part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot create " + part + " (is the folder writable?)");
  auto fail = [&](const std::string& what) {
    out.close();
    std::filesystem::remove(part);
    throw Error("cannot write " + path + ": " + what);
  };
  out.write(header.data(), std::streamsize(header.size()));
  static const char zeros[kDefaultAlignment] = {};
  for (const PendingTensor& t : tensors_) {
    size_t written = 0;
    try {
      t.producer([&](const void* data, size_t bytes) {
        out.write(static_cast<const char*>(data), std::streamsize(bytes));
        written += bytes;
      });
    } catch (const Error& e) {
      fail("tensor " + t.name + ": " + e.what());
    }
    if (written != t.bytes)
      fail("tensor " + t.name + " produced " + std::to_string(written) + " bytes, expected " + std::to_string(t.bytes));
    out.write(zeros, std::streamsize(align_up(t.bytes, kDefaultAlignment) - t.bytes));
    if (!out) fail("the disk is full or the file cannot be written");
  }
  out.close();
  if (!out) fail("the disk is full or the file cannot be written");
  std::error_code ec;
  std::filesystem::rename(part, path, ec);
  if (ec) fail(ec.message());
}

}  // namespace pg
