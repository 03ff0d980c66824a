// GGUF (version 3; version 2 is read too), the single-file container of ggml/llama.cpp: a header, typed
// metadata key/value pairs, tensor descriptions, then the tensor data at aligned offsets. The reader
// memory-maps the file and hands out views; the writer streams tensor data to disk. docs/quantization.md
// lists the keys and tensor types paligemma writes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace pg {

// ggml's type ids (ggml.h enum ggml_type) of the tensor types paligemma reads and writes.
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, BF16 = 30 };

const char* ggml_type_name(GgmlType t);
// Bytes of a row of `cols` elements (cols a multiple of 32 for the block types).
size_t ggml_row_bytes(GgmlType t, int64_t cols);

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (GGUF stores the dimensions innermost first)
  const void* data = nullptr;
  size_t bytes = 0;
};

class GgufFile {
 public:
  // Maps and checks the whole layout (magic, version, every length, type and offset within the file);
  // throws pg::Error naming the file and what is wrong.
  explicit GgufFile(const std::string& path, FileResidency residency = FileResidency::Mapped);

  const std::string& path() const { return file_->path(); }
  const MappedFile& mapped() const { return *file_; }
  const std::map<std::string, GgufTensor>& tensors() const { return tensors_; }

  // A metadata string / uint8 array / unsigned integer; throws pg::Error naming the file if the key is
  // missing or holds another type.
  std::string_view string(const std::string& key) const;
  std::string_view bytes(const std::string& key) const;
  uint64_t unsigned_integer(const std::string& key) const;
  bool has(const std::string& key) const { return values_.count(key) != 0; }

 private:
  struct Value {
    uint32_t type;
    std::string_view raw;  // the value's bytes (string / array contents without their length prefix)
    uint64_t integer = 0;
  };
  const Value& value(const std::string& key, uint32_t type, const char* what) const;

  std::unique_ptr<MappedFile> file_;
  std::map<std::string, Value> values_;
  std::map<std::string, GgufTensor> tensors_;
};

// Writes a GGUF file: metadata and tensor descriptions first, then each tensor's data from its producer,
// which hands the bytes to `sink` in as many pieces as it likes (they must add up to the tensor's size).
// The file appears under `path` only when complete (written to path + ".part", then renamed).
class GgufWriter {
 public:
  using Sink = std::function<void(const void* data, size_t bytes)>;
  using Producer = std::function<void(const Sink& sink)>;

  void add_string(const std::string& key, std::string_view value);
  void add_bytes(const std::string& key, std::string_view bytes);  // an array of uint8
  void add_u32(const std::string& key, uint32_t value);
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, Producer producer);
  void write(const std::string& path) const;  // throws pg::Error naming the file

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    size_t bytes;
    Producer producer;
  };
  std::string metadata_;  // encoded key/value pairs
  uint64_t metadata_count_ = 0;
  std::vector<PendingTensor> tensors_;
};

}  // namespace pg
