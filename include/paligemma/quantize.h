// Quantization of a hub checkpoint into one GGUF file with 8- or 4-bit block-quantized linear weights
// (docs/quantization.md), loadable with Engine::load(file) like a model directory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

struct QuantizeSummary {
  int64_t quantized_tensors = 0;
  int64_t kept_tensors = 0;                  // stored in their original precision
  std::vector<std::string> kept_matrices;    // linear weights left unquantized (rows not a multiple of 32)
  uint64_t file_bytes = 0;
  bool carries_vae = false;                  // the directory's vae.npz went into the file
};

// Reads the hub model directory `model_dir` (f32, bf16 or f16) and writes `output_path` with the weights in
// `type` ("q8_0" or "q4_0"), on `threads` OpenMP threads of the calling thread (0: OpenMP's default). Throws
// pg::Error for another type and naming the input or output that is wrong.
QuantizeSummary quantize_model(const std::string& model_dir, const std::string& type, const std::string& output_path,
                               int threads = 0);

}  // namespace pg
