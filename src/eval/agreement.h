// Evaluation of one model against another on the same inputs (e.g. a quantized file against its original).
#pragma once
#include <cstdint>
#include <vector>

#include "model/paligemma.h"

namespace pg {

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

// `pixels`: one preprocessed image [3, S, S] per image placeholder group, concatenated; `ids`: the prompt
// with its image placeholders; `steps` next-token distributions are compared (the first after the prompt).
Agreement teacher_forced_agreement(const PaliGemmaModel& reference, const PaliGemmaModel& candidate,
                                   const std::vector<float>& pixels, const std::vector<int32_t>& ids,
                                   int64_t steps);

}  // namespace pg
