#include "paligemma/system.h"

#include "kernels/cpu_features.h"

namespace pg {

const char* kernel_level() { return active_isa_name(); }
const char* best_kernel_level() { return isa_name(best_supported_isa()); }

}  // namespace pg
