// Video frame sampling (paligemma/video.h) on the committed test videos (tests/fixtures/video/make_videos.sh):
// 20 frames at 10 fps whose frame n is the flat colour (10 + 12n, 220 - 10n, 60 + 5n), in three codecs and
// containers, so every decoded frame tells which frame it is.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "paligemma/video.h"
#include "paligemma/error.h"
#include "test_util.h"

namespace pg {
namespace {

namespace fs = std::filesystem;

const fs::path kVideos = fs::path(PG_FIXTURES_DIR) / "video";
constexpr int kFrames = 20;
constexpr double kFps = 10;

struct VideoFile {
  const char* name;
  int width, height;
};
const VideoFile kFiles[] = {{"steps_h264.mp4", 64, 48}, {"steps_vp9.webm", 48, 32}, {"steps_mpeg2.ts", 64, 48}};

// Which frame a decoded image is, from its mean colour; -1 when the colour matches no frame within
// `tolerance` levels per channel (lossy coding and YUV 4:2:0 move flat colours by a few levels).
int frame_number(const ImageRGB8& image, double tolerance = 5) {
  double sum[3] = {0, 0, 0};
  const size_t n = size_t(image.width) * image.height;
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) sum[c] += image.pixels[i * 3 + c];
  const double r = sum[0] / n, g = sum[1] / n, b = sum[2] / n;
  const int k = int(std::lround((r - 10) / 12));
  if (k < 0 || k >= kFrames) return -1;
  if (std::fabs(r - (10 + 12 * k)) > tolerance || std::fabs(g - (220 - 10 * k)) > tolerance ||
      std::fabs(b - (60 + 5 * k)) > tolerance)
    return -1;
  return k;
}

class VideoSampling : public ::testing::TestWithParam<VideoFile> {};

TEST_P(VideoSampling, FramesAtTheMiddleOfEqualSlices) {
  const VideoFile& file = GetParam();
  // t_i = (i + 0.5) * 2.0 s / N: frame floor(t_i * 10). None of these N puts t_i on a frame boundary.
  for (int count : {4, 8, 20, 40}) {
    const std::vector<VideoFrame> frames = sample_video_frames((kVideos / file.name).string(), count);
    ASSERT_EQ(int(frames.size()), count);
    for (int i = 0; i < count; ++i) {
      const int expected = int(std::floor((i + 0.5) * kFrames / count));
      const VideoFrame& f = frames[size_t(i)];
      EXPECT_EQ(f.image.width, file.width);
      EXPECT_EQ(f.image.height, file.height);
      ASSERT_EQ(f.image.pixels.size(), size_t(file.width) * file.height * 3);
      EXPECT_EQ(frame_number(f.image), expected) << file.name << " N=" << count << " i=" << i;
      EXPECT_NEAR(f.time_s, expected / kFps, 1e-3) << file.name << " N=" << count << " i=" << i;
    }
  }
}

TEST_P(VideoSampling, EveryFrameOnceInOrder) {
  const std::vector<VideoFrame> frames = sample_video_frames((kVideos / GetParam().name).string(), kFrames);
  for (int i = 0; i < kFrames; ++i) EXPECT_EQ(frame_number(frames[size_t(i)].image), i);
}

INSTANTIATE_TEST_SUITE_P(Files, VideoSampling, ::testing::ValuesIn(kFiles), [](const auto& info) {
  std::string n = info.param.name;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

// The error names the file and says what is wrong.
void expect_error(const std::string& path, const std::string& words, int count = 4) {
  try {
    sample_video_frames(path, count);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(fs::path(path).filename().string()), std::string::npos) << m;
    EXPECT_NE(m.find(words), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

class VideoErrors : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) { return tmp.write(name, bytes).string(); }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  test::TempDir tmp;
  const fs::path& dir = tmp.path();
};

TEST_F(VideoErrors, MissingEmptyGarbageTruncated) {
  expect_error((dir / "absent.mp4").string(), "cannot open video");
  expect_error(write("empty.mp4", ""), "cannot be opened");
  std::mt19937 rng(3);
  std::string noise(4096, '\0');
  for (char& c : noise) c = char(rng());
  expect_error(write("noise.mp4", noise), "video");
  expect_error(write("text.webm", "this is not a video\n"), "video");
  // MP4 keeps its index at the end: the first half alone cannot be opened.
  const std::string mp4 = read(kVideos / "steps_h264.mp4");
  expect_error(write("half.mp4", mp4.substr(0, mp4.size() / 2)), "video");
}

TEST_F(VideoErrors, TruncatedStreamWithoutFrames) {
  // The first 188-byte packets of the transport stream hold tables but no picture.
  const std::string ts = read(kVideos / "steps_mpeg2.ts");
  expect_error(write("head.ts", ts.substr(0, 188 * 3)), "video");
}

TEST_F(VideoErrors, FrameCountMustBePositive) {
  EXPECT_THROW(sample_video_frames((kVideos / "steps_h264.mp4").string(), 0), Error);
}

}  // namespace
}  // namespace pg
