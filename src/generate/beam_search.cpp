#include "generate/beam_search.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include "generate/step_clock.h"

namespace pg {

namespace {

// One generated token of a hypothesis; hypotheses share their common beginnings.
struct Node {
  int32_t token;
  std::shared_ptr<const Node> parent;                // null for the first generated token
  std::shared_ptr<const std::vector<float>> logits;  // the logits it was chosen from, when keep_logits
};

std::vector<int32_t> tokens_of(const Node* node) {
  std::vector<int32_t> out;
  for (; node; node = node->parent.get()) out.push_back(node->token);
  std::reverse(out.begin(), out.end());
  return out;
}

struct RunningBeam {
  std::shared_ptr<const Node> last;  // null before the first token
  float score = 0;                   // sum of log-probabilities so far
  KVCache cache;
  std::vector<float> hidden;  // final-norm hidden state of the last position
};

struct Candidate {
  float score;
  size_t beam;
  int32_t token;
};

struct Continuation {
  std::shared_ptr<const Node> last;
  float score;
  size_t parent;  // index of the running beam it extends
};

struct Finished {
  std::shared_ptr<const Node> last;
  float score;  // sum_logprobs / length^length_penalty
  FinishReason reason;
};

// The `count` best continuations over all beams, best first; equal scores rank by beam, then token (the
// order of the flattened [beam, vocab] index transformers' topk runs over).
std::vector<Candidate> top_continuations(const std::vector<std::vector<float>>& accumulated, size_t count) {
  std::vector<Candidate> all;
  for (size_t b = 0; b < accumulated.size(); ++b) {
    const std::vector<float>& s = accumulated[b];
    std::vector<int32_t> ids(s.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
    const size_t keep = std::min(count, ids.size());
    std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(),
                      [&](int32_t a, int32_t c) { return s[a] != s[c] ? s[a] > s[c] : a < c; });
    for (size_t i = 0; i < keep; ++i) all.push_back({s[ids[i]], b, ids[i]});
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& c) { return a.score > c.score; });
  all.resize(std::min(all.size(), count));
  return all;
}

}  // namespace

Generation beam_search(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                       const std::vector<int32_t>& eos_ids, const DecodeOptions& options) {
  Generation g;
  const FinishRules rules(options, eos_ids);
  const int64_t limit = rules.token_limit();
  if (limit == 0) {
    g.finish = rules.limit_reason();
    return g;
  }
  const size_t K = size_t(options.beams);
  const size_t keep_count = std::max<size_t>(2, 1 + (options.ignore_eos ? 0 : eos_ids.size())) * K;
  auto length_norm = [&](int64_t length) { return float(std::pow(double(length), options.length_penalty)); };

  StepClock clock;
  std::vector<RunningBeam> running(
      1, RunningBeam{nullptr, 0.f, KVCache(model.config().text, prefix_len + limit), {}});
  running[0].hidden = model.forward(running[0].cache, prefix_rows.data(), prefix_len);
  std::vector<Finished> finished;  // best first, at most K

  for (int64_t step = 0; step < limit; ++step) {
    const int64_t length = step + 1;  // tokens in every continuation of this step
    // All running beams in one pass over the output projection.
    std::vector<std::vector<float>> hidden;
    for (const RunningBeam& b : running) hidden.push_back(b.hidden);
    const std::vector<float> all_logits = model.logits_batch(hidden);
    const size_t vocab = all_logits.size() / running.size();
    std::vector<std::shared_ptr<const std::vector<float>>> logits(running.size());
    std::vector<std::vector<float>> accumulated(running.size());
    for (size_t b = 0; b < running.size(); ++b) {
      logits[b] = std::make_shared<const std::vector<float>>(all_logits.begin() + long(b * vocab),
                                                             all_logits.begin() + long((b + 1) * vocab));
      accumulated[b] = log_softmax(*logits[b]);
      for (float& v : accumulated[b]) v += running[b].score;
    }
    clock.step_done(g);
    g.steps = length;

    const std::vector<Candidate> candidates = top_continuations(accumulated, keep_count);
    std::vector<Continuation> next;  // the next running beams, best first
    bool all_ended = true;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const Candidate& c = candidates[i];
      auto node = std::make_shared<const Node>(
          Node{c.token, running[c.beam].last, options.keep_logits ? logits[c.beam] : nullptr});
      const std::optional<FinishReason> reason = rules.after(c.token, length, [&] { return tokens_of(node.get()); });
      if (reason) {
        if (i < K) finished.push_back({node, c.score / length_norm(length), *reason});
      } else {
        all_ended = false;
        if (next.size() < K) next.push_back({std::move(node), c.score, c.beam});
      }
    }
    // Earlier entries first among equal scores: transformers' topk over [finished, new] keeps the old ones.
    std::stable_sort(finished.begin(), finished.end(),
                     [](const Finished& a, const Finished& b) { return a.score > b.score; });
    if (finished.size() > K) finished.resize(K);

    if (all_ended || next.empty()) break;
    if (finished.size() == K && next[0].score / length_norm(length) <= finished.back().score) break;
    if (rules.cancelled()) {
      // The best hypothesis so far: the best running one, as if it ended here.
      finished.insert(finished.begin(), {next[0].last, next[0].score / length_norm(length), FinishReason::Cancelled});
      break;
    }

    // Each new beam continues its parent's cache: moved to its last successor, copied to the others.
    std::vector<size_t> successors(running.size(), 0);
    for (const Continuation& c : next) ++successors[c.parent];
    std::vector<RunningBeam> continued;
    std::vector<float> rows;
    for (Continuation& c : next) {
      KVCache& parent_cache = running[c.parent].cache;
      continued.push_back(RunningBeam{
          std::move(c.last), c.score, --successors[c.parent] == 0 ? std::move(parent_cache) : parent_cache, {}});
      const std::vector<float> row = model.embed_token(continued.back().last->token);
      rows.insert(rows.end(), row.begin(), row.end());
    }
    // One decoding step for all beams together: the weights are read once.
    std::vector<KVCache*> caches;
    for (RunningBeam& b : continued) caches.push_back(&b.cache);
    std::vector<std::vector<float>> next_hidden = model.forward_batch(caches, rows.data());
    for (size_t j = 0; j < continued.size(); ++j) continued[j].hidden = std::move(next_hidden[j]);
    running = std::move(continued);
  }

  if (!finished.empty()) {
    const Finished& best = finished.front();
    g.tokens = tokens_of(best.last.get());
    g.score = best.score;
    g.finish = best.reason;
    if (options.keep_logits)
      for (const Node* n = best.last.get(); n; n = n->parent.get()) g.logits.insert(g.logits.begin(), *n->logits);
  }
  clock.finish(g);
  return g;
}

}  // namespace pg
