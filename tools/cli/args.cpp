#include "args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace pg::cli {

namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::string> kShortFlags = {
    {"-m", "--model"}, {"-p", "--prompt"}, {"-n", "--max-tokens"}, {"-t", "--threads"}};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// " (did you mean --x?)" for the known flag nearest to `given`, when it is near enough to be a typo.
std::string suggestion(const std::string& given, const std::map<std::string, bool>& takes_value) {
  std::string best;
  size_t best_distance = std::max<size_t>(3, given.size() / 3) + 1;
  for (const auto& [flag, value] : takes_value) {
    const size_t d = edit_distance(given, flag);
    if (d < best_distance) best_distance = d, best = flag;
  }
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

// Whether `usage` names `flag` as a whole word ("--image" is not named by "--image-cache-mb").
bool names_flag(const std::string& usage, const std::string& flag) {
  for (size_t at = usage.find(flag); at != std::string::npos; at = usage.find(flag, at + 1)) {
    const char next = at + flag.size() < usage.size() ? usage[at + flag.size()] : ' ';
    if (!(std::isalnum(static_cast<unsigned char>(next)) || next == '-')) return true;
  }
  return false;
}

}  // namespace

Args::Args(int argc, char** argv, int first, const std::map<std::string, bool>& takes_value, const char* usage) {
  for (int i = first; i < argc; ++i) {
    const std::string given = argv[i];
    if (given == "--help" || given == "-h") {
      for (const auto& [flag, value] : takes_value)
        if (!names_flag(usage, flag)) throw std::logic_error("the usage text does not name " + flag);
      throw HelpRequested{usage};
    }
  }
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (auto s = kShortFlags.find(a); s != kShortFlags.end() && takes_value.count(s->second)) a = s->second;
    auto it = takes_value.find(a);
    if (it == takes_value.end()) throw UsageError("unknown option " + a + suggestion(a, takes_value));
    if (it->second) {
      if (i + 1 >= argc) throw UsageError("option " + a + " needs a value");
      values_[a].push_back(argv[++i]);
    } else {
      values_[a].push_back("");
    }
  }
}

const std::vector<std::string>& Args::all(const std::string& name) const {
  static const std::vector<std::string> none;
  auto it = values_.find(name);
  return it == values_.end() ? none : it->second;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  const auto& v = all(name);
  if (v.size() > 1) throw UsageError("option " + name + " given more than once");
  return v.empty() ? fallback : v[0];
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  const std::string s = get(name);
  if (s.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end || end == s.c_str() || v < lo || v > hi)
    throw UsageError("option " + name + " needs a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", got \"" + s + "\"");
  return v;
}

double Args::get_double(const std::string& name, double fallback, double lo, double hi) const {
  const std::string s = get(name);
  if (s.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno || *end || end == s.c_str() || !std::isfinite(v) || v < lo || v > hi)
    throw UsageError("option " + name + " needs a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got \"" + s + "\"");
  return v;
}

std::string default_model_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "paligemma" / "default-model";
    if (fs::is_directory(installed)) return installed.string();
  }
  return PG_DEFAULT_MODEL_DIR;
}

std::string model_dir_from(const Args& args) { return args.get("--model", default_model_dir()); }

}  // namespace pg::cli
