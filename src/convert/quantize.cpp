#include "convert/quantize.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "kernels/quant.h"
#include "loader/checkpoint.h"
#include "core/file.h"
#include "core/thread_count.h"
#include "formats/gguf.h"
#include "paligemma/error.h"

namespace pg {

QuantType parse_quant_type(const std::string& name) {
  if (name == "q8_0") return QuantType::Q8_0;
  if (name == "q4_0") return QuantType::Q4_0;
  throw Error("unknown quantization type \"" + name + "\" (use q8_0 or q4_0)");
}
namespace {

GgmlType ggml_type_of(DType t) {
  switch (t) {
    case DType::F32: return GgmlType::F32;
    case DType::F16: return GgmlType::F16;
    case DType::BF16: return GgmlType::BF16;
  }
  return GgmlType::F32;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Rows converted to float32 and quantized in parallel, this many at a time.
constexpr int64_t kRowsPerPiece = 256;

}  // namespace

bool quantizes_tensor(const std::string& name, const std::vector<int64_t>& shape) {
  return shape.size() == 2 && shape[1] % kQuantBlock == 0 && ends_with(name, ".weight") &&
         name.find("position_embedding") == std::string::npos;
}

QuantizeSummary quantize_checkpoint(const std::string& model_dir, QuantType type, const std::string& output_path) {
  if (!std::filesystem::is_directory(model_dir))
    throw Error("quantize reads a hub model directory; " + model_dir + " is not one");
  const Checkpoint checkpoint(model_dir);
  // Every weight the model needs must have the shape config.json gives it, as loading the output will
  // require: a file that does not load is refused here rather than written.
  bind_weights(checkpoint.config(), checkpoint.lookup());
  GgufWriter writer;
  writer.add_string("general.architecture", "paligemma");
  writer.add_string("general.name", std::filesystem::path(model_dir).filename().string());
  // ggml's llama_ftype: 7 = mostly Q8_0, 2 = mostly Q4_0.
  writer.add_u32("general.file_type", type == QuantType::Q8_0 ? 7 : 2);
  writer.add_u32("general.quantization_version", 2);
  writer.add_string("paligemma.quantization", quant_type_name(type));
  writer.add_string(kGgufConfigKey, read_regular_file((std::filesystem::path(model_dir) / "config.json").string(), "model config"));
  writer.add_bytes(kGgufTokenizerKey, read_regular_file(checkpoint.tokenizer_path(), "tokenizer"));
  // The model's own mask decoder, so that the quantized file still segments.
  const std::filesystem::path vae = std::filesystem::path(model_dir) / "vae.npz";
  std::error_code ec;
  const bool carries_vae = std::filesystem::is_regular_file(vae, ec);
  if (carries_vae) writer.add_bytes(kGgufVaeKey, read_regular_file(vae.string(), "mask decoder"));

  QuantizeSummary summary;
  summary.carries_vae = carries_vae;
  for (const auto& [name, t] : checkpoint.tensors()) {
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < t.shape.size(); ++d) rows *= t.shape[d];
    if (!quantizes_tensor(name, t.shape)) {
      ++summary.kept_tensors;
      if (t.shape.size() == 2 && ends_with(name, ".weight") && name.find("position_embedding") == std::string::npos)
        summary.kept_matrices.push_back(name);
      const size_t bytes = size_t(rows * cols) * dtype_size(t.dtype);
      const void* data = t.data;
      writer.add_tensor(name, ggml_type_of(t.dtype), t.shape.empty() ? std::vector<int64_t>{1} : t.shape,
                        [data, bytes](const GgufWriter::Sink& sink) { sink(data, bytes); });
      continue;
    }
    ++summary.quantized_tensors;
    const StoredTensor stored = t;
    writer.add_tensor(name, type == QuantType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0, t.shape,
                      [stored, rows, cols, type](const GgufWriter::Sink& sink) {
                        const size_t row_bytes = size_t(cols / kQuantBlock) * quant_block_bytes(type);
                        const size_t in_row_bytes = size_t(cols) * dtype_size(stored.dtype);
                        std::vector<uint8_t> piece(size_t(kRowsPerPiece) * row_bytes);
                        for (int64_t r0 = 0; r0 < rows; r0 += kRowsPerPiece) {
                          const int64_t count = std::min(kRowsPerPiece, rows - r0);
                          std::string failure;
// An exception must not leave the parallel region (that ends the process): each thread records it.
#pragma omp parallel
                          {
                            std::vector<float> row;
                            try {
                              row.resize(static_cast<size_t>(cols));
                            } catch (const std::bad_alloc&) {
#pragma omp critical
                              failure = "out of memory for a row of " + std::to_string(cols) + " values";
                            }
#pragma omp for schedule(static)
                            for (int64_t r = 0; r < count; ++r) {
                              if (row.empty()) continue;
                              to_f32(static_cast<const uint8_t*>(stored.data) + size_t(r0 + r) * in_row_bytes,
                                     stored.dtype, row.data(), size_t(cols));
                              try {
                                quantize_row(row.data(), cols, type, piece.data() + size_t(r) * row_bytes);
                              } catch (const Error& e) {
#pragma omp critical
                                failure = "row " + std::to_string(r0 + r) + ": " + e.what();
                              }
                            }
                          }
                          if (!failure.empty()) throw Error(failure);
                          sink(piece.data(), size_t(count) * row_bytes);
                        }
                      });
  }
  writer.write(output_path);
  summary.file_bytes = std::filesystem::file_size(output_path);
  return summary;
}

QuantizeSummary quantize_model(const std::string& model_dir, const std::string& type, const std::string& output_path,
                               int threads) {
  const QuantType quant_type = parse_quant_type(type);
  const ScopedThreadCount thread_count(threads);
  return quantize_checkpoint(model_dir, quant_type, output_path);
}

}  // namespace pg
