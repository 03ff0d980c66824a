#include "serving/scheduler.h"

#include <algorithm>
#include <chrono>

#include "paligemma/error.h"

namespace pg {

namespace {
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

Scheduler::Scheduler(const PaliGemmaModel& model, size_t max_queue, size_t max_batch)
    : model_(model), max_queue_(max_queue), max_batch_(std::max<size_t>(1, max_batch)) {
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
    std::shared_ptr<ServingJob> next;
    double enqueued = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) break;
      // One new request per iteration: the running batch keeps decoding between prefills.
      if (!queue_.empty() && active_.size() < max_batch_) {
        next = std::move(queue_.front().first);
        enqueued = queue_.front().second;
        queue_.pop_front();
      }
    }
    if (next) start(std::move(next), now_s() - enqueued);
    if (!active_.empty()) step();
  }
  for (auto& seq : active_) seq->job->on_done(seq->tokens, seq->timings, "the server is shutting down");
  active_.clear();
  running_ = 0;
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

void Scheduler::start(std::shared_ptr<ServingJob> job, double queued_s) {
  try {
    if (job->exclusive) {
      job->exclusive();
      return;
    }
    if (job->cancelled && job->cancelled()) {
      job->on_done({}, {}, "cancelled");
      return;
    }
    auto seq = std::make_unique<Sequence>(job, model_.config().text);
    seq->timings.queued_s = queued_s;
    double t0 = now_s();
    std::vector<float> image_rows;
    for (const auto& p : job->pixels) {
      const std::vector<float> e = model_.image_embeddings(p.data());
      image_rows.insert(image_rows.end(), e.begin(), e.end());
    }
    seq->timings.vision_s = now_s() - t0;
    t0 = now_s();
    const std::vector<float> rows = model_.embed_prompt(job->prompt_ids, image_rows);
    std::vector<float> logits =
        model_.logits(model_.forward(seq->cache, rows.data(), int64_t(job->prompt_ids.size())));
    const int32_t token = job->choose ? job->choose(logits) : argmax(logits);
    seq->timings.prefill_s = now_s() - t0;
    seq->decode_start = now_s();
    if (!accept(*seq, token)) {
      active_.push_back(std::move(seq));
      running_ = active_.size();
    }
  } catch (const std::exception& e) {
    job->on_done({}, {}, e.what());
  }
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
