// Scratch memory for activations: a bump allocator of 64-byte-aligned float buffers that grows to the
// largest amount a call has needed at once (its high-water mark) and then serves every later call from
// that one block, so that a request allocates nothing per layer and no process-wide allocator tuning is
// needed. Not thread-safe: every concurrent call works in a workspace of its own (a KV cache carries one).
//
//   Workspace ws;
//   {
//     Workspace::Frame frame(ws);          // buffers taken inside the frame are released when it ends
//     float* h = ws.floats(tokens * hidden);
//   }
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace pg {

class Workspace {
 public:
  Workspace() = default;
  // Scratch is no state: a copy (of a KV cache that carries one, say) starts empty.
  Workspace(const Workspace&) {}
  Workspace& operator=(const Workspace&) { return *this; }
  Workspace(Workspace&&) noexcept = default;
  Workspace& operator=(Workspace&&) noexcept = default;

  // n floats, 64-byte aligned, uninitialized, valid until the innermost open Frame ends (with none open,
  // for the workspace's life).
  float* floats(size_t n);

  // Releases, when it ends, every buffer taken since it began. Frames nest; when the outermost ends
  // after the call outgrew the block, the blocks are replaced by one of the high-water size.
  class Frame {
   public:
    explicit Frame(Workspace& ws) : ws_(ws), block_(ws.current_), used_(ws.used_) { ++ws_.open_frames_; }
    ~Frame() { ws_.release(block_, used_); }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

   private:
    Workspace& ws_;
    size_t block_, used_;
  };

  // Bytes held (the high-water mark once a call has run), for tests and diagnostics.
  size_t capacity_bytes() const;
  // How many blocks were allocated over the workspace's life (stays put once it has grown).
  size_t allocations() const { return allocations_; }

 private:
  struct Block {
    struct Free {
      void operator()(void* p) const;
    };
    std::unique_ptr<std::byte, Free> data;
    size_t bytes = 0;
  };
  void release(size_t block, size_t used);

  std::vector<Block> blocks_;
  size_t current_ = 0;  // index of the block being filled
  size_t used_ = 0;     // bytes used in it
  size_t before_ = 0;   // bytes of the blocks before it (all in use while it is being filled)
  size_t high_water_ = 0;  // most bytes in use at once, over all blocks
  size_t open_frames_ = 0;
  size_t allocations_ = 0;
};

}  // namespace pg
