// Tokenizer and prompt layout against ids recorded from transformers' GemmaTokenizer
// (tests/fixtures/tokenizer/prompt_ids.json) plus hand-worked special-token cases.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "paligemma/error.h"
#include "tasks/prompt.h"
#include "test_util.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(PG_FIXTURES_DIR) / "tokenizer";

const Tokenizer& tokenizer() {
  static Tokenizer t((kDir / "tokenizer.model").string());
  return t;
}

nlohmann::json recorded() {
  std::ifstream in(kDir / "prompt_ids.json");
  return nlohmann::json::parse(in);
}

TEST(Tokenizer, SpecialIdsLookedUpByPiece) {
  const auto r = recorded();
  EXPECT_EQ(tokenizer().bos_id(), r["bos_id"].get<int>());
  EXPECT_EQ(tokenizer().eos_id(), r["eos_id"].get<int>());
  EXPECT_EQ(tokenizer().pad_id(), r["pad_id"].get<int>());
  EXPECT_EQ(tokenizer().size(), r["vocab_size"].get<int>());
  EXPECT_EQ(tokenizer().piece(tokenizer().loc0_id() + 123), "<loc0123>");
  EXPECT_EQ(tokenizer().piece(tokenizer().seg0_id() + 45), "<seg045>");
}

TEST(Tokenizer, MatchesTransformersOnRecordedPrompts) {
  const auto r = recorded();
  ASSERT_GE(r["cases"].size(), 10u);
  for (const auto& c : r["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tokenizer().encode(text), c["ids"].get<std::vector<int32_t>>()) << text;
  }
}

TEST(Tokenizer, LocAndSegAreSingleTokens) {
  const int32_t loc = tokenizer().loc0_id(), seg = tokenizer().seg0_id();
  const auto ids = tokenizer().encode("<loc0001><loc1023><seg127>");
  EXPECT_EQ(ids, (std::vector<int32_t>{loc + 1, loc + 1023, seg + 127}));
}

TEST(Tokenizer, LiteralSpecialTokensBecomeTheirIds) {
  const auto ids = tokenizer().encode("a<eos>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], tokenizer().eos_id());
  EXPECT_EQ(ids, (std::vector<int32_t>{tokenizer().encode("a")[0], tokenizer().eos_id(), tokenizer().encode("b")[0]}));
}

TEST(Tokenizer, DecodeSkipsSpecialAndOutOfVocabularyIds) {
  const auto ids = tokenizer().encode("a cat<loc0512>");
  std::vector<int32_t> generated = {tokenizer().bos_id()};
  generated.insert(generated.end(), ids.begin(), ids.end());
  generated.push_back(tokenizer().size());  // the <image> id, past the SentencePiece vocabulary
  generated.push_back(tokenizer().eos_id());
  EXPECT_EQ(tokenizer().decode(generated), "a cat<loc0512>");
}

TEST(Tokenizer, MissingOrCorruptModelIsAnError) {
  EXPECT_THROW(Tokenizer("/nonexistent/tokenizer.model"), Error);
  const test::TempDir tmp;
  const fs::path bad = tmp / "tokenizer.model";
  std::ofstream(bad) << "not a sentencepiece model";
  EXPECT_THROW(Tokenizer(bad.string()), Error);
}

TEST(Prompt, Layout) {
  const auto ids = build_prompt_ids(tokenizer(), 2152, 3, "caption en");
  std::vector<int32_t> expected = {2152, 2152, 2152, tokenizer().bos_id()};
  const auto text = tokenizer().encode("caption en\n");
  expected.insert(expected.end(), text.begin(), text.end());
  EXPECT_EQ(ids, expected);
  EXPECT_THROW(build_prompt_ids(tokenizer(), 2152, 3, "<image>caption en"), Error);
}

}  // namespace
}  // namespace pg
