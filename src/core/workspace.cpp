#include "core/workspace.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace pg {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMinBlockBytes = size_t{1} << 16;

}  // namespace

void Workspace::Block::Free::operator()(void* p) const { std::free(p); }

float* Workspace::floats(size_t n) {
  const size_t bytes = std::max<size_t>(1, (n * sizeof(float) + kAlignment - 1) / kAlignment) * kAlignment;
  if (blocks_.empty() || used_ + bytes > blocks_[current_].bytes) {
    if (!blocks_.empty()) {
      before_ += blocks_[current_].bytes;
      ++current_;
    }
    // The blocks after the current one are free (buffers are released in stack order); reuse the next
    // one if it is big enough, else replace them with one that is.
    if (current_ >= blocks_.size() || blocks_[current_].bytes < bytes) {
      blocks_.resize(current_);
      const size_t block_bytes = std::max({bytes, kMinBlockBytes, capacity_bytes()});
      void* p = std::aligned_alloc(kAlignment, block_bytes);
      if (!p) throw std::bad_alloc();
      blocks_.push_back(Block{std::unique_ptr<std::byte, Block::Free>(static_cast<std::byte*>(p)), block_bytes});
      ++allocations_;
    }
    used_ = 0;
  }
  float* p = reinterpret_cast<float*>(blocks_[current_].data.get() + used_);
  used_ += bytes;
  high_water_ = std::max(high_water_, before_ + used_);
  return p;
}

void Workspace::release(size_t block, size_t used) {
  current_ = block;
  used_ = used;
  before_ = 0;
  for (size_t b = 0; b < block && b < blocks_.size(); ++b) before_ += blocks_[b].bytes;
  --open_frames_;
  if (open_frames_ == 0 && blocks_.size() > 1) {
    // The call outgrew the first block: from now on one block holds everything it needed at once. (Out of
    // memory here, in a destructor, the blocks stay as they are.)
    void* p = std::aligned_alloc(kAlignment, high_water_);
    if (!p) return;
    blocks_.clear();
    blocks_.push_back(Block{std::unique_ptr<std::byte, Block::Free>(static_cast<std::byte*>(p)), high_water_});
    ++allocations_;
    current_ = 0;
    used_ = 0;
    before_ = 0;
  }
}

size_t Workspace::capacity_bytes() const {
  size_t total = 0;
  for (const Block& b : blocks_) total += b.bytes;
  return total;
}

}  // namespace pg
