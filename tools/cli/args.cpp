#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace pg::cli {

namespace fs = std::filesystem;

Args::Args(int argc, char** argv, int first, const std::map<std::string, bool>& takes_value) {
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    auto it = takes_value.find(a);
    if (it == takes_value.end()) throw UsageError("unknown option " + a);
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

std::string vae_path_from(const Args& args, const std::string& model_dir) {
  if (args.has("--vae")) return args.get("--vae");
  const fs::path bundled = fs::path(model_dir) / "vae.npz";
  std::error_code ec;
  return fs::is_regular_file(bundled, ec) ? bundled.string() : "";
}

}  // namespace pg::cli
