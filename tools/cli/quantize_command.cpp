// `paligemma quantize`: a hub checkpoint -> one GGUF file with 8- or 4-bit block-quantized weights.
#include <iostream>

#include "args.h"
#include "commands.h"
#include "paligemma/quantize.h"

namespace pg::cli {

int run_quantize(int argc, char** argv) {
  const Args args(argc, argv, 2, {{"--model", true}, {"--type", true}, {"--output", true}, {"--threads", true}},
                  kQuantizeUsage);
  if (!args.has("--type")) throw UsageError("quantize needs --type q8_0 or q4_0");
  if (!args.has("--output")) throw UsageError("quantize needs --output FILE.gguf");
  const std::string type_name = args.get("--type");
  if (type_name != "q8_0" && type_name != "q4_0")
    throw UsageError("unknown --type \"" + type_name + "\" (use q8_0 or q4_0)");
  const QuantizeSummary s = quantize_model(model_dir_from(args), type_name, args.get("--output"),
                                           int(args.get_int("--threads", 0, 1, 1024)));
  std::cerr << "paligemma: wrote " << args.get("--output") << " (" << s.file_bytes / 1e9 << " GB): "
            << s.quantized_tensors << " tensors " << type_name << ", " << s.kept_tensors
            << " kept in their precision";
  if (!s.kept_matrices.empty())
    std::cerr << " (including " << s.kept_matrices.size()
              << " linear weights whose rows are not whole 32-value blocks, e.g. " << s.kept_matrices.front() << ")";
  std::cerr << (s.carries_vae ? "; the model's vae.npz is carried" : "; the model has no vae.npz (no masks)") << "\n";
  return 0;
}

}  // namespace pg::cli
