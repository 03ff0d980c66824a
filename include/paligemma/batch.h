// Continuous batching over one Engine, for servers: generations submitted from any thread are queued,
// prefilled together and decoded in shared steps on one worker thread; each gets the tokens it would get
// from Engine::generate alone (greedy, sampling and beam search alike; a beam search runs whole between
// two batched steps).
//
//   pg::Batch batch(*engine, {.max_queue = 64, .max_batch = 8});
//   batch.submit(request, {.on_token = print_token, .on_done = [](pg::GenerateResult r, std::string error) {...}});
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "paligemma/engine.h"

namespace pg {

struct BatchOptions {
  size_t max_queue = 64;  // generations waiting for a slot; submit refuses more
  size_t max_batch = 8;   // sequences decoded together
};

// Callbacks run on the batch's worker thread and must not block for long. request.cancelled is polled
// there too, between steps: a cancelled generation ends with FinishReason::Cancelled.
struct BatchCallbacks {
  std::function<void(int32_t token)> on_token;  // each token as it is chosen (beam search: once it ends)
  // Exactly once: the result (tokens, text cut before a stop string, finish reason, score, timings with
  // queued_s, vision_s, prefill_s, decode_s), or a non-empty error with the tokens made before it.
  std::function<void(GenerateResult result, const std::string& error)> on_done;
};

struct BatchStats {
  size_t queued = 0;         // waiting for a slot
  size_t running = 0;        // being decoded
  uint64_t finished = 0;     // generations ended so far (cancelled ones included)
  uint64_t cancelled = 0;    // of them, ended by request.cancelled
  double prefill_s = 0;      // worker seconds admitting generations (vision, prefill; beam searches whole)
  double decode_s = 0;       // worker seconds in batched decoding steps
  uint64_t decode_tokens = 0;  // tokens those steps made (aggregate throughput: decode_tokens / decode_s)
};

class Batch {
 public:
  // Starts the worker thread, which uses the engine's thread count. The engine must outlive the batch.
  explicit Batch(const Engine& engine, const BatchOptions& options = {});
  // Ends the worker: queued and running generations end with the error "the server is shutting down".
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Queues a generation; false when the queue is full. Throws pg::Error, without queueing, for a request
  // Engine::generate would refuse (no image, bad decoding options, a prompt that fills the context); a
  // max_tokens beyond the context stops where it ends (FinishReason::Length). keep_logits is not offered here.
  bool submit(const GenerateRequest& request, BatchCallbacks callbacks);
  BatchStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pg
