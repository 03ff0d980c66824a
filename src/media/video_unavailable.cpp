// sample_video_frames in a build without FFmpeg (-DPG_WITH_VIDEO=OFF): every call is refused.
#include "media/video.h"

#include "paligemma/error.h"

namespace pg {

std::vector<VideoFrame> sample_video_frames(const std::string& path, int, size_t) {
  throw Error("video '" + path + "': this build of paligemma has no video support (configured with "
              "-DPG_WITH_VIDEO=OFF); rebuild with -DPG_WITH_VIDEO=ON and FFmpeg, or pass the frames as images");
}

}  // namespace pg
