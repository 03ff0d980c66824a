// The Engine's promises to library users (paligemma/engine.h): several threads generating on one Engine
// get exactly the tokens of one call alone, a call leaves the caller's OpenMP setting as it was, and
// generate() returns the boxes and masks of detection / segmentation output.
#include <gtest/gtest.h>
#include <omp.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "paligemma/engine.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = PG_FIXTURES_DIR;
// The embedded model: trained on drawn scenes, it has a mask decoder (vae.npz) and answers "segment".
const fs::path kEmbeddedModel = kFixtures.parent_path().parent_path() / "models" / "synthetic";

GenerateRequest request_for(const std::string& image, const std::string& prompt) {
  GenerateRequest req;
  req.images.push_back(decode_image_file((kFixtures / "images" / image).string()));
  req.prompt = prompt;
  req.max_tokens = 12;
  req.ignore_eos = true;
  return req;
}

TEST(EngineThreads, ConcurrentGenerateCallsGiveTheSequentialTokens) {
  LoadOptions options;
  options.threads = 2;
  options.image_cache_bytes = 0;  // every call runs the vision tower too
  const auto engine = Engine::load((kFixtures / "models" / "pg2_f32").string(), options);
  const std::vector<GenerateRequest> requests = {
      request_for("png/rgb_300x201.png", "caption en"), request_for("png/rgb_300x201.png", "detect cat"),
      request_for("jpeg/grey_75x47.jpg", "caption en"), request_for("bmp/grey8_75x47.bmp", "ocr")};
  std::vector<std::vector<int32_t>> expected;
  for (const GenerateRequest& req : requests) expected.push_back(engine->generate(req).tokens);

  constexpr int kThreads = 6, kRounds = 3;
  std::vector<std::vector<std::vector<int32_t>>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round)
        got[t].push_back(engine->generate(requests[size_t(t + round) % requests.size()]).tokens);
    });
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t)
    for (int round = 0; round < kRounds; ++round)
      EXPECT_EQ(got[t][size_t(round)], expected[size_t(t + round) % requests.size()]) << "thread " << t;
}

TEST(EngineThreads, ACallKeepsTheCallersThreadCount) {
  LoadOptions options;
  options.threads = 1;
  const int before = omp_get_max_threads();
  const auto engine = Engine::load((kFixtures / "models" / "pg1_f32_tiny").string(), options);
  EXPECT_EQ(engine->threads(), 1);
  engine->generate(request_for("png/rgb_300x201.png", "caption en"));
  EXPECT_EQ(omp_get_max_threads(), before);
}

TEST(EngineThreads, GenerateReturnsObjectsWithMasks) {
  const auto engine = Engine::load(kEmbeddedModel.string());
  ASSERT_NE(engine->mask_decoder(), nullptr);
  GenerateRequest req = request_for("png/rgb_300x201.png", "segment red square");
  req.ignore_eos = false;
  req.max_tokens = 24;
  const GenerateResult r = engine->generate(req);
  ASSERT_FALSE(r.objects.objects.empty()) << r.text;
  const DetectedObject& o = r.objects.objects[0];
  ASSERT_TRUE(o.mask.has_value());
  EXPECT_EQ(o.mask->width, 300);
  EXPECT_EQ(o.mask->height, 201);
  ASSERT_TRUE(o.mask_rle.has_value());
  EXPECT_EQ(o.mask_rle->counts, encode_coco_rle(*o.mask).counts);
  EXPECT_FALSE(r.objects.needs_mask_decoder);
}

}  // namespace
}  // namespace pg
