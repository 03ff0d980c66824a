#include "generate/scheduler.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "paligemma/error.h"

namespace pg {

namespace {
// 4096 rows: 15 prompts of 224 px, 3 of 448 px, one of 896 px; the MLP's activations then take ~0.5 GB.
constexpr size_t kMaxPrefillRows = 4096;
using Clock = std::chrono::steady_clock;
double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }
const char* const kShuttingDown = "the server is shutting down";
}  // namespace

struct Scheduler::Running {
  std::shared_ptr<ServingJob> job;
  Sequence seq;
  ServingTimings timings;
  double decode_start = 0;
  Running(std::shared_ptr<ServingJob> j, const TextConfig& c)
      : job(std::move(j)), seq(c, int64_t(job->prompt_ids.size()), job->options, job->eos_ids) {}
};

Scheduler::Scheduler(const PaliGemmaModel& model, ImageFeatures image_features, size_t max_queue, size_t max_batch,
                     int threads)
    : model_(model),
      image_features_(std::move(image_features)),
      max_queue_(max_queue),
      max_batch_(std::max<size_t>(1, max_batch)),
      threads_(threads) {
  worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
  for (auto& [job, t] : queue_) job->on_done(ServingOutcome{{}, FinishReason::MaxTokens, 0, {}, kShuttingDown});
}

bool Scheduler::submit(std::shared_ptr<ServingJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.emplace_back(std::move(job), now_s());
  }
  wake_.notify_one();
  return true;
}

size_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void Scheduler::run() {
  // OpenMP's thread count is per thread: the one the engine was loaded with applies here too.
  if (threads_ > 0) omp_set_num_threads(threads_);
  for (;;) {
    std::vector<std::pair<std::shared_ptr<ServingJob>, double>> admitted;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) break;
      // Everything waiting that fits joins now (the running batch keeps decoding between prefills), up to
      // kMaxPrefillRows prompt rows per pass so that the pass's activations stay bounded; a longer prompt
      // goes alone.
      size_t rows = 0;
      while (!queue_.empty() && active_.size() + admitted.size() < max_batch_) {
        const size_t next_rows = queue_.front().first->prompt_ids.size();
        if (!admitted.empty() && rows + next_rows > kMaxPrefillRows) break;
        rows += next_rows;
        admitted.emplace_back(std::move(queue_.front().first), now_s() - queue_.front().second);
        queue_.pop_front();
      }
    }
    if (!admitted.empty()) {
      const double t0 = now_s();
      start(std::move(admitted));
      add_work(now_s() - t0, 0, 0);
    }
    if (!active_.empty()) {
      const double t0 = now_s();
      const size_t tokens = active_.size();
      step();
      add_work(0, now_s() - t0, tokens);
    }
  }
  for (auto& r : active_)
    report(*r->job, ServingOutcome{r->seq.tokens(), r->seq.finish_reason(), 0, r->timings, kShuttingDown});
  active_.clear();
  running_ = 0;
}

void Scheduler::add_work(double prefill_s, double decode_s, uint64_t decode_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  totals_.prefill_s += prefill_s;
  totals_.decode_s += decode_s;
  totals_.decode_tokens += decode_tokens;
}

Scheduler::WorkTotals Scheduler::work_totals() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return totals_;
}

void Scheduler::report(ServingJob& job, ServingOutcome outcome) {
  ++finished_;
  if (outcome.error.empty() && outcome.finish == FinishReason::Cancelled) ++cancelled_;
  job.on_done(outcome);
}

bool Scheduler::advance(Running& r, std::vector<float> logits) {
  const int32_t token = r.seq.choose(std::move(logits));
  if (r.job->on_token) r.job->on_token(token);
  if (!r.seq.check_cancelled()) return false;
  if (r.seq.tokens().size() > 1) r.timings.decode_s = now_s() - r.decode_start;
  report(*r.job, ServingOutcome{r.seq.tokens(), r.seq.finish_reason(), 0, r.timings, ""});
  return true;
}

// The embedded prompt rows of a job, after its image features.
static std::vector<float> prompt_rows(const PaliGemmaModel& model, const ImageFeatures& features,
                                      const ServingJob& job, double& vision_s) {
  const double t0 = now_s();
  const std::vector<float> images = image_rows(features, job.images);
  vision_s = now_s() - t0;
  return model.embed_prompt(job.prompt_ids, images);
}

void Scheduler::beam_search(ServingJob& job, double queued_s) {
  ServingOutcome out;
  out.timings.queued_s = queued_s;
  const std::vector<float> rows = prompt_rows(model_, image_features_, job, out.timings.vision_s);
  Generation g = generate_tokens(model_, rows, int64_t(job.prompt_ids.size()), job.eos_ids, job.options);
  for (int32_t t : g.tokens)
    if (job.on_token) job.on_token(t);
  out.tokens = std::move(g.tokens);
  out.finish = g.finish;
  out.score = g.score;
  out.timings.prefill_s = g.prefill_seconds;
  out.timings.decode_s = g.decode_seconds;
  report(job, std::move(out));
}

void Scheduler::start(std::vector<std::pair<std::shared_ptr<ServingJob>, double>> jobs) {
  std::vector<std::unique_ptr<Running>> fresh;
  std::vector<std::vector<float>> prompts;
  for (auto& [job, queued_s] : jobs) {
    try {
      auto r = std::make_unique<Running>(job, model_.config().text);
      r->timings.queued_s = queued_s;
      if (r->seq.finished() || r->seq.check_cancelled()) {
        report(*job, ServingOutcome{{}, r->seq.finish_reason(), 0, r->timings, ""});
        continue;
      }
      if (job->options.beams > 1) {
        beam_search(*job, queued_s);
        continue;
      }
      prompts.push_back(prompt_rows(model_, image_features_, *job, r->timings.vision_s));
      fresh.push_back(std::move(r));
    } catch (const std::exception& e) {
      report(*job, ServingOutcome{{}, FinishReason::MaxTokens, 0, {}, e.what()});
    }
  }
  if (fresh.empty()) return;
  std::vector<float> logits;
  double prefill_s = 0;
  try {
    const double t0 = now_s();
    std::vector<KVCache*> caches;
    for (auto& r : fresh) caches.push_back(&r->seq.cache());
    logits = model_.logits_batch(model_.prefill_batch(caches, prompts));
    prefill_s = now_s() - t0;
  } catch (const std::exception& e) {
    for (auto& r : fresh) report(*r->job, ServingOutcome{{}, FinishReason::MaxTokens, 0, r->timings, e.what()});
    return;
  }
  const size_t vocab = logits.size() / fresh.size();
  const double decode_start = now_s();
  for (size_t b = 0; b < fresh.size(); ++b) {
    fresh[b]->timings.prefill_s = prefill_s;
    fresh[b]->decode_start = decode_start;
    std::vector<float> row(logits.begin() + int64_t(b * vocab), logits.begin() + int64_t((b + 1) * vocab));
    if (!advance(*fresh[b], std::move(row))) active_.push_back(std::move(fresh[b]));
  }
  running_ = active_.size();
}

void Scheduler::step() {
  std::vector<KVCache*> caches;
  std::vector<float> rows;
  for (auto& r : active_) {
    caches.push_back(&r->seq.cache());
    const std::vector<float> row = model_.embed_token(r->seq.tokens().back());
    rows.insert(rows.end(), row.begin(), row.end());
  }
  try {
    const std::vector<std::vector<float>> hidden = model_.forward_batch(caches, rows.data());
    const std::vector<float> logits = model_.logits_batch(hidden);
    const size_t vocab = logits.size() / active_.size();
    std::vector<std::unique_ptr<Running>> still_running;
    for (size_t b = 0; b < active_.size(); ++b) {
      std::vector<float> row(logits.begin() + int64_t(b * vocab), logits.begin() + int64_t((b + 1) * vocab));
      if (!advance(*active_[b], std::move(row))) still_running.push_back(std::move(active_[b]));
    }
    active_ = std::move(still_running);
  } catch (const std::exception& e) {
    for (auto& r : active_)
      report(*r->job, ServingOutcome{r->seq.tokens(), r->seq.finish_reason(), 0, r->timings, e.what()});
    active_.clear();
  }
  running_ = active_.size();
}

}  // namespace pg
