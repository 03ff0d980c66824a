// Entry points of the `paligemma` subcommands; each returns the process exit code and throws
// UsageError / pg::Error for main() to report.
#pragma once

namespace pg::cli {

int run_generate(int argc, char** argv);

}  // namespace pg::cli
