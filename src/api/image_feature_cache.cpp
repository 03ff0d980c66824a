#include "api/image_feature_cache.h"

#include <cstring>

namespace pg {

uint64_t ImageFeatureCache::hash_of(const ImageRGB8& image) {
  // FNV-1a over the size and the bytes; equal hashes are confirmed by comparing the bytes.
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&h](uint8_t byte) { h = (h ^ byte) * 1099511628211ull; };
  for (int v : {image.width, image.height})
    for (int i = 0; i < 4; ++i) mix(uint8_t(uint32_t(v) >> (8 * i)));
  for (uint8_t byte : image.pixels) mix(byte);
  return h;
}

const ImageFeatureCache::Entry* ImageFeatureCache::find_locked(uint64_t hash, const ImageRGB8& image) {
  const auto [first, last] = index_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    const Entry& e = *it->second;
    if (e.key.width == image.width && e.key.height == image.height && e.key.pixels == image.pixels) {
      entries_.splice(entries_.begin(), entries_, it->second);
      ++stats_.hits;
      return &e;
    }
  }
  return nullptr;
}

ImageFeatureCache::Features ImageFeatureCache::get(const ImageRGB8& model_input,
                                                   const std::function<std::vector<float>()>& compute) {
  if (capacity_bytes_ == 0) return std::make_shared<const std::vector<float>>(compute());
  const uint64_t hash = hash_of(model_input);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const Entry* e = find_locked(hash, model_input)) return e->features;
    ++stats_.misses;
  }
  Features features = std::make_shared<const std::vector<float>>(compute());
  const size_t bytes = features->size() * sizeof(float) + model_input.pixels.size();
  if (bytes > capacity_bytes_) return features;
  std::lock_guard<std::mutex> lock(mutex_);
  if (const Entry* e = find_locked(hash, model_input)) {  // another thread computed it meanwhile
    --stats_.hits;
    return e->features;
  }
  while (stats_.bytes + bytes > capacity_bytes_) {
    const auto oldest = std::prev(entries_.end());
    const auto [first, last] = index_.equal_range(oldest->hash);
    for (auto it = first; it != last; ++it)
      if (it->second == oldest) {
        index_.erase(it);
        break;
      }
    stats_.bytes -= oldest->bytes;
    entries_.erase(oldest);
  }
  entries_.push_front(Entry{hash, model_input, features, bytes});
  index_.emplace(hash, entries_.begin());
  stats_.bytes += bytes;
  return features;
}

ImageFeatureCache::Stats ImageFeatureCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats s = stats_;
  s.entries = entries_.size();
  return s;
}

}  // namespace pg
