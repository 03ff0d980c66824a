// Reference parity: the engine against what transformers computed for the committed fixture cases
// (tests/fixtures/cases/*, made by tools/reference/make_fixtures.py): pixels, prompt ids, the vision
// tower, every step's logits and the greedy tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "loader/checkpoint.h"
#include "formats/npy.h"
#include "model/paligemma.h"
#include "paligemma/engine.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// PG_PARITY_FIXTURES points the suite at another fixture root, e.g. checkpoints made with other seeds and
// shapes by tools/reference/make_fixtures.py --out DIR.
const fs::path kFixtures = std::getenv("PG_PARITY_FIXTURES") ? std::getenv("PG_PARITY_FIXTURES") : PG_FIXTURES_DIR;

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  if (fs::is_directory(kFixtures / "cases"))
    for (const auto& e : fs::directory_iterator(kFixtures / "cases"))
      if (fs::exists(e.path() / "case.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> vision_case_names() {
  std::vector<std::string> names;
  for (const std::string& n : case_names())
    if (fs::exists(kFixtures / "cases" / n / "vision_features.npy")) names.push_back(n);
  return names;
}

const Engine& engine_for(const std::string& model) {
  static std::map<std::string, std::unique_ptr<Engine>> engines;
  auto& e = engines[model];
  if (!e) e = Engine::load((kFixtures / "models" / model).string());
  return *e;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

// Largest |a - b| relative to the largest |b|.
double relative_max_diff(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

TEST(Parity, FixturesArePresent) {
  // Guards against a checkout without fixtures silently running no parity test.
  EXPECT_GE(case_names().size(), 8u);
  EXPECT_GE(vision_case_names().size(), 3u);
}

class ParityCase : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir = kFixtures / "cases" / GetParam();
    c = read_json(dir / "case.json");
    engine = &engine_for(c.at("model").get<std::string>());
    for (const auto& img : c.at("images")) images.push_back(decode_image_file((dir / img.get<std::string>()).string()));
    const std::string dtype = engine->info().weight_dtype;
    logit_tolerance = dtype == "F32" ? 1e-4 : 1e-2;
  }
  fs::path dir;
  json c;
  const Engine* engine = nullptr;
  std::vector<ImageRGB8> images;
  double logit_tolerance = 0;
};

TEST_P(ParityCase, PixelValues) {
  const NpyArray ref = read_npy((dir / "pixel_values.npy").string());
  ASSERT_EQ(ref.shape[0], int64_t(images.size()));
  const std::vector<float> expected = ref.as_f32();
  const size_t per_image = expected.size() / images.size();
  for (size_t i = 0; i < images.size(); ++i) {
    const std::vector<float> got = engine->preprocess(images[i]);
    ASSERT_EQ(got.size(), per_image);
    const std::string name = c["images"][i].get<std::string>();
    const bool lossless = name.size() > 4 && name.substr(name.size() - 4) == ".png";
    // PNG must match exactly; lossy formats within one uint8 level (2/255 after scaling to [-1, 1]).
    const float tolerance = lossless ? 0.f : 2.f / 255.f + 1e-6f;
    float worst = 0;
    for (size_t k = 0; k < per_image; ++k) worst = std::max(worst, std::fabs(got[k] - expected[i * per_image + k]));
    EXPECT_LE(worst, tolerance) << name;
  }
}

TEST_P(ParityCase, PromptIds) {
  const std::vector<int32_t> ids = engine->prompt_ids(images.size(), c.at("prompt").get<std::string>());
  EXPECT_EQ(ids, c.at("input_ids").get<std::vector<int32_t>>());
}

TEST_P(ParityCase, LogitsAndGreedyTokens) {
  GenerateRequest req;
  req.images = images;
  req.prompt = c.at("prompt").get<std::string>();
  req.max_tokens = c.at("max_new_tokens").get<int64_t>();
  req.keep_logits = true;
  const GenerateResult r = engine->generate(req);
  const auto expected = c.at("generated").get<std::vector<int32_t>>();
  const auto margins = c.at("top2_margin").get<std::vector<double>>();
  const NpyArray ref = read_npy((dir / "logits.npy").string());
  const std::vector<float> ref_logits = ref.as_f32();
  const size_t vocab = size_t(ref.shape[1]);
  ASSERT_EQ(size_t(ref.shape[0]), expected.size());
  ASSERT_GE(r.tokens.size(), 1u);
  // Compare step by step while both runs follow the same tokens. A different choice is only acceptable
  // where the reference's top-2 margin is within the numerical tolerance (a tie at this precision);
  // after such a step the two runs legitimately continue differently.
  for (size_t s = 0; s < expected.size(); ++s) {
    ASSERT_LT(s, r.tokens.size()) << "generation stopped early";
    const float* want = ref_logits.data() + s * vocab;
    ASSERT_EQ(r.logits[s].size(), vocab);
    const double scale = *std::max_element(want, want + vocab, [](float a, float b) { return std::fabs(a) < std::fabs(b); });
    const double d = relative_max_diff(r.logits[s].data(), want, vocab);
    EXPECT_LE(d, logit_tolerance) << "step " << s;
    if (r.tokens[s] != expected[s]) {
      EXPECT_LE(margins[s], 2 * logit_tolerance * std::fabs(scale))
          << "step " << s << ": chose " << r.tokens[s] << " instead of " << expected[s] << " although the reference's margin is "
          << margins[s];
      return;
    }
  }
  EXPECT_EQ(r.tokens, expected);  // same length: stopped at <eos> (or the limit) exactly when the reference did
}

// Recorded for the first case of each model only.
class VisionParityCase : public ParityCase {};

TEST_P(VisionParityCase, VisionTowerAndProjector) {
  const Checkpoint ckpt((kFixtures / "models" / c.at("model").get<std::string>()).string());
  const PaliGemmaModel model(ckpt.config(), bind_weights(ckpt.config(), ckpt.lookup()));
  const std::vector<float> ref_features = read_npy((dir / "vision_features.npy").string()).as_f32();
  const std::vector<float> ref_embeds = read_npy((dir / "image_embeds.npy").string()).as_f32();
  std::vector<float> features, embeds;
  for (const ImageRGB8& image : images) {
    const std::vector<float> px = engine->preprocess(image);
    const auto f = model.vision_features(px.data());
    const auto e = model.image_embeddings(px.data());
    features.insert(features.end(), f.begin(), f.end());
    embeds.insert(embeds.end(), e.begin(), e.end());
  }
  ASSERT_EQ(features.size(), ref_features.size());
  ASSERT_EQ(embeds.size(), ref_embeds.size());
  EXPECT_LE(relative_max_diff(features.data(), ref_features.data(), features.size()), logit_tolerance);
  EXPECT_LE(relative_max_diff(embeds.data(), ref_embeds.data(), embeds.size()), logit_tolerance);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& i) {
  std::string name = i.param;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ParityCase, ::testing::ValuesIn(case_names()), test_name);
INSTANTIATE_TEST_SUITE_P(Fixtures, VisionParityCase, ::testing::ValuesIn(vision_case_names()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ParityCase);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(VisionParityCase);

}  // namespace
}  // namespace pg
