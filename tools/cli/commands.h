// Entry points of the `paligemma` subcommands; each returns the process exit code and throws
// UsageError / pg::Error for main() to report.
#pragma once
#include <string>

namespace pg::cli {

int run_generate(int argc, char** argv);
int run_serve(int argc, char** argv);
int run_batch(int argc, char** argv);
int run_parse(int argc, char** argv);
int run_quantize(int argc, char** argv);

// usage.cpp: each command's --help text.
extern const char* const kGenerateUsage;
extern const char* const kBatchUsage;
extern const char* const kServeUsage;
extern const char* const kParseUsage;
extern const char* const kQuantizeUsage;

// parse_command.cpp, shared with generate: the prompt of --prompt TEXT or of --task NAME [--lang L]
// [--objects "a ; b"] [--question TEXT] (exactly one of --prompt and --task), and the note printed when
// segmentation output is parsed without --vae.
class Args;
std::string prompt_from_flags(const Args& args);
extern const char* const kMasksNeedVaeNote;

}  // namespace pg::cli
