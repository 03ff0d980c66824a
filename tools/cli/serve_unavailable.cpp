// `paligemma serve` in a build without the HTTP server (-DPG_BUILD_SERVER=OFF).
#include "commands.h"
#include "paligemma/error.h"

namespace pg::cli {

int run_serve(int, char**) {
  throw Error("serve: this paligemma was built without the HTTP server (configured with -DPG_BUILD_SERVER=OFF); "
              "rebuild with -DPG_BUILD_SERVER=ON and cpp-httplib to use it");
}

}  // namespace pg::cli
