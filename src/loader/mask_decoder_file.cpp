#include "loader/mask_decoder_file.h"

#include <map>

#include "formats/npz.h"

namespace pg {

MaskDecoder load_mask_decoder(const std::string& npz_path) {
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
  return MaskDecoder(npz.path(), lookup);
}

}  // namespace pg
