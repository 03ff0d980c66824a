// Video input: N frames sampled evenly over a video's duration, as RGB8 images (libavformat / libavcodec /
// libswscale). PaliGemma sees them as N images, image-major, like big_vision's video transfers.
#pragma once
#include <string>
#include <vector>

#include "paligemma/image.h"

namespace pg {

struct VideoFrame {
  ImageRGB8 image;
  double time_s = 0;  // presentation time of the decoded frame, from the start of the video stream
};

// "Evenly": frame i of `count` is the one on screen at t_i = (i + 0.5) · duration / count from the stream's
// start (the middle of the i-th of `count` equal slices) — found by seeking to the key frame before t_i and
// decoding up to the last frame whose timestamp is <= t_i (the first frame when t_i precedes it); a seek that
// lands past t_i backs off, and a file that cannot seek is decoded from its start. The duration
// is the video stream's, else the container's. Frames keep their size (the model's preprocessing resizes);
// YUV is converted to RGB with the matrix and range the stream declares (BT.601, limited range when it declares
// none). Rotation metadata is not applied. libav* logging is switched off (errors come back as pg::Error).
// Throws pg::Error naming the file when it is missing, not a video, has no video stream, no known duration,
// or a frame cannot be decoded (truncated / corrupt), and for count < 1.
std::vector<VideoFrame> sample_video_frames(const std::string& path, int count,
                                            size_t max_pixels = kDefaultMaxImagePixels);

}  // namespace pg
