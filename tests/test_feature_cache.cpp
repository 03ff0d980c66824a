// The cache of image features (api/image_feature_cache.h): hits, misses and eviction on hand-made
// entries, threads sharing it, and the engine's answers with and without it equal bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "api/image_feature_cache.h"
#include "paligemma/engine.h"

namespace pg {
namespace {

ImageRGB8 image_of(int w, int h, uint8_t seed) {
  ImageRGB8 img{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 7 + seed);
  return img;
}

// Features of 10 floats (40 bytes) tagged with `tag`; counts its calls.
struct Computer {
  int calls = 0;
  std::function<std::vector<float>()> make(float tag) {
    return [this, tag] {
      ++calls;
      return std::vector<float>(10, tag);
    };
  }
};

TEST(ImageFeatureCache, SameImageHitsOthersMiss) {
  ImageFeatureCache cache(1 << 20);
  Computer c;
  const ImageRGB8 a = image_of(4, 3, 1);
  const auto first = cache.get(a, c.make(1));
  const auto again = cache.get(image_of(4, 3, 1), c.make(2));  // equal pixels, another object
  EXPECT_EQ(again, first);
  EXPECT_EQ(c.calls, 1);
  ImageRGB8 one_byte_off = a;
  one_byte_off.pixels[17] ^= 1;
  EXPECT_EQ((*cache.get(one_byte_off, c.make(3)))[0], 3.f);
  // The same bytes in another shape are another image.
  ImageRGB8 reshaped = a;
  reshaped.width = 3;
  reshaped.height = 4;
  EXPECT_EQ((*cache.get(reshaped, c.make(4)))[0], 4.f);
  EXPECT_EQ(c.calls, 3);
  const ImageFeatureCache::Stats s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.bytes, 3 * (40 + a.pixels.size()));
}

TEST(ImageFeatureCache, LeastRecentlyUsedLeavesFirst) {
  const size_t entry = 40 + 36;  // 10 floats + a 4x3 RGB key
  ImageFeatureCache cache(2 * entry);
  Computer c;
  const ImageRGB8 a = image_of(4, 3, 1), b = image_of(4, 3, 2), d = image_of(4, 3, 3);
  cache.get(a, c.make(1));
  cache.get(b, c.make(2));
  cache.get(a, c.make(9));  // a is now the most recent
  cache.get(d, c.make(3));  // evicts b
  EXPECT_EQ(c.calls, 3);
  EXPECT_EQ((*cache.get(a, c.make(9)))[0], 1.f);
  EXPECT_EQ((*cache.get(b, c.make(5)))[0], 5.f);  // computed again
  EXPECT_EQ(c.calls, 4);
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().bytes, 2 * entry);
}

TEST(ImageFeatureCache, OffOrTooSmallKeepsNothing) {
  Computer c;
  ImageFeatureCache off(0);
  off.get(image_of(4, 3, 1), c.make(1));
  off.get(image_of(4, 3, 1), c.make(1));
  EXPECT_EQ(c.calls, 2);
  ImageFeatureCache tiny(50);  // under one entry
  tiny.get(image_of(4, 3, 1), c.make(1));
  tiny.get(image_of(4, 3, 1), c.make(1));
  EXPECT_EQ(c.calls, 4);
  EXPECT_EQ(tiny.stats().entries, 0u);
}

TEST(ImageFeatureCache, ThreadsShareIt) {
  ImageFeatureCache cache(1 << 20);
  std::atomic<int> calls{0};
  std::vector<std::thread> threads;
  std::atomic<bool> wrong{false};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const uint8_t which = uint8_t((i + t) % 5);
        const auto f = cache.get(image_of(8, 8, which), [&] {
          ++calls;
          return std::vector<float>(16, float(which));
        });
        if ((*f)[15] != float(which)) wrong = true;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_FALSE(wrong);
  EXPECT_EQ(cache.stats().entries, 5u);  // a race computes an image twice but keeps it once
  EXPECT_GE(calls.load(), 5);
  EXPECT_EQ(cache.stats().hits + cache.stats().misses, 800u);
}

// A repeated image is answered from the cache, with the logits of an engine that keeps nothing.
TEST(ImageFeatureCache, EngineAnswersEqualWithoutIt) {
  const std::string model = (std::filesystem::path(PG_FIXTURES_DIR) / "models" / "pg2_f32").string();
  LoadOptions no_cache;
  no_cache.image_cache_bytes = 0;
  const auto cached = Engine::load(model), plain = Engine::load(model, no_cache);
  GenerateRequest req;
  req.images = {image_of(150, 90, 5), image_of(150, 90, 5)};
  req.prompt = "answer en are they the same?";
  req.max_tokens = 4;
  req.keep_logits = true;
  const GenerateResult first = cached->generate(req);
  const GenerateResult second = cached->generate(req);
  const GenerateResult reference = plain->generate(req);
  EXPECT_EQ(cached->image_cache_stats().misses, 1u);
  EXPECT_EQ(cached->image_cache_stats().hits, 3u);  // the second image of the first request, both of the second
  EXPECT_EQ(plain->image_cache_stats().hits, 0u);
  EXPECT_EQ(first.tokens, reference.tokens);
  EXPECT_EQ(second.tokens, reference.tokens);
  EXPECT_EQ(first.logits, reference.logits);  // bit for bit
  EXPECT_EQ(second.logits, reference.logits);
  EXPECT_THROW(cached->image_features(image_of(150, 90, 5)), Error);  // not at the model's resolution
}

}  // namespace
}  // namespace pg
