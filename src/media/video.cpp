#include "paligemma/video.h"

#include <cmath>
#include <memory>
#include <mutex>

#include "core/file.h"
#include "paligemma/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswscale/swscale.h>
}

namespace pg {

namespace {

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;

std::string av_message(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

FramePtr new_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) throw std::bad_alloc();
  return f;
}

class VideoReader {
 public:
  explicit VideoReader(const std::string& path) : path_(path) {
    // Decoders report damaged data through av_log on stderr; failures reach the caller as pg::Error instead.
    static std::once_flag quiet;
    std::call_once(quiet, [] { av_log_set_level(AV_LOG_QUIET); });
    packet_.reset(av_packet_alloc());
    if (!packet_) throw std::bad_alloc();
    open();
    time_base_ = av_q2d(stream_->time_base);
    start_s_ = stream_->start_time != AV_NOPTS_VALUE ? stream_->start_time * time_base_ : 0.0;
    if (stream_->duration != AV_NOPTS_VALUE && stream_->duration > 0)
      duration_s_ = stream_->duration * time_base_;
    else if (format_->duration != AV_NOPTS_VALUE && format_->duration > 0)
      duration_s_ = double(format_->duration) / AV_TIME_BASE;
    else
      fail("does not say how long it is (no stream or container duration)");
  }

  double start_s() const { return start_s_; }
  double duration_s() const { return duration_s_; }

  // The last frame with timestamp <= time_s (or the first frame when none precedes it). Demuxers without an
  // index (MPEG-TS, ...) may seek past the key frame before time_s; then the seek backs off 1, 2, 4 ... s, and
  // at the start of the stream the file is reopened (such seeks can miss the very first frames too).
  VideoFrame frame_at(double time_s, size_t max_pixels) {
    const int64_t target = std::llround(time_s / time_base_);
    for (double backoff = 0;; backoff = std::max(1.0, 2 * backoff)) {
      const double seek_s = std::max(start_s_, time_s - backoff);
      // A file that cannot seek is decoded from its start.
      const bool from_start =
          seek_s <= start_s_ ||
          av_seek_frame(format_.get(), stream_index_, std::llround(seek_s / time_base_), AVSEEK_FLAG_BACKWARD) < 0;
      if (from_start)
        open();
      else
        avcodec_flush_buffers(decoder_.get());
      bool overshot = false;
      FramePtr frame = decode_until(target, overshot);
      if (!frame) fail("has no decodable frame at " + std::to_string(time_s - start_s_) + " s (truncated or corrupt?)");
      if (!overshot || from_start) return convert(*frame, max_pixels);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error("video " + path_ + " " + what); }

  // (Re)opens the file and its decoder, positioned at the beginning.
  void open() {
    decoder_.reset();
    format_.reset();
    AVFormatContext* raw = nullptr;
    check_regular_file(path_, "video");
    int rc = avformat_open_input(&raw, path_.c_str(), nullptr, nullptr);
    if (rc < 0) fail("cannot be opened as a video (" + av_message(rc) + ")");
    format_.reset(raw);
    rc = avformat_find_stream_info(format_.get(), nullptr);
    if (rc < 0) fail("has no readable stream information (" + av_message(rc) + ")");
    const AVCodec* codec = nullptr;
    stream_index_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_index_ < 0 || !codec) fail("has no video stream with a supported codec");
    stream_ = format_->streams[stream_index_];
    decoder_.reset(avcodec_alloc_context3(codec));
    if (!decoder_) throw std::bad_alloc();
    rc = avcodec_parameters_to_context(decoder_.get(), stream_->codecpar);
    if (rc >= 0) rc = avcodec_open2(decoder_.get(), codec, nullptr);
    if (rc < 0) fail("cannot open its " + std::string(codec->name) + " decoder (" + av_message(rc) + ")");
  }

  // Decodes from the current position to the last frame with timestamp <= target (null at the end of the
  // stream without a frame); `overshot`: the first decoded frame was already past the target.
  FramePtr decode_until(int64_t target, bool& overshot) {
    FramePtr best, frame = new_frame();
    bool flushing = false;
    while (true) {
      int rc_recv;
      while ((rc_recv = avcodec_receive_frame(decoder_.get(), frame.get())) == 0) {
        const int64_t pts = frame->best_effort_timestamp;
        if (pts == AV_NOPTS_VALUE) frame->best_effort_timestamp = target;
        if (pts != AV_NOPTS_VALUE && pts > target) {
          if (best) return best;
          overshot = true;
          return frame;
        }
        best = std::move(frame);
        frame = new_frame();
      }
      if (rc_recv == AVERROR_EOF) return best;
      if (rc_recv != AVERROR(EAGAIN)) fail("has a frame that cannot be decoded (" + av_message(rc_recv) + ")");
      if (flushing) return best;
      const int rc_read = av_read_frame(format_.get(), packet_.get());
      if (rc_read == AVERROR_EOF) {
        flushing = true;
        avcodec_send_packet(decoder_.get(), nullptr);
        continue;
      }
      if (rc_read < 0) fail("cannot be read (" + av_message(rc_read) + ")");
      // A damaged packet is skipped, as players do; a video that yields no frame at all fails in frame_at.
      if (packet_->stream_index == stream_index_) avcodec_send_packet(decoder_.get(), packet_.get());
      av_packet_unref(packet_.get());
    }
  }

  VideoFrame convert(const AVFrame& f, size_t max_pixels) {
    if (f.width <= 0 || f.height <= 0 || f.format < 0) fail("has a frame without size or pixel format");
    if (size_t(f.width) * size_t(f.height) > max_pixels)
      fail("has frames of " + std::to_string(f.width) + "x" + std::to_string(f.height) +
           " pixels, more than the limit of " + std::to_string(max_pixels));
    std::unique_ptr<SwsContext, SwsFreer> sws(
        sws_getContext(f.width, f.height, AVPixelFormat(f.format), f.width, f.height, AV_PIX_FMT_RGB24,
                       SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
    if (!sws) fail("has frames in a pixel format that cannot be converted to RGB");
    const int source_full_range = f.color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(int(f.colorspace)), source_full_range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    VideoFrame out;
    out.image.width = f.width;
    out.image.height = f.height;
    out.image.pixels.resize(size_t(f.width) * f.height * 3);
    uint8_t* dst[4] = {out.image.pixels.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {f.width * 3, 0, 0, 0};
    if (sws_scale(sws.get(), f.data, f.linesize, 0, f.height, dst, dst_stride) != f.height)
      fail("has a frame that cannot be converted to RGB");
    out.time_s = f.best_effort_timestamp * time_base_ - start_s_;
    return out;
  }

  std::string path_;
  std::unique_ptr<AVFormatContext, FormatCloser> format_;
  std::unique_ptr<AVCodecContext, CodecFreer> decoder_;
  std::unique_ptr<AVPacket, PacketFreer> packet_;
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
  double time_base_ = 0, start_s_ = 0, duration_s_ = 0;
};

}  // namespace

std::vector<VideoFrame> sample_video_frames(const std::string& path, int count, size_t max_pixels) {
  if (count < 1) throw Error("the number of video frames must be at least 1, got " + std::to_string(count));
  VideoReader reader(path);
  std::vector<VideoFrame> frames;
  for (int i = 0; i < count; ++i)
    frames.push_back(reader.frame_at(reader.start_s() + (i + 0.5) * reader.duration_s() / count, max_pixels));
  return frames;
}

}  // namespace pg
