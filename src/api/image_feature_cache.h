// Image features (the projector's output rows for one image) of recently seen images. Batch files and
// server clients ask several questions about one image (the demo evaluation asks 13 per scene); a repeat
// skips the vision tower. Keyed by the image as the tower receives it, resized to the model's resolution:
// the features are a function of exactly those bytes, so a hit gives bit for bit what a recomputation
// would. Thread-safe; the least recently used entries leave first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "paligemma/image.h"

namespace pg {

class ImageFeatureCache {
 public:
  using Features = std::shared_ptr<const std::vector<float>>;

  // capacity_bytes: features and keys together; 0 turns the cache off. An entry larger than the whole
  // capacity is computed but not kept.
  explicit ImageFeatureCache(size_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

  // The features of `model_input` (at the model's resolution): the kept ones, or `compute()`'s, which are
  // then kept. `compute` runs without the lock held: two threads missing on one image both compute it,
  // and one result is kept.
  Features get(const ImageRGB8& model_input, const std::function<std::vector<float>()>& compute);

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
    size_t bytes = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    uint64_t hash;
    ImageRGB8 key;
    Features features;
    size_t bytes;
  };
  static uint64_t hash_of(const ImageRGB8& image);
  // The entry holding `image`, moved to the front and counted as a hit, or null. Needs the lock.
  const Entry* find_locked(uint64_t hash, const ImageRGB8& image);

  size_t capacity_bytes_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_multimap<uint64_t, std::list<Entry>::iterator> index_;
  Stats stats_;
};

}  // namespace pg
