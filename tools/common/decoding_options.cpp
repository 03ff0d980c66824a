#include "decoding_options.h"

#include <cmath>
#include <limits>

namespace pg::tools {

using nlohmann::json;

namespace {

// How a source spells a field in its messages.
enum class Spelling { Json, Flag };

class Fields {
 public:
  Fields(const json& object, Spelling spelling, std::string max_tokens_key)
      : object_(object), spelling_(spelling), max_tokens_key_(std::move(max_tokens_key)) {}

  std::string name(const std::string& key) const {
    const std::string& k = key == "max_tokens" ? max_tokens_key_ : key;
    if (spelling_ == Spelling::Json) return "\"" + k + "\"";
    std::string flag = "--" + k;
    for (char& c : flag)
      if (c == '_') c = '-';
    return flag;
  }
  const json* find(const std::string& key) const {
    auto it = object_.find(key == "max_tokens" ? max_tokens_key_ : key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  [[noreturn]] void fail(const std::string& message) const { throw DecodingOptionsError(message); }
  // ", got VALUE" for a message, cut short: a request body may hold megabytes where a number belongs.
  static std::string got(const json& value) {
    const std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    return ", got " + (text.size() > 40 ? text.substr(0, 40) + "..." : text);
  }

  // A whole number in [lo, hi]; json's own get<>() would cast 2.5 or wrap 1e300.
  template <typename T>
  T whole(const std::string& key, T fallback, T lo, T hi) const {
    const json* v = find(key);
    if (!v) return fallback;
    const std::string bad =
        name(key) + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + got(*v);
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      if (u > uint64_t(hi) || (lo > 0 && u < uint64_t(lo))) fail(bad);
      return T(u);
    }
    if (v->is_number_integer()) {
      const int64_t i = v->get<int64_t>();
      if (i < 0 ? (!std::numeric_limits<T>::is_signed || i < int64_t(lo)) : (uint64_t(i) > uint64_t(hi) || T(i) < lo)) fail(bad);
      return T(i);
    }
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (!(d == std::floor(d) && d >= double(lo) && d <= double(hi) &&
            d < std::ldexp(1.0, std::numeric_limits<T>::digits)))
        fail(bad);
      return T(d);
    }
    fail(bad);
  }
  double number(const std::string& key, double fallback, const std::string& range, bool (*in_range)(double)) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number() || !in_range(v->get<double>())) fail(name(key) + " must be a number " + range + got(*v));
    return v->get<double>();
  }
  bool boolean(const std::string& key) const {
    const json* v = find(key);
    if (!v) return false;
    if (!v->is_boolean()) fail(name(key) + " must be true or false" + got(*v));
    return v->get<bool>();
  }
  std::vector<std::string> strings(const std::string& key) const {
    const json* v = find(key);
    std::vector<std::string> out;
    if (!v) return out;
    const std::string bad = name(key) + " must be a string or a list of strings";
    if (v->is_string()) {
      out.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const json& s : *v) {
        if (!s.is_string()) fail(bad);
        out.push_back(s.get<std::string>());
      }
    } else {
      fail(bad);
    }
    for (const std::string& s : out)
      if (s.empty()) fail("a stop string must not be empty");
    return out;
  }

 private:
  const json& object_;
  Spelling spelling_;
  std::string max_tokens_key_;
};

DecodingOptions read(const Fields& f, const DecodingLimits& limits) {
  DecodingOptions d;
  d.max_tokens = f.whole<int64_t>("max_tokens", 64, 1, limits.max_tokens);
  d.ignore_eos = f.boolean("ignore_eos");
  d.beams = f.whole<int>("beams", 1, 1, kMaxBeams);
  d.sample = f.has("temperature") || f.has("top_k") || f.has("top_p");
  const std::string sampling_fields = f.name("temperature") + ", " + f.name("top_k") + " or " + f.name("top_p");
  if (d.beams > 1 && d.sample) f.fail("beam search does not sample: give " + f.name("beams") + " or " + sampling_fields + ", not both");
  if (f.has("length_penalty") && d.beams == 1) f.fail(f.name("length_penalty") + " applies to " + f.name("beams") + " > 1 only");
  if (f.has("seed") && !d.sample) f.fail(f.name("seed") + " applies to sampling only (give " + sampling_fields + ")");
  d.length_penalty = f.number("length_penalty", 1.0, "from -100 to 100",
                              [](double v) { return std::fabs(v) <= kMaxLengthPenalty; });
  d.temperature = f.number("temperature", 1.0, "from 0 (greedy) to 100",
                           [](double v) { return v >= 0 && v <= kMaxTemperature; });
  d.top_k = f.whole<int64_t>("top_k", 0, 0, int64_t{1} << 31);
  d.top_p = f.number("top_p", 1.0, "in (0, 1]", [](double v) { return v > 0 && v <= 1; });
  d.seed = f.whole<uint64_t>("seed", 0, 0, std::numeric_limits<uint64_t>::max());
  d.stop = f.strings("stop");
  return d;
}

}  // namespace

const std::vector<std::string>& decoding_keys() {
  static const std::vector<std::string> keys = {"max_tokens", "beams", "length_penalty", "temperature", "top_k",
                                                "top_p",      "seed",  "stop",           "ignore_eos"};
  return keys;
}

DecodingOptions decoding_options_from_json(const json& request, const DecodingLimits& limits,
                                           const std::string& max_tokens_key) {
  return read(Fields(request, Spelling::Json, max_tokens_key), limits);
}

DecodingOptions decoding_options_from_flags(const FlagValues& values, const DecodingLimits& limits) {
  // The flags become the JSON fields they stand for: numbers where the value reads as one (else the
  // string, which the number checks then refuse), a list for --stop, true for --ignore-eos.
  json fields = json::object();
  const Fields naming(fields, Spelling::Flag, "max_tokens");
  for (const std::string& key : decoding_keys()) {
    const std::string flag = naming.name(key);
    const std::vector<std::string> given = values(flag);
    if (given.empty()) continue;
    if (key == "ignore_eos") {
      fields[key] = true;
    } else if (key == "stop") {
      fields[key] = given;
    } else {
      if (given.size() > 1) throw DecodingOptionsError("option " + flag + " given more than once");
      const json number = json::parse(given[0], nullptr, false);
      fields[key] = number.is_number() ? number : json(given[0]);
    }
  }
  return read(Fields(fields, Spelling::Flag, "max_tokens"), limits);
}

}  // namespace pg::tools
