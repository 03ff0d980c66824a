// Command-line flag parsing shared by the `paligemma` subcommands.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pg::cli {

// A mistake in how the program was called: reported as one line, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `--help` / `-h` was given: main() prints `usage` on stdout and exits 0.
struct HelpRequested {
  std::string usage;
};

// Flags of one subcommand: "--name value" options and "--name" switches.
class Args {
 public:
  // takes_value: every accepted flag, mapped to whether it takes a value. The short aliases -m, -p, -n and -t
  // stand for --model, --prompt, --max-tokens and --threads where the command has them. An unknown flag is a
  // usage error that suggests the closest known one. `--help` or `-h` anywhere throws HelpRequested with
  // `usage`, after checking that `usage` names every accepted flag (a std::logic_error if not).
  Args(int argc, char** argv, int first, const std::map<std::string, bool>& takes_value, const char* usage);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  const std::vector<std::string>& all(const std::string& name) const;
  // The single value of an option (a repeated option is a usage error), or `fallback`.
  std::string get(const std::string& name, const std::string& fallback = "") const;
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_double(const std::string& name, double fallback, double lo, double hi) const;

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

// The embedded default model: next to an installed binary (../share/paligemma/default-model), else the
// source tree's copy.
std::string default_model_dir();

// The model directory: --model when given, else the embedded default.
std::string model_dir_from(const Args& args);


}  // namespace pg::cli
