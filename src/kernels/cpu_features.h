// Instruction-set levels the kernels are built for, what this CPU supports, and the level in use.
// The level is chosen once, on first use: the best one the CPU (and the operating system) supports, or
// the one named by the environment variable PG_ISA (amx, avx512bf16, avx512, avx2, scalar); naming a
// level the CPU lacks is an error, never a silent fallback.
#pragma once
#include <string_view>

namespace pg {

// Ordered: a CPU that supports a level supports every level below it.
enum class Isa {
  Scalar,      // portable C++ (baseline x86-64 code generation)
  Avx2,        // AVX2 + FMA + F16C
  Avx512,      // AVX-512 F/BW/VL/DQ
  Avx512Bf16,  // + AVX512-BF16 (vdpbf16ps)
  Amx,         // + AMX-TILE/AMX-BF16 (tile permission granted by the kernel)
};

inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx};

const char* isa_name(Isa isa);

// The level named `name` (as PG_ISA spells it); throws pg::Error for an unknown name.
Isa parse_isa(std::string_view name);

// Whether this CPU and operating system can run `isa`'s kernels. Asking about Amx requests the AMX tile
// permission from Linux (arch_prctl ARCH_REQ_XCOMP_PERM) the first time.
bool isa_supported(Isa isa);

// The best supported level.
Isa best_supported_isa();

// The level for a PG_ISA value: best_supported_isa() when it is null or empty, else the level it names;
// throws pg::Error if that is unknown or unsupported.
Isa choose_isa(const char* pg_isa);

// The level the kernels dispatch to: choose_isa(getenv("PG_ISA")), decided on the first call.
Isa active_isa();
const char* active_isa_name();

// Switches the kernels to `isa` (tests and benchmarks compare levels in one process); throws pg::Error
// if the CPU lacks it. Not to be called while kernels run on other threads.
void set_active_isa(Isa isa);

}  // namespace pg
