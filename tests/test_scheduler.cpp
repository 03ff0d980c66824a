// The batching scheduler gives every request the tokens it would get alone, and enforces its queue.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "loader/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "paligemma/engine.h"
#include "generate/scheduler.h"
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
  job->max_tokens = max_tokens;
  job->eos_id = f.tokenizer.eos_id();
  job->on_done = [out](const std::vector<int32_t>& tokens, const ServingTimings&, const std::string& error) {
    out->error = error;
    out->tokens.set_value(tokens);
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
  cancelled_job->cancelled = [&seen] { return seen >= 2; };
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
  int n = 0;
  job->on_token = [&n](int32_t) { return ++n < 4; };
  ASSERT_TRUE(scheduler.submit(job));
  EXPECT_EQ(out->tokens.get_future().get().size(), 4u);
}

}  // namespace
}  // namespace pg
