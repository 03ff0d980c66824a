// `paligemma serve`: the HTTP server (tools/server/).
#include <filesystem>
#include <iostream>
#include <memory>

#include "../server/server.h"
#include "args.h"
#include "commands.h"
#include "paligemma/engine.h"

namespace pg::cli {

int run_serve(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--model", true}, {"--vae", true}, {"--host", true}, {"--port", true}, {"--api-key", true}, {"--threads", true},
                   {"--max-body-mb", true}, {"--max-image-pixels", true}, {"--max-images", true},
                   {"--max-tokens-limit", true}, {"--max-queue", true}, {"--max-batch", true}, {"--no-mmap", false},
                   {"--image-cache-mb", true}, {"--quiet", false}},
                  kServeUsage);
  server::Options o;
  o.host = args.get("--host", o.host);
  o.port = int(args.get_int("--port", o.port, 0, 65535));
  o.api_key = args.get("--api-key");
  o.quiet = args.has("--quiet");
  o.limits.max_body_bytes = size_t(args.get_int("--max-body-mb", int64_t(o.limits.max_body_bytes >> 20), 1, 4096)) << 20;
  o.limits.max_image_pixels = size_t(args.get_int("--max-image-pixels", int64_t(o.limits.max_image_pixels), 1, int64_t{1} << 31));
  o.limits.max_images = size_t(args.get_int("--max-images", int64_t(o.limits.max_images), 1, 256));
  o.limits.max_tokens = args.get_int("--max-tokens-limit", o.limits.max_tokens, 1, 8192);
  o.limits.max_queue = size_t(args.get_int("--max-queue", int64_t(o.limits.max_queue), 0, 100000));
  o.limits.max_batch = size_t(args.get_int("--max-batch", int64_t(o.limits.max_batch), 1, 256));
  if (const std::string why = server::bind_problem(o.host, o.port); !why.empty()) {
    std::cerr << "paligemma: cannot listen on " << o.host << ":" << o.port << ": " << why << "\n";
    return 1;
  }
  const std::string dir = model_dir_from(args);
  o.model_name = std::filesystem::path(dir).filename().string();
  LoadOptions lo;
  lo.threads = int(args.get_int("--threads", 0, 1, 1024));
  lo.copy_weights = args.has("--no-mmap");
  lo.image_cache_bytes = size_t(args.get_int("--image-cache-mb", 256, 0, 1 << 20)) << 20;
  lo.mask_decoder_path = args.get("--vae");
  const auto engine = Engine::load(dir, lo);
  for (const std::string& note : engine->load_notes()) std::cerr << "paligemma: note: " << note << "\n";
  return server::serve(*engine, engine->mask_decoder(), o);
}

}  // namespace pg::cli
