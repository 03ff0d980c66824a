// The mask decoder read from an .npz archive (big_vision's vae-oid.npz, or the `vae.npz` a model directory
// or a quantized file carries): paligemma/tasks.h's load_mask_decoder and load_model_mask_decoder.
#include <filesystem>
#include <map>

#include "core/file.h"
#include "formats/gguf.h"
#include "formats/npz.h"
#include "loader/checkpoint.h"
#include "model/mask_decoder.h"
#include "paligemma/tasks.h"

namespace pg {

std::shared_ptr<const MaskDecoder> load_mask_decoder(const std::string& npz_path) {
  const NpzFile npz(npz_path);
  // The arrays stay alive until the decoder has copied them.
  std::map<std::string, std::pair<NpyArray, StoredTensor>> arrays;
  const TensorLookup lookup = [&](const std::string& key) -> const StoredTensor* {
    if (!npz.contains(key)) return nullptr;
    auto [it, added] = arrays.try_emplace(key);
    if (added) {
      it->second.first = npz.read_f32(key);
      it->second.second = {DType::F32, it->second.first.shape, it->second.first.bytes.data()};
    }
    return &it->second.second;
  };
  return std::make_shared<const MaskDecoder>(npz.path(), lookup);
}

std::shared_ptr<const MaskDecoder> load_model_mask_decoder(const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(model, ec)) {
    const GgufFile gguf(model);
    if (!gguf.has(kGgufVaeKey)) return nullptr;
    // The .npz reader opens by path; the decoder copies what it reads, so the in-memory file may go after.
    const MemoryFile vae(gguf.bytes(kGgufVaeKey), "vae.npz");
    return load_mask_decoder(vae.path());
  }
  const fs::path bundled = fs::path(model) / "vae.npz";
  return fs::is_regular_file(bundled, ec) ? load_mask_decoder(bundled.string()) : nullptr;
}

}  // namespace pg
