#include "paligemma/batch.h"

#include <utility>

#include "generate/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace pg {

struct Batch::Impl {
  const Engine& engine;
  Scheduler scheduler;
  Impl(const Engine& e, const BatchOptions& options)
      : engine(e),
        scheduler(
            e.model(), [&e](const ImageRGB8& image) { return e.image_features(image); }, options.max_queue,
            options.max_batch, e.threads()) {}
};

Batch::Batch(const Engine& engine, const BatchOptions& options) : impl_(std::make_unique<Impl>(engine, options)) {}
Batch::~Batch() = default;

bool Batch::submit(const GenerateRequest& request, BatchCallbacks callbacks) {
  const Engine& engine = impl_->engine;
  if (request.images.empty()) throw Error("PaliGemma needs at least one image");
  if (request.max_tokens < 0) throw Error("max_tokens must not be negative");
  const ModelInfo info = engine.info();
  check_decoding_options(request, info.vocab_rows);
  auto job = std::make_shared<ServingJob>();
  for (const ImageRGB8& image : request.images) {
    if (image.width <= 0 || image.height <= 0 || image.pixels.size() != size_t(image.width) * image.height * 3)
      throw Error("an input image is empty or inconsistent (" + std::to_string(image.width) + "x" +
                  std::to_string(image.height) + ")");
    job->images.push_back(engine.model_input(image));
  }
  std::vector<int32_t> prompt_tokens = engine.prompt_ids(request.images.size(), request.prompt);
  const int64_t room = info.context_length - int64_t(prompt_tokens.size());
  if (room < 1)
    throw Error("the prompt (" + std::to_string(prompt_tokens.size()) + " tokens with its images) leaves no room "
                "for a new token in the model's " + std::to_string(info.context_length) + " positions");
  job->prompt_ids = prompt_tokens;
  job->eos_ids = {engine.tokenizer().eos_id()};
  static_cast<DecodingOptions&>(job->options) = request;
  job->options.context_room = room;
  job->options.cancelled = request.cancelled;
  if (!request.stop.empty())
    job->options.stop_check = [&engine, stops = request.stop](const std::vector<int32_t>& tokens) {
      return stop_position(engine.decode(tokens), stops) != std::string::npos;
    };
  job->on_token = std::move(callbacks.on_token);
  job->on_done = [&engine, stops = request.stop, prompt_tokens = std::move(prompt_tokens),
                  on_done = std::move(callbacks.on_done)](const ServingOutcome& outcome) {
    GenerateResult r;
    r.prompt_tokens = prompt_tokens;
    r.tokens = outcome.tokens;
    r.text = engine.decode(r.tokens);
    r.text = r.text.substr(0, stop_position(r.text, stops));
    r.finish_reason = outcome.finish;
    r.score = outcome.score;
    const ServingTimings& t = outcome.timings;
    r.timings.queued_s = t.queued_s;
    r.timings.vision_s = t.vision_s;
    r.timings.prefill_s = t.prefill_s;
    r.timings.ttft_s = t.queued_s + t.vision_s + t.prefill_s;
    r.timings.decode_s = t.decode_s;
    r.timings.decode_tokens_per_s = r.tokens.size() > 1 && t.decode_s > 0 ? double(r.tokens.size() - 1) / t.decode_s : 0;
    r.timings.total_s = r.timings.ttft_s + t.decode_s;
    if (on_done) on_done(std::move(r), outcome.error);
  };
  return impl_->scheduler.submit(std::move(job));
}

BatchStats Batch::stats() const {
  const Scheduler& s = impl_->scheduler;
  const Scheduler::WorkTotals work = s.work_totals();
  return BatchStats{s.queued(), s.running(), s.finished(), s.cancelled(), work.prefill_s, work.decode_s,
                    work.decode_tokens};
}

}  // namespace pg
