// Decoding strategies: beam search against transformers' generate(num_beams=K) (tests/fixtures/decoding, made
// by tools/reference/make_decoding_fixtures.py), sampling by its properties and hand-worked distributions, stop
// strings, and the checks on decoding options.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "generate/generator.h"
#include "generate/sampling.h"
#include "loader/checkpoint.h"
#include "model/paligemma.h"
#include "paligemma/engine.h"
#include "test_util.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = PG_FIXTURES_DIR;
const fs::path kDecoding = kFixtures / "decoding";

const json& beam_cases() {
  static const json cases = [] {
    std::ifstream in(kDecoding / "beam_cases.json");
    return json::parse(in).at("cases");
  }();
  return cases;
}

const Engine& engine_for(const std::string& model, bool final_softcap = true) {
  static std::map<std::pair<std::string, bool>, std::unique_ptr<Engine>> engines;
  auto& e = engines[{model, final_softcap}];
  LoadOptions options;
  options.final_softcap = final_softcap;
  if (!e) e = Engine::load((kFixtures / "models" / model).string(), options);
  return *e;
}

// The model without the engine around it, to run the generator with other eos ids than the tokenizer's.
struct BareModel {
  explicit BareModel(const std::string& dir, bool final_softcap)
      : checkpoint(dir),
        model(checkpoint.config(), bind_weights(checkpoint.config(), checkpoint.lookup()),
              ModelOptions{true, final_softcap, true}) {}
  Checkpoint checkpoint;
  PaliGemmaModel model;
};

const PaliGemmaModel& model_for(const std::string& model, bool final_softcap) {
  static std::map<std::pair<std::string, bool>, std::unique_ptr<BareModel>> models;
  auto& m = models[{model, final_softcap}];
  if (!m) m = std::make_unique<BareModel>((kFixtures / "models" / model).string(), final_softcap);
  return m->model;
}

std::vector<ImageRGB8> case_images(const json& c) {
  std::vector<ImageRGB8> images;
  for (const auto& name : c.at("images"))
    images.push_back(decode_image_file((kDecoding / name.get<std::string>()).string()));
  return images;
}

TEST(BeamFixtures, ArePresent) { EXPECT_GE(beam_cases().size(), 20u); }

class BeamCase : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    ASSERT_LT(GetParam(), beam_cases().size());
    c = beam_cases()[GetParam()];
    softcap = c.at("final_softcap").get<bool>();
    images = case_images(c);
    engine = &engine_for(c.at("model").get<std::string>(), softcap);
  }
  json c;
  bool softcap = false;
  std::vector<ImageRGB8> images;
  const Engine* engine = nullptr;
};

// Runs the generator directly (any eos ids), on the prefix the engine builds.
Generation run_generator(const json& c, const Engine& engine, const std::vector<ImageRGB8>& images, bool softcap,
                         DecodeOptions options) {
  const PaliGemmaModel& model = model_for(c.at("model").get<std::string>(), softcap);
  const std::vector<int32_t> ids = engine.prompt_ids(images.size(), c.at("prompt").get<std::string>());
  EXPECT_EQ(ids, c.at("input_ids").get<std::vector<int32_t>>());
  std::vector<float> image_rows;
  for (const ImageRGB8& image : images) {
    const std::vector<float> e = model.image_embeddings(engine.preprocess(image).data());
    image_rows.insert(image_rows.end(), e.begin(), e.end());
  }
  const std::vector<float> rows = model.embed_prompt(ids, image_rows);
  options.max_tokens = c.at("max_new_tokens").get<int64_t>();
  return generate_tokens(model, rows, int64_t(ids.size()), c.at("eos_token_id").get<std::vector<int32_t>>(), options);
}

// Scores agree within 1e-4, relative where they exceed 1 (length_penalty -1 multiplies the sum of
// log-probabilities, and its float32 differences, by the length).
void expect_same_score(float score, const json& c) {
  const double expected = c.at("sequence_score").get<double>();
  EXPECT_NEAR(score, expected, 1e-4 * std::max(1.0, std::fabs(expected)));
}

TEST_P(BeamCase, SequenceScoreAndStepsEqualTransformers) {
  DecodeOptions options;
  options.beams = c.at("num_beams").get<int>();
  options.length_penalty = c.at("length_penalty").get<double>();
  const Generation g = run_generator(c, *engine, images, softcap, options);
  EXPECT_EQ(g.tokens, c.at("sequence").get<std::vector<int32_t>>());
  expect_same_score(g.score, c);
  EXPECT_EQ(g.steps, c.at("steps").get<int64_t>()) << "the search ran a different number of steps";
}

TEST_P(BeamCase, KeptLogitsGiveTheScore) {
  // score = sum of the chosen tokens' log-probabilities / length^length_penalty, each from the logits kept for it.
  DecodeOptions options;
  options.beams = c.at("num_beams").get<int>();
  options.length_penalty = c.at("length_penalty").get<double>();
  options.keep_logits = true;
  const Generation g = run_generator(c, *engine, images, softcap, options);
  ASSERT_EQ(g.logits.size(), g.tokens.size());
  double sum = 0;
  for (size_t i = 0; i < g.tokens.size(); ++i) sum += log_softmax(g.logits[i])[size_t(g.tokens[i])];
  EXPECT_NEAR(sum / std::pow(double(g.tokens.size()), options.length_penalty), g.score, 1e-4);
}

// The cases searched with the model's own <eos> (the others use made-up eos ids the engine does not take).
std::vector<size_t> cases_with_model_eos() {
  std::vector<size_t> out;
  for (size_t i = 0; i < beam_cases().size(); ++i)
    if (beam_cases()[i].at("eos_token_id") == json::array({1})) out.push_back(i);
  return out;
}

class BeamCaseWithModelEos : public BeamCase {};

TEST_P(BeamCaseWithModelEos, EngineEqualsTransformers) {
  GenerateRequest req;
  req.images = images;
  req.prompt = c.at("prompt").get<std::string>();
  req.max_tokens = c.at("max_new_tokens").get<int64_t>();
  req.beams = c.at("num_beams").get<int>();
  req.length_penalty = c.at("length_penalty").get<double>();
  const GenerateResult r = engine->generate(req);
  EXPECT_EQ(r.tokens, c.at("sequence").get<std::vector<int32_t>>());
  expect_same_score(r.score, c);
  EXPECT_EQ(r.text, engine->decode(r.tokens));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BeamCase, ::testing::Range<size_t>(0, beam_cases().size()));
INSTANTIATE_TEST_SUITE_P(Fixtures, BeamCaseWithModelEos, ::testing::ValuesIn(cases_with_model_eos()));

// ---- sampling: the filtered distribution by hand --------------------------------------------------------------

std::vector<float> log_of(const std::vector<double>& p) {
  std::vector<float> out;
  for (double v : p) out.push_back(float(std::log(v)));
  return out;
}

void expect_distribution(const std::vector<double>& got, const std::vector<double>& expected) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-6) << "token " << i;
}

TEST(FilteredDistribution, TemperatureDividesTheLogits) {
  const std::vector<double> p = filtered_distribution({1, 2, 3}, {2.0, 0, 1.0});
  const double z = std::exp(0.5) + std::exp(1.0) + std::exp(1.5);
  expect_distribution(p, {std::exp(0.5) / z, std::exp(1.0) / z, std::exp(1.5) / z});
}

TEST(FilteredDistribution, TopKKeepsTiesWithTheKth) {
  // As TopKLogitsWarper: everything below the k-th largest logit goes; equal ones stay.
  expect_distribution(filtered_distribution({5, 4, 4, 1}, {1.0, 2, 1.0}), [] {
    const double z = std::exp(5.0) + 2 * std::exp(4.0);
    return std::vector<double>{std::exp(5.0) / z, std::exp(4.0) / z, std::exp(4.0) / z, 0};
  }());
  expect_distribution(filtered_distribution({0, 7, 3}, {1.0, 1, 1.0}), {0, 1, 0});
}

TEST(FilteredDistribution, TopPKeepsTheSmallestSetWithEnoughMass) {
  // Probabilities 0.3, 0.05, 0.5, 0.15 (ids 0..3). Most probable first: 0.5 (id 2), 0.3 (id 0), 0.15, 0.05.
  const std::vector<float> logits = log_of({0.3, 0.05, 0.5, 0.15});
  expect_distribution(filtered_distribution(logits, {1.0, 0, 0.45}), {0, 0, 1, 0});          // 0.5 >= 0.45
  expect_distribution(filtered_distribution(logits, {1.0, 0, 0.75}), {0.375, 0, 0.625, 0});  // 0.8 >= 0.75
  expect_distribution(filtered_distribution(logits, {1.0, 0, 0.85}), {0.3 / 0.95, 0, 0.5 / 0.95, 0.15 / 0.95});
  expect_distribution(filtered_distribution(logits, {1.0, 0, 1.0}), {0.3, 0.05, 0.5, 0.15});
}

TEST(FilteredDistribution, OrderIsTemperatureTopKTopP) {
  const std::vector<float> logits = log_of({0.5, 0.3, 0.15, 0.05});
  // Temperature first: at T = 0.5 the probabilities are p^2 / sum = 0.685, 0.247, 0.062, 0.007, so top-p 0.9
  // keeps two tokens (at T = 1 it would need three: 0.5 + 0.3 < 0.9).
  const double z = 0.25 + 0.09;
  expect_distribution(filtered_distribution(logits, {0.5, 0, 0.9}), {0.25 / z, 0.09 / z, 0, 0});
  // Top-k before top-p: top-k 2 leaves 0.625 / 0.375, and top-p 0.6 then keeps one token (top-p first would
  // keep two: 0.5 < 0.6).
  expect_distribution(filtered_distribution(logits, {1.0, 2, 0.6}), {1, 0, 0, 0});
}

TEST(DrawToken, FrequenciesFollowTheFilteredDistribution) {
  const std::vector<float> logits = {0.3f, 2.0f, -1.0f, 1.1f, 0.0f, 1.7f, -0.4f, 0.9f};
  const std::vector<double> p = filtered_distribution(logits, {0.8, 5, 1.0});
  std::mt19937_64 rng(42);
  const int draws = 40000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[size_t(draw_token(p, rng))];
  double chi2 = 0;
  int kept = 0;
  for (size_t t = 0; t < p.size(); ++t) {
    if (p[t] == 0) {
      EXPECT_EQ(counts[t], 0) << "token " << t << " was filtered out but drawn";
      continue;
    }
    ++kept;
    const double expected = p[t] * draws;
    chi2 += (counts[t] - expected) * (counts[t] - expected) / expected;
  }
  EXPECT_EQ(kept, 5);
  EXPECT_LT(chi2, 18.47);  // the 99.9 % point of chi-square with 4 degrees of freedom
}

TEST(DrawToken, SameSeedSameDraws) {
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  std::mt19937_64 a(7), b(7), c(8);
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 64; ++i) {
    da.push_back(draw_token(p, a));
    db.push_back(draw_token(p, b));
    dc.push_back(draw_token(p, c));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

// ---- sampling, stop strings and option checks through the engine -------------------------------------------------

class EngineDecoding : public ::testing::Test {
 protected:
  void SetUp() override {
    engine = &engine_for("pg1_f32");
    base.images.push_back(decode_image_file((kDecoding / "shapes_a.png").string()));
    base.prompt = "caption en";
    base.max_tokens = 10;
    greedy = engine->generate(base).tokens;
    ASSERT_EQ(greedy.size(), 10u);
  }
  std::vector<int32_t> sample(double temperature, int64_t top_k, double top_p, uint64_t seed) const {
    GenerateRequest req = base;
    req.sample = true;
    req.temperature = temperature;
    req.top_k = top_k;
    req.top_p = top_p;
    req.seed = seed;
    return engine->generate(req).tokens;
  }
  const Engine* engine = nullptr;
  GenerateRequest base;
  std::vector<int32_t> greedy;
};

TEST_F(EngineDecoding, DegenerateSamplingIsGreedy) {
  EXPECT_EQ(sample(1.0, 1, 1.0, 3), greedy);   // top-k 1
  EXPECT_EQ(sample(1e-4, 0, 1.0, 3), greedy);  // temperature -> 0
  EXPECT_EQ(sample(0.0, 0, 1.0, 3), greedy);   // temperature 0 means greedy
  EXPECT_EQ(sample(1.0, 0, 1e-9, 3), greedy);  // top-p keeps only the most probable token
}

TEST_F(EngineDecoding, SeedsRepeatAndDiffer) {
  const std::vector<int32_t> a = sample(1.5, 0, 1.0, 1);
  EXPECT_EQ(sample(1.5, 0, 1.0, 1), a);
  EXPECT_NE(sample(1.5, 0, 1.0, 2), a);
  EXPECT_NE(a, greedy);
}

TEST_F(EngineDecoding, StopStringEndsTheTextBeforeIt) {
  // The stop string is what the 4th greedy token adds to the text: generation ends at the first token whose
  // text contains it, and the text is cut where it starts.
  std::vector<std::string> prefix_text;
  for (size_t n = 0; n <= greedy.size(); ++n)
    prefix_text.push_back(engine->decode(std::vector<int32_t>(greedy.begin(), greedy.begin() + long(n))));
  const std::string stop = prefix_text[4].substr(prefix_text[3].size());
  ASSERT_FALSE(stop.empty());
  size_t ends_at = 0;
  while (prefix_text[ends_at].find(stop) == std::string::npos) ++ends_at;
  GenerateRequest req = base;
  req.stop = {"a string that never appears", stop};
  const GenerateResult r = engine->generate(req);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + long(ends_at)));
  EXPECT_EQ(r.text, prefix_text[ends_at].substr(0, prefix_text[ends_at].find(stop)));
  EXPECT_EQ(r.finish_reason, FinishReason::Stop);

  req.stop = {"a string that never appears"};
  const GenerateResult full = engine->generate(req);
  EXPECT_EQ(full.tokens, greedy);
  EXPECT_EQ(full.finish_reason, FinishReason::MaxTokens);
}

TEST_F(EngineDecoding, StopStringInBeamSearch) {
  GenerateRequest req = base;
  req.beams = 3;
  const GenerateResult plain = engine->generate(req);
  const std::string text = engine->decode(std::vector<int32_t>(plain.tokens.begin(), plain.tokens.begin() + 3));
  req.stop = {text.substr(text.size() - 1)};
  const GenerateResult r = engine->generate(req);
  EXPECT_EQ(r.text.find(req.stop[0]), std::string::npos);
  EXPECT_NE(engine->decode(r.tokens).find(req.stop[0]), std::string::npos) << "ended for another reason";
  EXPECT_EQ(r.finish_reason, FinishReason::Stop);
}

TEST_F(EngineDecoding, WeightsCopiedIntoMemoryGiveTheSameLogits) {
  LoadOptions options;
  options.copy_weights = true;
  const auto copied = Engine::load((kFixtures / "models" / "pg1_f32").string(), options);
  GenerateRequest req = base;
  req.keep_logits = true;
  const GenerateResult a = engine->generate(req), b = copied->generate(req);
  EXPECT_EQ(b.tokens, greedy);
  EXPECT_EQ(b.logits, a.logits);

  options.lazy_load = true;
  EXPECT_NE(test::error_of([&] { Engine::load((kFixtures / "models" / "pg1_f32").string(), options); }).find("exclude"),
            std::string::npos);
}

TEST_F(EngineDecoding, BadOptionsAreErrors) {
  auto with = [&](auto change) {
    GenerateRequest req = base;
    change(req);
    return req;
  };
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.beams = 0; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.beams = 100000; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.beams = 2, r.sample = true; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.sample = true, r.temperature = -1; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.sample = true, r.top_p = 0; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.sample = true, r.top_p = 1.5; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.sample = true, r.top_k = -1; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.stop = {""}; })), Error);
  EXPECT_THROW(engine->generate(with([](GenerateRequest& r) { r.length_penalty = NAN; })), Error);
}

}  // namespace
}  // namespace pg
