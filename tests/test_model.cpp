// Properties of the model API that the parity fixtures do not pin: batched decoding equals one
// sequence at a time, and prefill in one pass equals feeding the prefix to an empty cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "loader/checkpoint.h"
#include "kernels/matmul.h"
#include "model/paligemma.h"
#include "paligemma/error.h"

namespace pg {
namespace {

namespace fs = std::filesystem;

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - b[i]));
    s = std::max(s, std::fabs(double(b[i])));
  }
  return d / s;
}

class ModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ckpt = std::make_unique<Checkpoint>((fs::path(PG_FIXTURES_DIR) / "models" / GetParam()).string());
    model = std::make_unique<PaliGemmaModel>(ckpt->config(), bind_weights(ckpt->config(), ckpt->lookup()));
  }
  // A prompt of `n` text tokens starting at `first` (no image: the decoder does not care).
  std::vector<float> prompt_rows(int32_t first, int n) const {
    std::vector<float> rows;
    for (int i = 0; i < n; ++i) {
      const auto r = model->embed_token(first + 7 * i);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    return rows;
  }
  std::unique_ptr<Checkpoint> ckpt;
  std::unique_ptr<PaliGemmaModel> model;
};

// Batched decoding gives every sequence bit for bit what it gets alone (the matrix products are row-independent
// up to kRowIndependentRows rows, and larger batches go in passes of that many): 19 sequences, so one pass is
// full and one is not. Also on the bf16 checkpoint, whose products take the bf16 kernels.
class BatchedDecodingTest : public ModelTest {};

TEST_P(BatchedDecodingTest, EqualsSequential) {
  const TextConfig& t = model->config().text;
  constexpr int kSequences = 19;
  static_assert(kSequences > kRowIndependentRows);
  std::vector<KVCache> alone, batched;
  std::vector<std::vector<float>> hidden;
  alone.reserve(kSequences);
  batched.reserve(kSequences);
  for (int s = 0; s < kSequences; ++s) {
    const int length = 2 + (s * 5) % 9;
    const auto rows = prompt_rows(10 + 13 * s, length);
    alone.emplace_back(t, 32);
    batched.emplace_back(t, 32);
    hidden.push_back(model->forward(alone.back(), rows.data(), length));
    model->forward(batched.back(), rows.data(), length);
  }
  std::vector<KVCache*> caches;
  for (KVCache& c : batched) caches.push_back(&c);
  for (int step = 0; step < 3; ++step) {
    std::vector<float> next_rows;
    for (int s = 0; s < kSequences; ++s) {
      const auto logits = model->logits(hidden[size_t(s)]);
      const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      const auto row = model->embed_token(next);
      next_rows.insert(next_rows.end(), row.begin(), row.end());
      hidden[size_t(s)] = model->forward(alone[size_t(s)], row.data(), 1);
    }
    const auto out = model->forward_batch(caches, next_rows.data());
    ASSERT_EQ(out.size(), size_t(kSequences));
    const std::vector<float> all_logits = model->logits_batch(out);
    const size_t vocab = size_t(t.vocab);
    ASSERT_EQ(all_logits.size(), kSequences * vocab);
    for (int s = 0; s < kSequences; ++s) {
      EXPECT_EQ(out[size_t(s)], hidden[size_t(s)]) << "step " << step << " sequence " << s;
      EXPECT_EQ(batched[size_t(s)].length(), alone[size_t(s)].length());
      const std::vector<float> row(all_logits.begin() + s * vocab, all_logits.begin() + (s + 1) * vocab);
      EXPECT_EQ(row, model->logits(hidden[size_t(s)])) << "step " << step << " sequence " << s;
    }
  }
}

TEST_P(ModelTest, BatchedPrefillEqualsOneAtATime) {
  const TextConfig& t = model->config().text;
  const int lengths[] = {6, 11, 2};
  std::vector<KVCache> alone, batched;
  std::vector<std::vector<float>> prompts, expected;
  for (int s = 0; s < 3; ++s) {
    prompts.push_back(prompt_rows(20 + 30 * s, lengths[s]));
    alone.emplace_back(t, 16);
    batched.emplace_back(t, 16);
    expected.push_back(model->forward(alone.back(), prompts.back().data(), lengths[s]));
  }
  const auto out = model->prefill_batch({&batched[0], &batched[1], &batched[2]}, prompts);
  ASSERT_EQ(out.size(), 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_LE(max_rel_diff(out[size_t(s)], expected[size_t(s)]), 1e-5) << "sequence " << s;
    EXPECT_EQ(batched[size_t(s)].length(), lengths[s]);
    EXPECT_EQ(batched[size_t(s)].prefix_len(), lengths[s]);
    // The caches hold the same keys and values: one more step continues alike.
    const auto row = model->embed_token(77);
    EXPECT_LE(max_rel_diff(model->forward(batched[size_t(s)], row.data(), 1),
                           model->forward(alone[size_t(s)], row.data(), 1)),
              1e-5);
  }
  KVCache used(t, 16), fresh(t, 16);
  model->forward(used, prompts[0].data(), lengths[0]);
  EXPECT_THROW(model->prefill_batch({&fresh, &used}, {prompts[0], prompts[0]}), Error);
  EXPECT_THROW(model->prefill_batch({&fresh}, {prompts[0], prompts[1]}), Error);
  EXPECT_THROW(model->prefill_batch({&fresh}, {std::vector<float>(size_t(t.hidden) + 1)}), Error);
}

TEST_P(ModelTest, PrefixIsBidirectional) {
  // Four rows as one prefix: early rows see later ones. The same rows fed one at a time after a
  // one-row prefix are causal. With several layers the last row's output must differ between the two.
  const TextConfig& t = model->config().text;
  const int64_t H = t.hidden;
  const auto rows = prompt_rows(20, 4);
  KVCache prefix(t, 8), causal(t, 8);
  const auto together = model->forward(prefix, rows.data(), 4);
  std::vector<float> one_by_one = model->forward(causal, rows.data(), 1);
  for (int i = 1; i < 4; ++i) one_by_one = model->forward(causal, rows.data() + i * H, 1);
  EXPECT_EQ(prefix.prefix_len(), 4);
  EXPECT_EQ(causal.prefix_len(), 1);
  EXPECT_GT(max_rel_diff(together, one_by_one), 1e-3);
  // A one-row prefix followed by single rows is exactly the incremental path: same result again.
  KVCache again(t, 8);
  std::vector<float> repeat = model->forward(again, rows.data(), 1);
  for (int i = 1; i < 4; ++i) repeat = model->forward(again, rows.data() + i * H, 1);
  EXPECT_EQ(repeat, one_by_one);
}

TEST_P(ModelTest, CacheOverflowIsAnError) {
  KVCache c(model->config().text, 3);
  const auto rows = prompt_rows(30, 4);
  EXPECT_THROW(model->forward(c, rows.data(), 4), Error);
}

// Activations live in a workspace that grows during the first call and is reused after it: a sequence's
// decoding steps, a second prompt and a second image allocate nothing, and give what a fresh one gives.
TEST_P(ModelTest, WorkspaceGrowsOnceThenIsReused) {
  const TextConfig& t = model->config().text;
  const auto prompt = prompt_rows(30, 9);
  KVCache cache(t, 16);
  const auto first = model->forward(cache, prompt.data(), 9);
  const size_t after_prefill = cache.workspace().allocations();
  EXPECT_GT(after_prefill, 0u);
  for (int step = 0; step < 3; ++step) model->forward(cache, model->embed_token(50 + step).data(), 1);
  EXPECT_EQ(cache.workspace().allocations(), after_prefill);

  Workspace shared;
  KVCache a(t, 16), b(t, 16);
  EXPECT_EQ(model->prefill_batch({&a}, {prompt}, &shared)[0], first);
  const size_t after_first_prompt = shared.allocations();
  EXPECT_EQ(model->prefill_batch({&b}, {prompt}, &shared)[0], first);
  EXPECT_EQ(shared.allocations(), after_first_prompt);
  EXPECT_EQ(a.workspace().allocations(), 0u);  // the given workspace, not the cache's

  const int64_t S = model->config().vision.image_size;
  std::vector<float> pixels(size_t(3 * S * S));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = float(i % 17) / 8.f - 1.f;
  Workspace vision;
  const auto features = model->image_embeddings(pixels.data(), &vision);
  const size_t after_first_image = vision.allocations();
  EXPECT_EQ(model->image_embeddings(pixels.data(), &vision), features);
  EXPECT_EQ(vision.allocations(), after_first_image);
  EXPECT_EQ(model->image_embeddings(pixels.data()), features);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelTest, ::testing::Values("pg1_f32", "pg2_f32"));
INSTANTIATE_TEST_SUITE_P(Fixtures, BatchedDecodingTest, ::testing::Values("pg1_f32", "pg2_f32", "pg2_bf16_sharded"));

}  // namespace
}  // namespace pg
