// What this build and this machine run: the kernels' instruction-set level, and files the tools write
// beside the results.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

// The instruction-set level the kernels run ("amx", "avx512bf16", "avx512", "avx2", "scalar"): the best this
// CPU supports, or the one the environment variable PG_ISA names. Decided on the first call; throws pg::Error
// when PG_ISA names an unknown level or one this CPU lacks.
const char* kernel_level();
// The best level this CPU and operating system support.
const char* best_kernel_level();

// Writes float32 values as a NumPy .npy file (C order) of `shape`, e.g. GenerateResult::logits flattened to
// [tokens, vocab]. Throws pg::Error naming the file when it cannot be written.
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// The whole regular file `path` (a FIFO, a device or a directory is refused instead of blocking or reading
// endlessly). Throws pg::Error naming `what` and the path.
std::string read_regular_file(const std::string& path, const std::string& what);

}  // namespace pg
