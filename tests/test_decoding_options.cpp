// The one parser of decoding options (tools/common/decoding_options.h): a request means the same decoding
// whether it comes as flags (generate), a JSON line (batch) or a JSON body (serve).
#include <gtest/gtest.h>

#include <map>

#include "common/decoding_options.h"

namespace pg::tools {
namespace {

using nlohmann::json;

DecodingOptions from_flags(const std::map<std::string, std::vector<std::string>>& flags,
                           const DecodingLimits& limits = {}) {
  return decoding_options_from_flags(
      [&](const std::string& flag) {
        auto it = flags.find(flag);
        return it == flags.end() ? std::vector<std::string>{} : it->second;
      },
      limits);
}

void expect_same(const DecodingOptions& a, const DecodingOptions& b) {
  EXPECT_EQ(a.max_tokens, b.max_tokens);
  EXPECT_EQ(a.ignore_eos, b.ignore_eos);
  EXPECT_EQ(a.beams, b.beams);
  EXPECT_EQ(a.length_penalty, b.length_penalty);
  EXPECT_EQ(a.sample, b.sample);
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.top_k, b.top_k);
  EXPECT_EQ(a.top_p, b.top_p);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.stop, b.stop);
}

TEST(DecodingOptions, FlagsAndJsonMeanTheSame) {
  expect_same(from_flags({}), decoding_options_from_json(json::object()));
  expect_same(from_flags({{"--top-k", {"40"}}}), decoding_options_from_json({{"top_k", 40}}));
  expect_same(from_flags({{"--max-tokens", {"9"}}, {"--beams", {"3"}}, {"--length-penalty", {"0.5"}},
                          {"--stop", {"a", "b"}}, {"--ignore-eos", {""}}}),
              decoding_options_from_json(
                  {{"max_tokens", 9}, {"beams", 3}, {"length_penalty", 0.5}, {"stop", {"a", "b"}}, {"ignore_eos", true}}));
  expect_same(from_flags({{"--temperature", {"0.7"}}, {"--top-p", {"0.9"}}, {"--seed", {"5"}}}),
              decoding_options_from_json({{"temperature", 0.7}, {"top_p", 0.9}, {"seed", 5}}));
}

TEST(DecodingOptions, AnySamplingFieldSamples) {
  EXPECT_FALSE(decoding_options_from_json(json::object()).sample);
  for (const char* key : {"temperature", "top_k", "top_p"}) {
    const DecodingOptions d = decoding_options_from_json({{key, 1}});
    EXPECT_TRUE(d.sample) << key;
  }
  EXPECT_EQ(decoding_options_from_json({{"top_k", 40}}).temperature, 1.0);  // top_k alone: temperature 1
  EXPECT_FALSE(decoding_options_from_json({{"top_k", nullptr}}).sample);   // null is absent
}

TEST(DecodingOptions, OneBeamLimit) {
  EXPECT_EQ(decoding_options_from_json({{"beams", kMaxBeams}}).beams, kMaxBeams);
  EXPECT_THROW(decoding_options_from_json({{"beams", kMaxBeams + 1}}), DecodingOptionsError);
  EXPECT_THROW(from_flags({{"--beams", {std::to_string(kMaxBeams + 1)}}}), DecodingOptionsError);
}

TEST(DecodingOptions, ErrorsNameTheFieldAsSpelled) {
  auto message = [](auto&& parse) {
    try {
      parse();
    } catch (const DecodingOptionsError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message([] { decoding_options_from_json({{"top_k", -1}}); }),
            "\"top_k\" must be a whole number from 0 to 2147483648, got -1");
  EXPECT_EQ(message([] { from_flags({{"--top-k", {"x"}}}); }), "--top-k must be a whole number from 0 to 2147483648, got \"x\"");
  EXPECT_EQ(message([] { decoding_options_from_json({{"max_completion_tokens", 0}}, {}, "max_completion_tokens"); }),
            "\"max_completion_tokens\" must be a whole number from 1 to 1048576, got 0");
  EXPECT_NE(message([] { decoding_options_from_json({{"seed", 1}}); }).find("applies to sampling only"),
            std::string::npos);
  EXPECT_NE(message([] { from_flags({{"--beams", {"2"}}, {"--top-p", {"0.5"}}}); }).find("does not sample"),
            std::string::npos);
  EXPECT_NE(message([] { decoding_options_from_json({{"length_penalty", 2}}); }).find("\"beams\" > 1 only"),
            std::string::npos);
  EXPECT_EQ(message([] { decoding_options_from_json({{"stop", {""}}}); }), "a stop string must not be empty");
  EXPECT_EQ(message([] { decoding_options_from_json({{"temperature", 101}}); }),
            "\"temperature\" must be a number from 0 (greedy) to 100, got 101");
  EXPECT_EQ(message([] { decoding_options_from_json({{"max_tokens", 2.5}}); }),
            "\"max_tokens\" must be a whole number from 1 to 1048576, got 2.5");
  EXPECT_EQ(message([] { decoding_options_from_json({{"max_tokens", 1e300}}); }),
            "\"max_tokens\" must be a whole number from 1 to 1048576, got 1e+300");
  EXPECT_EQ(message([] { decoding_options_from_json({{"max_tokens", 2000}}, DecodingLimits{1024}); }),
            "\"max_tokens\" must be a whole number from 1 to 1024, got 2000");
  EXPECT_EQ(message([] { decoding_options_from_json({{"beams", std::string(100, '9')}}); }),
            "\"beams\" must be a whole number from 1 to 8, got \"" + std::string(39, '9') + "...");
}

}  // namespace
}  // namespace pg::tools
