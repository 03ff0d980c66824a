// Continuous batching for a server: one worker thread owns the model; the requests waiting between
// decoding steps are prefilled together in one pass and join the running batch, whose decoding steps share
// one pass over the weights (PaliGemmaModel::prefill_batch / forward_batch / logits_batch). Every sequence
// chooses and ends by the rules of generate/sequence.h; a beam search runs whole between two steps.
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

#include "generate/generator.h"
#include "generate/sequence.h"
#include "model/paligemma.h"
#include "paligemma/image.h"

namespace pg {

struct ServingTimings {
  double queued_s = 0;   // waiting for the worker
  double vision_s = 0;
  double prefill_s = 0;  // until the first token (a pass shared with the requests admitted together)
  double decode_s = 0;   // the remaining tokens
};

struct ServingOutcome {
  std::vector<int32_t> tokens;  // generated, with the final eos if produced
  FinishReason finish = FinishReason::MaxTokens;
  float score = 0;  // beam search: the hypothesis' score
  ServingTimings timings;
  std::string error;  // non-empty: the generation failed (tokens are those made before)
};

// One generation. Callbacks run on the scheduler's thread and must not block for long.
struct ServingJob {
  std::vector<ImageRGB8> images;    // at the model's resolution (Engine::model_input)
  std::vector<int32_t> prompt_ids;  // image placeholders, <bos>, prompt, "\n"
  std::vector<int32_t> eos_ids = {1};
  DecodeOptions options;  // with context_room, stop_check and cancelled as the caller sets them
  // Sees each token as it is chosen (beam search: the returned ones, once the search ends).
  std::function<void(int32_t token)> on_token;
  // Called exactly once.
  std::function<void(const ServingOutcome& outcome)> on_done;
};

class Scheduler {
 public:
  using ImageFeatures = pg::ImageFeatures;  // e.g. Engine::image_features with its cache
  // max_queue: jobs waiting for a slot; max_batch: sequences decoded together; threads: the OpenMP threads
  // of the worker's passes (0: OpenMP's default).
  Scheduler(const PaliGemmaModel& model, ImageFeatures image_features, size_t max_queue, size_t max_batch,
            int threads = 0);
  ~Scheduler();  // finishes nothing new: queued and running jobs end with an error
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // False when the queue is full (the caller answers 503).
  bool submit(std::shared_ptr<ServingJob> job);
  size_t queued() const;
  size_t running() const { return running_.load(); }
  // Finished generations so far, and how many of them ended by cancellation.
  uint64_t finished() const { return finished_.load(); }
  uint64_t cancelled() const { return cancelled_.load(); }
  // Where the worker's time went so far: seconds admitting jobs (vision + prefill passes, and beam searches
  // whole), seconds in batched decoding steps, and the tokens those steps produced (aggregate decode
  // throughput = decode_tokens / decode_s).
  struct WorkTotals {
    double prefill_s = 0, decode_s = 0;
    uint64_t decode_tokens = 0;
  };
  WorkTotals work_totals() const;

 private:
  struct Running;
  void run();
  // Admits new jobs (job, seconds queued) together: their vision, then one prefill pass for all of them.
  void start(std::vector<std::pair<std::shared_ptr<ServingJob>, double>> jobs);
  void beam_search(ServingJob& job, double queued_s);
  void step();
  void add_work(double prefill_s, double decode_s, uint64_t decode_tokens);
  void report(ServingJob& job, ServingOutcome outcome);
  // Chooses a sequence's next token from its logits; true when the sequence is finished (and reported).
  bool advance(Running& seq, std::vector<float> logits);

  const PaliGemmaModel& model_;
  ImageFeatures image_features_;
  const size_t max_queue_, max_batch_;
  const int threads_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::shared_ptr<ServingJob>, double>> queue_;  // job, enqueue time
  std::vector<std::unique_ptr<Running>> active_;                      // worker thread only
  std::atomic<size_t> running_{0};
  std::atomic<uint64_t> finished_{0}, cancelled_{0};
  WorkTotals totals_;  // guarded by mutex_
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace pg
