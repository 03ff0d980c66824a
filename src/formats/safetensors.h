// Reader for safetensors checkpoints (one file, or shards listed in model.safetensors.index.json).
// Tensors are memory-mapped (or, on request, copied into memory once) and handed out as views.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"
#include "core/mapped_file.h"
#include "core/dtype.h"

namespace pg {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::string file;  // which file it lives in (for error messages)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

class SafetensorsCollection {
 public:
  // Opens a checkpoint directory: model.safetensors.index.json if present (every shard it names must
  // exist and hold the tensors it claims), else every *.safetensors file in the directory.
  static SafetensorsCollection open_directory(const std::string& dir,
                                              FileResidency residency = FileResidency::Mapped);
  // Opens the given files (they must not define a tensor twice).
  static SafetensorsCollection open_files(const std::vector<std::string>& paths,
                                          FileResidency residency = FileResidency::Mapped);

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // prefault_mapped_files over every file: empty, or the note saying why it was skipped.
  std::string prefault() const;

 private:
  void add_file(const std::string& path, FileResidency residency);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace pg
