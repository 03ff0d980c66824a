// `paligemma quantize`: a hub checkpoint -> one GGUF file with block-quantized linear weights
// (docs/quantization.md), loadable with --model FILE.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/quant.h"

namespace pg {

struct QuantizeSummary {
  int64_t quantized_tensors = 0;
  int64_t kept_tensors = 0;                  // stored in their original precision
  std::vector<std::string> kept_matrices;    // linear weights left unquantized (rows not a multiple of 32)
  uint64_t file_bytes = 0;
  bool carries_vae = false;                  // the directory's vae.npz went into the file
};

// Whether the tensor `canonical_name` of `shape` is block-quantized: every 2-D linear weight and the
// token embeddings (the tied output projection) whose rows are whole blocks; norms, biases, the vision
// position embeddings and the patch-embedding convolution keep their precision.
bool quantizes_tensor(const std::string& canonical_name, const std::vector<int64_t>& shape);

// Reads the hub model directory `model_dir` (f32, bf16 or f16) and writes `output_path`; throws pg::Error
// naming the input or output that is wrong.
QuantizeSummary quantize_checkpoint(const std::string& model_dir, QuantType type, const std::string& output_path);

// How closely a candidate model (e.g. quantized) follows a reference one: both read the same image and
// prompt, then the reference's greedy tokens are fed to both (teacher forcing), and at every step the two
// next-token distributions are compared.
struct AgreementStep {
  int32_t reference_token = 0;   // the reference's argmax (fed to both models next)
  int32_t candidate_token = 0;   // the candidate's argmax
  double kl = 0;                 // KL(reference || candidate) in nats, over softmax(logits)
  double reference_margin = 0;   // the reference's largest logit minus its second largest
};
struct Agreement {
  std::vector<AgreementStep> steps;
  double top1() const;     // share of steps whose argmax agrees
  double mean_kl() const;
  double max_kl() const;
};

class PaliGemmaModel;

// `pixels`: one preprocessed image [3, S, S] per image placeholder group, concatenated; `ids`: the prompt
// with its image placeholders; `steps` next-token distributions are compared (the first after the prompt).
Agreement teacher_forced_agreement(const PaliGemmaModel& reference, const PaliGemmaModel& candidate,
                                   const std::vector<float>& pixels, const std::vector<int32_t>& ids,
                                   int64_t steps);

}  // namespace pg
