// The activation workspace: aligned buffers, released by frames in stack order, grown to the high-water
// mark once and then reused without allocating.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/workspace.h"

namespace pg {
namespace {

bool aligned64(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

// What one call of the model does: an outer frame for the residual stream, a frame per layer.
void run_call(Workspace& ws, size_t residual, size_t per_layer, int layers) {
  Workspace::Frame call(ws);
  float* x = ws.floats(residual);
  x[0] = 1.f;
  x[residual - 1] = 2.f;
  for (int l = 0; l < layers; ++l) {
    Workspace::Frame layer(ws);
    float* a = ws.floats(per_layer);
    float* b = ws.floats(per_layer + 3);
    a[per_layer - 1] = b[0] = b[per_layer + 2] = 3.f;
    ASSERT_TRUE(aligned64(a) && aligned64(b));
    ASSERT_TRUE(a + per_layer <= b || b + per_layer + 3 <= a) << "buffers overlap";
    ASSERT_TRUE(x + residual <= a || a + per_layer <= x) << "a layer buffer overlaps the residual";
  }
  EXPECT_EQ(x[0], 1.f);
  EXPECT_EQ(x[residual - 1], 2.f);
}

TEST(Workspace, BuffersAreAlignedAndDistinct) {
  Workspace ws;
  Workspace::Frame frame(ws);
  float* a = ws.floats(1);
  float* b = ws.floats(17);
  float* c = ws.floats(0);
  EXPECT_TRUE(aligned64(a) && aligned64(b) && aligned64(c));
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
}

TEST(Workspace, AFrameReleasesItsBuffers) {
  Workspace ws;
  Workspace::Frame outer(ws);
  float* kept = ws.floats(100);
  float* first;
  {
    Workspace::Frame inner(ws);
    first = ws.floats(1000);
  }
  Workspace::Frame again(ws);
  EXPECT_EQ(ws.floats(1000), first);  // the same memory, taken anew
  EXPECT_NE(kept, first);
}

TEST(Workspace, GrowsToTheHighWaterMarkThenAllocatesNothing) {
  Workspace ws;
  run_call(ws, 5000, 300000, 4);  // outgrows the first block: several blocks, then one of the high-water size
  const size_t after_first = ws.allocations();
  EXPECT_GE(ws.capacity_bytes(), (5000 + 2 * 300000) * sizeof(float));
  for (int call = 0; call < 3; ++call) run_call(ws, 5000, 300000, 4);
  EXPECT_EQ(ws.allocations(), after_first);
  run_call(ws, 100, 1000, 2);  // a smaller call (a decoding step) fits as well
  EXPECT_EQ(ws.allocations(), after_first);
}

TEST(Workspace, LayersOfOneCallReuseTheirMemory) {
  Workspace ws;
  Workspace::Frame call(ws);
  float* x = ws.floats(10);
  size_t after_first_layer = 0;
  for (int l = 0; l < 5; ++l) {
    {
      Workspace::Frame layer(ws);
      ws.floats(200000);
      ws.floats(400000);
    }
    if (l == 0) after_first_layer = ws.allocations();
  }
  EXPECT_EQ(ws.allocations(), after_first_layer);
  x[9] = 1.f;
}

TEST(Workspace, ACopyStartsEmpty) {
  Workspace ws;
  run_call(ws, 10, 100000, 1);
  const Workspace copy = ws;
  EXPECT_EQ(copy.capacity_bytes(), 0u);
  EXPECT_GT(ws.capacity_bytes(), 0u);
}

}  // namespace
}  // namespace pg
