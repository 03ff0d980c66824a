#include "eval/agreement.h"

#include <algorithm>
#include <cmath>

#include "generate/sampling.h"
#include "paligemma/error.h"

namespace pg {

double Agreement::top1() const {
  int64_t same = 0;
  for (const AgreementStep& s : steps) same += s.reference_token == s.candidate_token;
  return steps.empty() ? 0.0 : double(same) / double(steps.size());
}

double Agreement::mean_kl() const {
  double sum = 0;
  for (const AgreementStep& s : steps) sum += s.kl;
  return steps.empty() ? 0.0 : sum / double(steps.size());
}

double Agreement::max_kl() const {
  double m = 0;
  for (const AgreementStep& s : steps) m = std::max(m, s.kl);
  return m;
}

namespace {

// log softmax in double.
std::vector<double> log_probabilities(const std::vector<float>& logits) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float z : logits) sum += std::exp(double(z) - mx);
  const double log_sum = mx + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = double(logits[i]) - log_sum;
  return out;
}

double top2_margin(const std::vector<float>& v) {
  float first = -INFINITY, second = -INFINITY;
  for (float z : v) {
    if (z > first) second = first, first = z;
    else if (z > second) second = z;
  }
  return double(first) - double(second);
}

double kl_divergence(const std::vector<float>& reference, const std::vector<float>& candidate) {
  const std::vector<double> p = log_probabilities(reference), q = log_probabilities(candidate);
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
  return std::max(0.0, kl);
}

// One model's state while its inputs are forced.
struct ForcedRun {
  const PaliGemmaModel& model;
  KVCache cache;
  std::vector<float> logits;

  ForcedRun(const PaliGemmaModel& m, const std::vector<float>& pixels, const std::vector<int32_t>& ids, int64_t steps)
      : model(m), cache(m.config().text, int64_t(ids.size()) + steps) {
    const VisionConfig& v = m.config().vision;
    const int64_t image_values = v.channels * v.image_size * v.image_size;
    std::vector<float> image_rows;
    for (size_t at = 0; at + size_t(image_values) <= pixels.size(); at += size_t(image_values)) {
      const std::vector<float> e = m.image_embeddings(pixels.data() + at);
      image_rows.insert(image_rows.end(), e.begin(), e.end());
    }
    const std::vector<float> rows = m.embed_prompt(ids, image_rows);
    logits = m.logits(m.forward(cache, rows.data(), int64_t(ids.size())));
  }
  void feed(int32_t token) {
    const std::vector<float> row = model.embed_token(token);
    logits = model.logits(model.forward(cache, row.data(), 1));
  }
};

}  // namespace

Agreement teacher_forced_agreement(const PaliGemmaModel& reference, const PaliGemmaModel& candidate,
                                   const std::vector<float>& pixels, const std::vector<int32_t>& ids,
                                   int64_t steps) {
  if (reference.config().text.vocab != candidate.config().text.vocab ||
      reference.config().vision.image_size != candidate.config().vision.image_size)
    throw Error("the two models have different vocabularies or image sizes; "
                "compare a model with its own quantized file");
  ForcedRun ref(reference, pixels, ids, steps), cand(candidate, pixels, ids, steps);
  Agreement a;
  for (int64_t s = 0; s < steps; ++s) {
    const int32_t token = argmax(ref.logits);
    a.steps.push_back({token, argmax(cand.logits), kl_divergence(ref.logits, cand.logits), top2_margin(ref.logits)});
    if (s + 1 < steps) {
      ref.feed(token);
      cand.feed(token);
    }
  }
  return a;
}

}  // namespace pg
