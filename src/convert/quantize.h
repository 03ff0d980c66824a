// `paligemma quantize`: a hub checkpoint -> one GGUF file with block-quantized linear weights
// (docs/quantization.md), loadable with --model FILE.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "paligemma/quantize.h"

namespace pg {

// "q8_0" / "q4_0"; throws pg::Error naming the accepted types for anything else.
QuantType parse_quant_type(const std::string& name);

// Whether the tensor `canonical_name` of `shape` is block-quantized: every 2-D linear weight and the
// token embeddings (the tied output projection) whose rows are whole blocks; norms, biases, the vision
// position embeddings and the patch-embedding convolution keep their precision.
bool quantizes_tensor(const std::string& canonical_name, const std::vector<int64_t>& shape);

// Reads the hub model directory `model_dir` (f32, bf16 or f16) and writes `output_path`; throws pg::Error
// naming the input or output that is wrong.
QuantizeSummary quantize_checkpoint(const std::string& model_dir, QuantType type, const std::string& output_path);

}  // namespace pg
