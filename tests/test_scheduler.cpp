// The batching scheduler gives every request the tokens it would get alone, and enforces its queue.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "loader/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "paligemma/engine.h"
#include "generate/scheduler.h"
#include "paligemma/batch.h"
#include "tasks/prompt.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
const fs::path kModel = fs::path(PG_FIXTURES_DIR) / "models" / "pg2_f32";

struct Fixture {
  Checkpoint ckpt{kModel.string()};
  Tokenizer tokenizer{ckpt.tokenizer_path()};
  PaliGemmaModel model{ckpt.config(), bind_weights(ckpt.config(), ckpt.lookup())};
  std::unique_ptr<Engine> engine = Engine::load(kModel.string());
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// The scheduler's image features: the fixture's own model, no cache.
Scheduler::ImageFeatures features_of_model() {
  return [](const ImageRGB8& image) {
    return std::make_shared<const std::vector<float>>(fixture().model.image_embeddings(normalize_to_chw(image).data()));
  };
}

ImageRGB8 test_image(int w, int h, int seed) {
  ImageRGB8 img{w, h, std::vector<uint8_t>(size_t(w * h * 3))};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t((i * 37 + size_t(seed) * 101) % 251);
  return img;
}

struct Outcome {
  std::promise<std::vector<int32_t>> tokens;
  std::string error;
};

std::shared_ptr<ServingJob> make_job(const ImageRGB8& image, const std::string& prompt, int64_t max_tokens,
                                     std::shared_ptr<Outcome> out) {
  Fixture& f = fixture();
  auto job = std::make_shared<ServingJob>();
  job->images.push_back(f.engine->model_input(image));
  job->prompt_ids = f.engine->prompt_ids(1, prompt);
  job->options.max_tokens = max_tokens;
  job->eos_ids = {f.tokenizer.eos_id()};
  job->on_done = [out](const ServingOutcome& outcome) {
    out->error = outcome.error;
    out->tokens.set_value(outcome.tokens);
  };
  return job;
}

TEST(Scheduler, BatchedRequestsMatchSingleRuns) {
  Fixture& f = fixture();
  Scheduler scheduler(f.model, features_of_model(), 16, 3);
  const std::vector<std::tuple<int, int, std::string, int64_t>> requests = {
      {40, 30, "caption en", 9}, {64, 64, "answer en what is this?", 12}, {20, 90, "detect cat", 5},
      {100, 50, "ocr", 11}, {33, 33, "caption es", 7}};
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& [w, h, prompt, n] = requests[i];
    outcomes.push_back(std::make_shared<Outcome>());
    ASSERT_TRUE(scheduler.submit(make_job(test_image(w, h, int(i)), prompt, n, outcomes.back())));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& [w, h, prompt, n] = requests[i];
    const std::vector<int32_t> got = outcomes[i]->tokens.get_future().get();
    EXPECT_EQ(outcomes[i]->error, "");
    GenerateRequest req;
    req.images.push_back(test_image(w, h, int(i)));
    req.prompt = prompt;
    req.max_tokens = n;
    EXPECT_EQ(got, f.engine->generate(req).tokens) << "request " << i;
  }
}

TEST(Scheduler, FullQueueRefusesAndCancelStops) {
  Fixture& f = fixture();
  Scheduler scheduler(f.model, features_of_model(), 1, 4);
  // The first job holds the worker inside its token callback until the queue has been filled.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto first = std::make_shared<Outcome>();
  auto job = make_job(test_image(30, 30, 1), "caption en", 3, first);
  std::promise<void> worker_busy;
  bool signalled = false;
  job->on_token = [&, released](int32_t) {
    if (!signalled) {
      signalled = true;
      worker_busy.set_value();
      released.wait();
    }
    return true;
  };
  ASSERT_TRUE(scheduler.submit(job));
  worker_busy.get_future().wait();
  auto second = std::make_shared<Outcome>();
  auto cancelled_job = make_job(test_image(30, 30, 2), "caption en", 50, second);
  int seen = 0;
  cancelled_job->on_token = [&seen](int32_t) { return ++seen < 1000; };
  cancelled_job->options.cancelled = [&seen] { return seen >= 2; };
  EXPECT_TRUE(scheduler.submit(cancelled_job));
  EXPECT_FALSE(scheduler.submit(make_job(test_image(30, 30, 3), "caption en", 3, std::make_shared<Outcome>())));
  release.set_value();
  EXPECT_EQ(first->tokens.get_future().get().size(), 3u);
  EXPECT_EQ(second->tokens.get_future().get().size(), 2u);  // stopped when the client went away
}

TEST(Scheduler, StopCallbackEndsAfterTheToken) {
  Fixture& f = fixture();
  Scheduler scheduler(f.model, features_of_model(), 4, 4);
  auto out = std::make_shared<Outcome>();
  auto job = make_job(test_image(50, 40, 4), "caption en", 20, out);
  job->options.stop_check = [](const std::vector<int32_t>& tokens) { return tokens.size() >= 4; };
  ASSERT_TRUE(scheduler.submit(job));
  EXPECT_EQ(out->tokens.get_future().get().size(), 4u);
}

// pg::Batch, the public face of the scheduler: greedy, sampled and beam-search requests get Engine::generate's
// tokens, text and finish reason; cancellation ends a generation with FinishReason::Cancelled.
struct BatchOutcome {
  std::promise<GenerateResult> result;
  std::string error;
};

BatchCallbacks collect(std::shared_ptr<BatchOutcome> out) {
  return {{}, [out](GenerateResult r, const std::string& error) {
            out->error = error;
            out->result.set_value(std::move(r));
          }};
}

TEST(Batch, EveryDecodingGivesTheEngineResult) {
  Fixture& f = fixture();
  Batch batch(*f.engine, {16, 4});
  std::vector<GenerateRequest> requests(4);
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].images.push_back(test_image(40 + int(i), 30, int(i)));
    requests[i].prompt = "caption en";
    requests[i].max_tokens = 8;
  }
  requests[1].sample = true, requests[1].temperature = 0.8, requests[1].top_k = 20, requests[1].seed = 7;
  requests[2].beams = 3;
  requests[3].stop = {f.engine->decode(f.engine->generate(requests[3]).tokens).substr(0, 2)};
  std::vector<std::shared_ptr<BatchOutcome>> outcomes;
  for (const GenerateRequest& req : requests) {
    outcomes.push_back(std::make_shared<BatchOutcome>());
    ASSERT_TRUE(batch.submit(req, collect(outcomes.back())));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateResult got = outcomes[i]->result.get_future().get();
    const GenerateResult want = f.engine->generate(requests[i]);
    EXPECT_EQ(outcomes[i]->error, "");
    EXPECT_EQ(got.tokens, want.tokens) << "request " << i;
    EXPECT_EQ(got.text, want.text) << "request " << i;
    EXPECT_EQ(got.finish_reason, want.finish_reason) << "request " << i;
    EXPECT_EQ(got.score, want.score) << "request " << i;
  }
  EXPECT_EQ(batch.stats().finished, requests.size());
  EXPECT_THROW(batch.submit(GenerateRequest{}, {}), Error);  // no image
  GenerateRequest inconsistent = requests[0];
  inconsistent.images[0].pixels.pop_back();
  EXPECT_THROW(batch.submit(inconsistent, {}), Error);
}

TEST(Batch, CancelledEndsWithItsReason) {
  Fixture& f = fixture();
  GenerateRequest req;
  req.images.push_back(test_image(30, 30, 5));
  req.prompt = "caption en";
  req.max_tokens = 40;
  req.ignore_eos = true;
  auto made = std::make_shared<std::atomic<int>>(0);
  req.cancelled = [made] { return made->load() >= 3; };
  const GenerateResult alone = f.engine->generate(req, [made](int32_t) { ++*made; });
  EXPECT_EQ(alone.finish_reason, FinishReason::Cancelled);
  EXPECT_EQ(alone.tokens.size(), 3u);
  EXPECT_STREQ(finish_reason_name(alone.finish_reason), "cancelled");

  Batch batch(*f.engine);
  *made = 0;
  auto out = std::make_shared<BatchOutcome>();
  BatchCallbacks callbacks = collect(out);
  callbacks.on_token = [made](int32_t) { ++*made; };
  ASSERT_TRUE(batch.submit(req, callbacks));
  const GenerateResult batched = out->result.get_future().get();
  EXPECT_EQ(batched.finish_reason, FinishReason::Cancelled);
  EXPECT_EQ(batched.tokens, alone.tokens);
  EXPECT_EQ(batch.stats().cancelled, 1u);

  req.beams = 2;  // beam search polls between its steps too
  *made = 3;
  EXPECT_EQ(f.engine->generate(req).finish_reason, FinishReason::Cancelled);
}

}  // namespace
}  // namespace pg
