// Beam search with the semantics of transformers' GenerationMixin._beam_search (transformers/generation/utils.py,
// 5.x), without sampling, for one sequence:
// - each step, every running beam's logits go through log_softmax (float32) and are added to the beam's score;
//   the best C = max(2, 1 + number of eos ids) * K continuations over all beams are kept (_get_top_k_continuations);
// - a continuation ends when its token is an eos id, it reaches max_tokens, or stop_check says so; of the C, only
//   those ranked among the first K may enter the finished set, scored sum_logprobs / length^length_penalty with
//   length = generated tokens including the last one (_update_finished_beams); the finished set keeps the K best;
// - the K best continuations that did not end become the next running beams, each with its own KV cache copied
//   (moved where it has one successor) from its parent's (_get_running_beams_for_next_iteration, reorder_cache);
// - the search stops once every continuation ends, or, with K finished hypotheses, when the best running score
//   / (current length)^length_penalty is no better than the worst finished one (_check_early_stop_heuristic with
//   early_stopping=False);
// - the result is the best finished hypothesis (num_return_sequences=1) and its score.
// The prefix is computed once; transformers' K identical copies of it at step 0 (all but one scored -1e9)
// are the single prefix beam here.
#pragma once
#include "generate/generator.h"

namespace pg {

Generation beam_search(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                       const std::vector<int32_t>& eos_ids, const DecodeOptions& options);

}  // namespace pg
