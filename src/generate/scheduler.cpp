#include "generate/scheduler.h"

#include <algorithm>
#include <chrono>

#include "paligemma/error.h"

namespace pg {

namespace {
// 4096 rows: 15 prompts of 224 px, 3 of 448 px, one of 896 px; the MLP's activations then take ~0.5 GB.
constexpr size_t kMaxPrefillRows = 4096;
using Clock = std::chrono::steady_clock;
double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

int32_t argmax(const std::vector<float>& logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}
}  // namespace

struct Scheduler::Sequence {
  std::shared_ptr<ServingJob> job;
  KVCache cache;
  std::vector<int32_t> tokens;
  ServingTimings timings;
  double decode_start = 0;
  Sequence(std::shared_ptr<ServingJob> j, const TextConfig& c)
      : job(std::move(j)), cache(c, int64_t(job->prompt_ids.size()) + job->max_tokens) {}
};

Scheduler::Scheduler(const PaliGemmaModel& model, ImageFeatures image_features, size_t max_queue, size_t max_batch)
    : model_(model),
      image_features_(std::move(image_features)),
      max_queue_(max_queue),
      max_batch_(std::max<size_t>(1, max_batch)) {
  worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
  for (auto& [job, t] : queue_) job->on_done({}, {}, "the server is shutting down");
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
  for (auto& seq : active_) seq->job->on_done(seq->tokens, seq->timings, "the server is shutting down");
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

bool Scheduler::accept(Sequence& seq, int32_t token) {
  seq.tokens.push_back(token);
  const ServingJob& job = *seq.job;
  const bool keep_going = job.on_token ? job.on_token(token) : true;
  const bool gone = job.cancelled && job.cancelled();
  const bool finished = !keep_going || (token == job.eos_id && !job.ignore_eos) ||
                        int64_t(seq.tokens.size()) >= job.max_tokens || gone;
  if (finished) {
    ++finished_;
    if (gone) ++cancelled_;
    if (seq.tokens.size() > 1) seq.timings.decode_s = now_s() - seq.decode_start;
    job.on_done(seq.tokens, seq.timings, "");
  }
  return finished;
}

void Scheduler::start(std::vector<std::pair<std::shared_ptr<ServingJob>, double>> jobs) {
  std::vector<std::unique_ptr<Sequence>> fresh;
  std::vector<std::vector<float>> prompts;
  for (auto& [job, queued_s] : jobs) {
    try {
      if (job->exclusive) {
        job->exclusive();
        continue;
      }
      if (job->cancelled && job->cancelled()) {
        job->on_done({}, {}, "cancelled");
        continue;
      }
      auto seq = std::make_unique<Sequence>(job, model_.config().text);
      seq->timings.queued_s = queued_s;
      const double t0 = now_s();
      std::vector<float> image_rows;  // [images * image tokens, text hidden]
      for (const ImageRGB8& image : job->images) {
        const std::shared_ptr<const std::vector<float>> e = image_features_(image);
        image_rows.insert(image_rows.end(), e->begin(), e->end());
      }
      seq->timings.vision_s = now_s() - t0;
      prompts.push_back(model_.embed_prompt(job->prompt_ids, image_rows));
      fresh.push_back(std::move(seq));
    } catch (const std::exception& e) {
      job->on_done({}, {}, e.what());
    }
  }
  if (fresh.empty()) return;
  std::vector<int32_t> first_tokens;
  double prefill_s = 0;
  try {
    const double t0 = now_s();
    std::vector<KVCache*> caches;
    for (auto& seq : fresh) caches.push_back(&seq->cache);
    const std::vector<float> logits = model_.logits_batch(model_.prefill_batch(caches, prompts));
    const size_t vocab = logits.size() / fresh.size();
    prefill_s = now_s() - t0;
    for (size_t b = 0; b < fresh.size(); ++b) {
      std::vector<float> row(logits.begin() + int64_t(b * vocab), logits.begin() + int64_t((b + 1) * vocab));
      first_tokens.push_back(fresh[b]->job->choose ? fresh[b]->job->choose(row) : argmax(row));
    }
  } catch (const std::exception& e) {
    for (auto& seq : fresh) seq->job->on_done({}, {}, e.what());
    return;
  }
  const double decode_start = now_s();
  for (size_t b = 0; b < fresh.size(); ++b) {
    fresh[b]->timings.prefill_s = prefill_s;
    fresh[b]->decode_start = decode_start;
    if (!accept(*fresh[b], first_tokens[b])) active_.push_back(std::move(fresh[b]));
  }
  running_ = active_.size();
}

void Scheduler::step() {
  std::vector<KVCache*> caches;
  std::vector<float> rows;
  for (auto& seq : active_) {
    caches.push_back(&seq->cache);
    const std::vector<float> row = model_.embed_token(seq->tokens.back());
    rows.insert(rows.end(), row.begin(), row.end());
  }
  try {
    const std::vector<std::vector<float>> hidden = model_.forward_batch(caches, rows.data());
    const std::vector<float> logits = model_.logits_batch(hidden);
    const size_t vocab = logits.size() / active_.size();
    std::vector<std::unique_ptr<Sequence>> still_running;
    for (size_t b = 0; b < active_.size(); ++b) {
      Sequence& seq = *active_[b];
      std::vector<float> row(logits.begin() + int64_t(b * vocab), logits.begin() + int64_t((b + 1) * vocab));
      const int32_t token = seq.job->choose ? seq.job->choose(row) : argmax(row);
      if (!accept(seq, token)) still_running.push_back(std::move(active_[b]));
    }
    active_ = std::move(still_running);
  } catch (const std::exception& e) {
    for (auto& seq : active_) seq->job->on_done(seq->tokens, seq->timings, e.what());
    active_.clear();
  }
  running_ = active_.size();
}

}  // namespace pg
