// The `paligemma` command-line program: dispatches to one subcommand per file (tools/cli/*_command.cpp).
#include <omp.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "args.h"
#include "commands.h"
#include "paligemma/error.h"
#include "paligemma/system.h"

namespace {

const char* const kOverview =
    "usage: paligemma COMMAND [options]      (paligemma COMMAND --help: that command's options)\n"
    "  generate   images + a prompt -> text, boxes and masks\n"
    "  batch      one JSON request per line -> one JSON result per line, resumable\n"
    "  serve      HTTP server: JSON API, OpenAI-compatible chat completions, a browser page\n"
    "  parse      boxes and masks of detect / segment output, without a model\n"
    "  quantize   8- or 4-bit GGUF file of a model\n"
    "  paligemma --version: version, build and the kernels this CPU runs\n\n";

// `paligemma --version`: what was built and what this machine will run.
void print_version() {
  std::cout << "paligemma " << PG_VERSION << "\n"
            << "build: " << PG_BUILD_TYPE << ", " << PG_COMPILER << "\n"
            << "kernels: " << pg::kernel_level() << " (best this CPU supports: " << pg::best_kernel_level()
            << "; PG_ISA=<level> chooses another)\n"
            << "threads: " << omp_get_max_threads() << " by default; OpenMP wait policy "
            << (std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "libgomp's default")
            << (std::getenv("GOMP_SPINCOUNT") ? std::string(", GOMP_SPINCOUNT ") + std::getenv("GOMP_SPINCOUNT") : "")
            << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  // libgomp's default wait policy spins a waiting thread for a while; when another process holds one of the
  // cores, the spinning thread burns the time slice that the thread it waits for needs (a batch of the
  // embedded model ran 3-6 times slower beside a busy loop; docs/tables/batch_bench.md). libgomp reads the
  // policy once, while the program loads, so the program sets it and executes itself again; a policy or
  // GOMP_SPINCOUNT the user set is kept. If the exec fails, it runs on with libgomp's default.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
  }
  using namespace pg::cli;
  const std::map<std::string, int (*)(int, char**)> commands = {
      {"generate", run_generate},
      {"serve", run_serve},
      {"batch", run_batch},
      {"parse", run_parse},
      {"quantize", run_quantize},
  };
  try {
    if (argc < 2) throw UsageError("missing command");
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kOverview;
      for (const char* usage : {kGenerateUsage, kBatchUsage, kServeUsage, kParseUsage, kQuantizeUsage})
        std::cout << usage << "\n";
      return 0;
    }
    if (cmd == "--version" || cmd == "version") {
      print_version();
      return 0;
    }
    auto it = commands.find(cmd);
    if (it == commands.end()) throw UsageError("unknown command \"" + cmd + "\"");
    return it->second(argc, argv);
  } catch (const HelpRequested& help) {
    std::cout << help.usage;
    return 0;
  } catch (const UsageError& e) {
    const bool known = argc >= 2 && commands.count(argv[1]);
    std::cerr << "paligemma: " << e.what() << " (see paligemma " << (known ? std::string(argv[1]) + " " : "")
              << "--help)\n";
    return 2;
  } catch (const pg::Error& e) {
    std::cerr << "paligemma: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "paligemma: out of memory (try a smaller model, fewer images or fewer --max-tokens)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "paligemma: unexpected error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "paligemma: unexpected error of an unknown kind\n";
    return 1;
  }
}
