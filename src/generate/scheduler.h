// Continuous batching for a server: one worker thread owns the model; the requests waiting between
// decoding steps are prefilled together in one pass and join the running batch, whose decoding steps share
// one pass over the weights (PaliGemmaModel::prefill_batch / forward_batch / logits_batch).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/paligemma.h"
#include "paligemma/image.h"

namespace pg {

struct ServingTimings {
  double queued_s = 0;   // waiting for the worker
  double vision_s = 0;
  double prefill_s = 0;  // until the first token (a pass shared with the requests admitted together)
  double decode_s = 0;   // the remaining tokens
};

// One generation. Callbacks run on the scheduler's thread and must not block for long.
struct ServingJob {
  // When set, the worker runs this alone between decoding steps instead of the batched path (for
  // decoding strategies that manage their own sequences, such as beam search); it must report through
  // on_done itself.
  std::function<void()> exclusive;
  std::vector<ImageRGB8> images;           // at the model's resolution (Engine::model_input)
  std::vector<int32_t> prompt_ids;         // image placeholders, <bos>, prompt, "\n"
  int64_t max_tokens = 64;
  int32_t eos_id = 1;
  bool ignore_eos = false;
  // Picks the next token from one step's logits (greedy by default).
  std::function<int32_t(std::vector<float>& logits)> choose;
  // Sees each token as it is chosen; returning false ends the generation after it (stop strings).
  std::function<bool(int32_t token)> on_token;
  // Polled between steps: true ends the generation (the client went away).
  std::function<bool()> cancelled;
  // Called exactly once: the generated tokens, or a non-empty error.
  std::function<void(const std::vector<int32_t>& tokens, const ServingTimings& timings, const std::string& error)>
      on_done;
};

class Scheduler {
 public:
  // An image's features (projector output rows), e.g. Engine::image_features with its cache.
  using ImageFeatures = std::function<std::shared_ptr<const std::vector<float>>(const ImageRGB8& model_input)>;
  // max_queue: jobs waiting for a slot; max_batch: sequences decoded together.
  Scheduler(const PaliGemmaModel& model, ImageFeatures image_features, size_t max_queue, size_t max_batch);
  ~Scheduler();  // finishes nothing new: queued and running jobs end with an error
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // False when the queue is full (the caller answers 503).
  bool submit(std::shared_ptr<ServingJob> job);
  size_t queued() const;
  size_t running() const { return running_.load(); }
  // Finished generations so far, and how many of them ended because their client went away.
  uint64_t finished() const { return finished_.load(); }
  uint64_t cancelled() const { return cancelled_.load(); }
  // Where the worker's time went so far: seconds admitting jobs (vision + prefill passes, and exclusive
  // jobs such as beam search whole), seconds in batched decoding steps, and the tokens those steps
  // produced (aggregate decode throughput = decode_tokens / decode_s).
  struct WorkTotals {
    double prefill_s = 0, decode_s = 0;
    uint64_t decode_tokens = 0;
  };
  WorkTotals work_totals() const;

 private:
  struct Sequence;
  void run();
  // Admits new jobs (job, seconds queued) together: their vision, then one prefill pass for all of them.
  void start(std::vector<std::pair<std::shared_ptr<ServingJob>, double>> jobs);
  void step();
  void add_work(double prefill_s, double decode_s, uint64_t decode_tokens);
  // Records a chosen token; true when the sequence is finished (and reported).
  bool accept(Sequence& seq, int32_t token);

  const PaliGemmaModel& model_;
  ImageFeatures image_features_;
  const size_t max_queue_, max_batch_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::shared_ptr<ServingJob>, double>> queue_;  // job, enqueue time
  std::vector<std::unique_ptr<Sequence>> active_;                     // worker thread only
  std::atomic<size_t> running_{0};
  std::atomic<uint64_t> finished_{0}, cancelled_{0};
  WorkTotals totals_;  // guarded by mutex_
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace pg
