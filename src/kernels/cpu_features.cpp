#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "paligemma/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace pg {
namespace {

struct Support {
  bool level[5] = {true, false, false, false, false};  // indexed by Isa
};

#if defined(__x86_64__)
bool bit(unsigned word, int b) { return (word >> b) & 1u; }

unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

// Linux enables AMX tile data per process on request (arch/x86/include/uapi/asm/prctl.h,
// Documentation/arch/x86/xstate.rst); a tile instruction without this permission kills the process.
bool request_amx_permission() {
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

Support detect() {
  Support s;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return s;
  const bool fma = bit(c, 12), osxsave = bit(c, 27), avx = bit(c, 28), f16c = bit(c, 29);
  if (!osxsave || !avx) return s;
  const unsigned long long xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;               // SSE and AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;   // opmask, ZMM0-15 upper halves, ZMM16-31
  const bool os_tiles = (xcr0 & 0x60000) == 0x60000;     // XTILECFG, XTILEDATA
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return s;
  const bool avx2 = bit(b, 5), avx512f = bit(b, 16), avx512dq = bit(b, 17), avx512bw = bit(b, 30),
             avx512vl = bit(b, 31), amx_bf16 = bit(d, 22), amx_tile = bit(d, 24);
  unsigned a1 = 0, b1, c1, d1;
  const bool avx512_bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && bit(a1, 5);

  s.level[int(Isa::Avx2)] = os_ymm && avx2 && fma && f16c;
  s.level[int(Isa::Avx512)] = s.level[int(Isa::Avx2)] && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
  s.level[int(Isa::Avx512Bf16)] = s.level[int(Isa::Avx512)] && avx512_bf16;
  s.level[int(Isa::Amx)] = s.level[int(Isa::Avx512Bf16)] && amx_tile && amx_bf16 && os_tiles && request_amx_permission();
  return s;
}
#else
Support detect() { return Support{}; }
#endif

const Support& support() {
  static const Support s = detect();
  return s;
}

std::string supported_list() {
  std::string out;
  for (Isa isa : kAllIsas)
    if (isa_supported(isa)) out += std::string(out.empty() ? "" : ", ") + isa_name(isa);
  return out;
}

void check_supported(Isa isa, const char* origin) {
  if (!isa_supported(isa))
    throw Error(std::string(origin) + isa_name(isa) + ": this CPU (or operating system) does not support that " +
                "kernel level; supported here: " + supported_list());
}

std::atomic<int> active_level{-1};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512bf16";
    case Isa::Amx: return "amx";
  }
  return "?";
}

Isa parse_isa(std::string_view name) {
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) return isa;
  throw Error("PG_ISA=" + std::string(name) +
              " is not a kernel level; use one of amx, avx512bf16, avx512, avx2, scalar (or leave it unset)");
}

bool isa_supported(Isa isa) { return support().level[int(isa)]; }

Isa best_supported_isa() {
  Isa best = Isa::Scalar;
  for (Isa isa : kAllIsas)
    if (isa_supported(isa)) best = isa;
  return best;
}

Isa choose_isa(const char* pg_isa) {
  if (pg_isa == nullptr || *pg_isa == '\0') return best_supported_isa();
  const Isa isa = parse_isa(pg_isa);
  check_supported(isa, "PG_ISA=");
  return isa;
}

Isa active_isa() {
  const int level = active_level.load(std::memory_order_acquire);
  if (level >= 0) return Isa(level);
  const Isa chosen = choose_isa(std::getenv("PG_ISA"));
  active_level.store(int(chosen), std::memory_order_release);
  return chosen;
}

const char* active_isa_name() { return isa_name(active_isa()); }

void set_active_isa(Isa isa) {
  check_supported(isa, "kernel level ");
  active_level.store(int(isa), std::memory_order_release);
}

}  // namespace pg
