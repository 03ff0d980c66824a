// Image decoding, PIL-compatible bicubic resize and normalisation, checked against the reference
// (Pillow 13 + transformers, see tools/reference/make_image_fixtures.py and
// tests/fixtures/images/manifest.json), plus bad-input handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "formats/npy.h"
#include "paligemma/error.h"
#include "test_util.h"
#include "paligemma/image.h"

namespace {

namespace fs = std::filesystem;

const std::string kDir = std::string(PG_FIXTURES_DIR) + "/images";

nlohmann::json load_manifest() {
  std::ifstream in(kDir + "/manifest.json");
  if (!in) return nlohmann::json::object();
  return nlohmann::json::parse(in);
}

const nlohmann::json& manifest() {
  static const nlohmann::json m = load_manifest();
  return m;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

pg::ImageRGB8 load_rgb_npy(const std::string& rel) {
  const pg::NpyArray a = pg::read_npy(kDir + "/" + rel);
  EXPECT_EQ(a.dtype, "|u1") << rel;
  EXPECT_EQ(a.shape.size(), 3u) << rel;
  pg::ImageRGB8 image;
  if (a.shape.size() != 3 || a.shape[2] != 3) return image;
  image.height = int(a.shape[0]);
  image.width = int(a.shape[1]);
  image.pixels = a.bytes;
  return image;
}

// Compares two images; returns "" when identical, else a summary of the differences.
std::string compare(const pg::ImageRGB8& got, const pg::ImageRGB8& want) {
  if (got.width != want.width || got.height != want.height) {
    return "size " + std::to_string(got.width) + "x" + std::to_string(got.height) + ", expected " +
           std::to_string(want.width) + "x" + std::to_string(want.height);
  }
  if (got.pixels.size() != want.pixels.size()) return "pixel buffer size differs";
  size_t differing = 0, first = 0;
  int max_diff = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) {
    const int d = std::abs(int(got.pixels[i]) - int(want.pixels[i]));
    if (d) {
      if (!differing) first = i;
      ++differing;
      max_diff = std::max(max_diff, d);
    }
  }
  if (!differing) return "";
  const size_t px = first / 3;
  return std::to_string(differing) + " of " + std::to_string(got.pixels.size()) + " samples differ (max " +
         std::to_string(max_diff) + "); first at x=" + std::to_string(px % size_t(want.width)) +
         " y=" + std::to_string(px / size_t(want.width)) + " channel " + std::to_string(first % 3) + ": " +
         std::to_string(got.pixels[first]) + " vs " + std::to_string(want.pixels[first]);
}

// ------------------------------------------------------------------------------------------------
// One parameterised test per fixture image.

struct Fixture {
  std::string label;
  nlohmann::json entry;
};

// The manifest's images; `key` keeps only those with that field (non-empty).
std::vector<Fixture> fixtures(const char* key = nullptr) {
  std::vector<Fixture> out;
  const auto& m = manifest();
  if (!m.contains("images")) return out;
  for (const auto& e : m["images"]) {
    if (key && (!e.contains(key) || e[key].empty())) continue;
    std::string label = e["file"].get<std::string>();
    for (char& c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    out.push_back({label, e});
  }
  return out;
}

std::string fixture_label(const ::testing::TestParamInfo<Fixture>& info) { return info.param.label; }

void PrintTo(const Fixture& f, std::ostream* os) { *os << f.entry["file"].get<std::string>(); }

class ImageFixture : public ::testing::TestWithParam<Fixture> {};
class ImageResizeFixture : public ::testing::TestWithParam<Fixture> {};
class ImagePreprocessFixture : public ::testing::TestWithParam<Fixture> {};

TEST_P(ImageFixture, DecodeMatchesPillow) {
  const auto& e = GetParam().entry;
  const std::string path = kDir + "/" + e["file"].get<std::string>();
  SCOPED_TRACE(path + " (" + e["format"].get<std::string>() + ", PIL mode " + e["pil_mode"].get<std::string>() +
               ", " + e["note"].get<std::string>() + ")");
  const pg::ImageRGB8 got = pg::decode_image_file(path);
  EXPECT_EQ(compare(got, load_rgb_npy(e["rgb"])), "");
  // The same bytes from memory give the same image.
  const std::vector<uint8_t> bytes = read_bytes(path);
  const pg::ImageRGB8 again = pg::decode_image_memory(bytes.data(), bytes.size(), path);
  EXPECT_EQ(again.pixels, got.pixels);
}

TEST_P(ImageResizeFixture, MatchesPillow) {
  const auto& e = GetParam().entry;
  const pg::ImageRGB8 rgb = load_rgb_npy(e["rgb"]);
  for (const auto& r : e["resize"]) {
    const int w = r["width"], h = r["height"];
    SCOPED_TRACE(e["file"].get<std::string>() + " -> " + std::to_string(w) + "x" + std::to_string(h));
    EXPECT_EQ(compare(pg::resize_bicubic_pil(rgb, w, h), load_rgb_npy(r["npy"])), "");
  }
}

TEST_P(ImagePreprocessFixture, MatchesSiglipProcessor) {
  const auto& e = GetParam().entry;
  const auto& p = e["processor"];
  const int w = p["width"], h = p["height"];
  // The whole chain from the file: decode, resize, normalise.
  const pg::ImageRGB8 decoded = pg::decode_image_file(kDir + "/" + e["file"].get<std::string>());
  const std::vector<float> got = pg::normalize_to_chw(pg::resize_bicubic_pil(decoded, w, h));
  const pg::NpyArray want_npy = pg::read_npy(kDir + "/" + p["npy"].get<std::string>());
  ASSERT_EQ(want_npy.shape, (std::vector<int64_t>{3, h, w}));
  const std::vector<float> want = want_npy.as_f32();
  ASSERT_EQ(got.size(), want.size());
  size_t differing = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    if (a != b) ++differing;
  }
  EXPECT_EQ(differing, 0u) << "floats must be bit-identical to SiglipImageProcessorPil's pixel_values";
}

// Never crashes on damaged copies of the fixture: truncated at many points and with bytes
// overwritten, decoding either fails with pg::Error or returns a well-formed image.
TEST_P(ImageFixture, DamagedCopiesFailCleanly) {
  const auto& e = GetParam().entry;
  const std::string path = kDir + "/" + e["file"].get<std::string>();
  const std::vector<uint8_t> bytes = read_bytes(path);
  auto check = [&](const std::vector<uint8_t>& data, const std::string& what) {
    try {
      const pg::ImageRGB8 image = pg::decode_image_memory(data.data(), data.size(), "damaged", 1 << 22);
      EXPECT_EQ(image.pixels.size(), size_t(image.width) * size_t(image.height) * 3) << what;
      EXPECT_GT(image.width, 0) << what;
    } catch (const pg::Error& err) {
      EXPECT_NE(std::string(err.what()).find("damaged"), std::string::npos) << err.what();
    }
  };
  const size_t n = bytes.size();
  for (size_t cut : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(13), size_t(18), size_t(30), n / 4, n / 3,
                     n / 2, n * 2 / 3, n - 2, n - 1}) {
    if (cut == 0 || cut >= n) continue;
    check(std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)), "cut at " + std::to_string(cut));
  }
  std::mt19937 rng(std::hash<std::string>{}(path) & 0xffffffffu);
  for (int trial = 0; trial < 24; ++trial) {
    std::vector<uint8_t> data = bytes;
    const int edits = 1 + trial % 4;
    for (int k = 0; k < edits; ++k) {
      // Half of the edits land in the first 64 bytes, where the headers are.
      const size_t span = (k % 2 == 0) ? std::min<size_t>(64, n) : n;
      data[rng() % span] = uint8_t(rng());
    }
    check(data, "mutation " + std::to_string(trial));
  }
}

INSTANTIATE_TEST_SUITE_P(Image, ImageFixture, ::testing::ValuesIn(fixtures()), fixture_label);
INSTANTIATE_TEST_SUITE_P(Image, ImageResizeFixture, ::testing::ValuesIn(fixtures("resize")), fixture_label);
INSTANTIATE_TEST_SUITE_P(Image, ImagePreprocessFixture, ::testing::ValuesIn(fixtures("processor")), fixture_label);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ImageFixture);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ImageResizeFixture);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ImagePreprocessFixture);

// Small random images resized to random sizes (both pass orders, single passes, 1-pixel sides).
TEST(ImageResize, RandomCasesMatchPillow) {
  const auto& m = manifest();
  ASSERT_TRUE(m.contains("random_resizes"));
  const auto& rr = m["random_resizes"];
  const pg::NpyArray flat = pg::read_npy(kDir + "/" + rr["npy"].get<std::string>());
  ASSERT_EQ(flat.dtype, "|u1");
  ASSERT_GE(rr["cases"].size(), 32u);
  for (const auto& c : rr["cases"]) {
    const int sw = c["src_width"], sh = c["src_height"], w = c["width"], h = c["height"];
    const size_t so = c["src_offset"], o = c["offset"];
    ASSERT_LE(o + size_t(w) * size_t(h) * 3, flat.bytes.size());
    pg::ImageRGB8 src{sw, sh, std::vector<uint8_t>(flat.bytes.begin() + long(so),
                                                   flat.bytes.begin() + long(so + size_t(sw) * size_t(sh) * 3))};
    pg::ImageRGB8 want{w, h, std::vector<uint8_t>(flat.bytes.begin() + long(o),
                                                  flat.bytes.begin() + long(o + size_t(w) * size_t(h) * 3))};
    EXPECT_EQ(compare(pg::resize_bicubic_pil(src, w, h), want), "")
        << sw << "x" << sh << " -> " << w << "x" << h;
  }
}

TEST(ImageFixtures, ManifestIsPresentAndCoversEveryFormat) {
  const auto& m = manifest();
  ASSERT_TRUE(m.contains("images")) << "missing " << kDir << "/manifest.json; run tools/reference/make_image_fixtures.py";
  std::set<std::string> formats;
  for (const auto& e : m["images"]) formats.insert(e["format"].get<std::string>());
  EXPECT_EQ(formats, (std::set<std::string>{"BMP", "GIF", "JPEG", "PNG", "PPM", "TGA", "WEBP"}));
}

TEST(ImageFixtures, FilesPillowRefusesAreRefused) {
  const auto& m = manifest();
  ASSERT_TRUE(m.contains("errors"));
  for (const auto& e : m["errors"]) {
    const std::string path = kDir + "/" + e["file"].get<std::string>();
    EXPECT_THROW(pg::decode_image_file(path), pg::Error) << path << " (Pillow: " << e["pil_error"] << ")";
  }
}

TEST(ImageFixtures, ExifOrientationIsNotApplied) {
  const pg::ImageRGB8 image = pg::decode_image_file(kDir + "/jpeg/exif_orientation6_75x47.jpg");
  EXPECT_EQ(image.width, 75);
  EXPECT_EQ(image.height, 47);
}

// ------------------------------------------------------------------------------------------------
// Bad input.

using pg::test::error_of;

std::string decode_error(const std::vector<uint8_t>& data, const std::string& name = "test.img",
                         size_t max_pixels = pg::kDefaultMaxImagePixels) {
  return error_of([&] { pg::decode_image_memory(data.data(), data.size(), name, max_pixels); });
}

std::vector<uint8_t> fixture_bytes(const std::string& rel) { return read_bytes(kDir + "/" + rel); }

uint32_t crc32(const uint8_t* data, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= data[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}

// A PNG header with the given IHDR size (valid CRC) followed by a tiny IDAT and IEND.
std::vector<uint8_t> png_with_size(uint32_t w, uint32_t h) {
  std::vector<uint8_t> png = fixture_bytes("png/rgb_1x1.png");
  put_be32(&png[16], w);
  put_be32(&png[20], h);
  put_be32(&png[29], crc32(&png[12], 17));
  return png;
}

TEST(ImageErrors, MissingFileNamesThePath) {
  const std::string msg = error_of([] { pg::decode_image_file("/nonexistent/dir/cat.png"); });
  EXPECT_NE(msg.find("/nonexistent/dir/cat.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(ImageErrors, DirectoryIsNotAnImage) {
  const std::string msg = error_of([] { pg::decode_image_file(kDir); });
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

TEST(ImageErrors, EmptyFile) {
  const pg::test::TempDir tmp;
  const fs::path path = tmp / "empty.png";
  { std::ofstream(path, std::ios::binary); }
  const std::string msg = error_of([&] { pg::decode_image_file(path.string()); });
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(decode_error({}).find("empty"), std::string::npos);
}

TEST(ImageErrors, UnknownFormat) {
  const std::string text = "<html><body>not an image</body></html>";
  const std::string msg = decode_error(std::vector<uint8_t>(text.begin(), text.end()), "page.jpg");
  EXPECT_NE(msg.find("page.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not in a supported image format"), std::string::npos) << msg;
  // Formats Pillow knows but we do not: TIFF, PAM.
  EXPECT_NE(decode_error({'I', 'I', 42, 0, 8, 0, 0, 0}).find("not in a supported"), std::string::npos);
  const std::string pam = "P7\nWIDTH 1\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\nabc";
  EXPECT_NE(decode_error(std::vector<uint8_t>(pam.begin(), pam.end())).find("not in a supported"), std::string::npos);
}

// Cut in half, every format reports a truncated file (libjpeg would otherwise pad with grey).
TEST(ImageErrors, TruncatedFilesAreErrors) {
  for (const char* rel : {"png/rgb_150x90.png", "png/rgb_interlaced_150x90.png", "jpeg/rgb420_150x90.jpg",
                          "jpeg/progressive_75x47.jpg", "jpeg/grey_75x47.jpg", "gif/p_75x47.gif",
                          "bmp/rgb24_75x47.bmp", "bmp/rle8_13x9.bmp", "tga/rgb_75x47.tga",
                          "tga/rgb_rle_topdown_75x47.tga", "pnm/rgb_75x47.ppm", "pnm/plain_maxval1000_7x5.ppm",
                          "webp/lossy_75x47.webp", "webp/lossless_75x47.webp"}) {
    std::vector<uint8_t> data = fixture_bytes(rel);
    data.resize(data.size() / 2);
    const std::string msg = decode_error(data, rel);
    EXPECT_NE(msg.find("truncated"), std::string::npos) << rel << ": " << msg;
    EXPECT_NE(msg.find(rel), std::string::npos) << rel << ": " << msg;
  }
}

TEST(ImageErrors, JpegMissingItsLastBytesIsAnError) {
  std::vector<uint8_t> data = fixture_bytes("jpeg/rgb420_150x90.jpg");
  data.resize(data.size() - 40);
  EXPECT_NE(decode_error(data).find("truncated"), std::string::npos);
}

TEST(ImageErrors, CorruptHeaders) {
  std::vector<uint8_t> png = fixture_bytes("png/rgb_150x90.png");
  png[20] ^= 0x40;  // IHDR height changed, CRC now wrong
  std::string msg = decode_error(png, "x.png");
  EXPECT_NE(msg.find("corrupt PNG"), std::string::npos) << msg;

  std::vector<uint8_t> jpeg = fixture_bytes("jpeg/rgb420_150x90.jpg");
  for (size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {  // SOF0: make the sample precision 3 bits
      jpeg[i + 4] = 3;
      break;
    }
  }
  msg = decode_error(jpeg, "x.jpg");
  EXPECT_NE(msg.find("x.jpg"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("NOT pg::Error"), std::string::npos) << msg;
  EXPECT_NE(msg, "no error");

  std::vector<uint8_t> bmp = fixture_bytes("bmp/rgb24_75x47.bmp");
  bmp[28] = 7;  // 7 bits per pixel
  EXPECT_NE(decode_error(bmp).find("pixel depth 7"), std::string::npos);

  const std::string ppm = "P6\n7 x5\n255\n";
  EXPECT_NE(decode_error(std::vector<uint8_t>(ppm.begin(), ppm.end())).find("corrupt PNM"), std::string::npos);

  std::vector<uint8_t> gif = fixture_bytes("gif/p_noninterlaced_75x47.gif");
  ASSERT_TRUE(gif[10] & 0x80);  // global palette, then the header ends
  gif.resize(13 + (size_t(3) << ((gif[10] & 7) + 1)));
  gif.push_back(';');
  EXPECT_NE(decode_error(gif).find("no image"), std::string::npos) << decode_error(gif);
}

TEST(ImageErrors, ZeroSizedImages) {
  EXPECT_NE(decode_error(png_with_size(0, 5)).find("corrupt PNG"), std::string::npos);  // libpng refuses it
  const std::string pgm = "P5\n0 5\n255\n";
  EXPECT_NE(decode_error(std::vector<uint8_t>(pgm.begin(), pgm.end())).find("zero width or height"), std::string::npos);
  std::vector<uint8_t> bmp = fixture_bytes("bmp/rgb24_7x5.bmp");
  bmp[18] = bmp[19] = 0;  // width 0
  EXPECT_NE(decode_error(bmp).find("zero width or height"), std::string::npos) << decode_error(bmp);
}

TEST(ImageErrors, OversizedImagesAreRefusedBeforeAllocation) {
  // A header announcing 100000 x 100000 pixels must be refused from the header alone.
  std::string msg = decode_error(png_with_size(100000, 100000), "bomb.png");
  EXPECT_NE(msg.find("10000000000 pixels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max_pixels"), std::string::npos) << msg;
  msg = decode_error(png_with_size(0x7FFFFFFF, 1), "wide.png");
  EXPECT_NE(msg.find("more than the limit"), std::string::npos) << msg;
  const std::vector<uint8_t> bomb = png_with_size(100000, 100000);
  EXPECT_THROW(pg::decode_image_memory(bomb.data(), bomb.size(), "bomb.png"), pg::ImageTooLargeError);

  std::vector<uint8_t> jpeg = fixture_bytes("jpeg/rgb420_150x90.jpg");
  for (size_t i = 2; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = jpeg[i + 7] = 0xFF;  // height, width = 0xFFxx
      break;
    }
  }
  EXPECT_NE(decode_error(jpeg).find("more than the limit"), std::string::npos) << decode_error(jpeg);

  std::vector<uint8_t> gif = fixture_bytes("gif/p_75x47.gif");
  gif[6] = gif[7] = gif[8] = gif[9] = 0xFF;
  EXPECT_NE(decode_error(gif).find("more than the limit"), std::string::npos);

  std::vector<uint8_t> bmp = fixture_bytes("bmp/rgb24_7x5.bmp");
  bmp[20] = bmp[24] = 0x7F;  // width, height ~ 2^30
  EXPECT_NE(decode_error(bmp).find("more than the limit"), std::string::npos);

  const std::string ppm = "P6\n100000 100000\n255\n";
  EXPECT_NE(decode_error(std::vector<uint8_t>(ppm.begin(), ppm.end())).find("more than the limit"), std::string::npos);

  std::vector<uint8_t> tga = fixture_bytes("tga/rgb_75x47.tga");
  tga[12] = tga[13] = tga[14] = tga[15] = 0xFF;
  EXPECT_NE(decode_error(tga).find("more than the limit"), std::string::npos);

  // An explicit limit: 150 x 90 = 13500 pixels.
  for (const char* rel : {"png/rgb_150x90.png", "jpeg/rgb420_150x90.jpg", "webp/lossy_75x47.webp"}) {
    const std::vector<uint8_t> data = fixture_bytes(rel);
    const pg::ImageRGB8 ok = pg::decode_image_memory(data.data(), data.size(), rel);
    const size_t pixels = size_t(ok.width) * size_t(ok.height);
    EXPECT_NO_THROW(pg::decode_image_memory(data.data(), data.size(), rel, pixels));
    EXPECT_NE(decode_error(data, rel, pixels - 1).find("more than the limit of " + std::to_string(pixels - 1)),
              std::string::npos)
        << rel;
  }
}

// ------------------------------------------------------------------------------------------------
// Resize and normalise.

pg::ImageRGB8 pattern(int w, int h) {
  pg::ImageRGB8 image{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t((i * 37 + i / 7) & 255);
  return image;
}

TEST(ImageResize, SameSizeIsUnchanged) {
  const pg::ImageRGB8 image = pattern(9, 4);
  const pg::ImageRGB8 out = pg::resize_bicubic_pil(image, 9, 4);
  EXPECT_EQ(out.width, 9);
  EXPECT_EQ(out.height, 4);
  EXPECT_EQ(out.pixels, image.pixels);
}

TEST(ImageResize, ConstantImageStaysConstant) {
  pg::ImageRGB8 image{5, 3, std::vector<uint8_t>(45, 0)};
  for (size_t i = 0; i < 45; i += 3) image.pixels[i] = 200, image.pixels[i + 1] = 7, image.pixels[i + 2] = 255;
  for (auto [w, h] : {std::pair{224, 224}, std::pair{1, 1}, std::pair{2, 9}}) {
    const pg::ImageRGB8 out = pg::resize_bicubic_pil(image, w, h);
    ASSERT_EQ(out.pixels.size(), size_t(w) * size_t(h) * 3);
    for (size_t i = 0; i < out.pixels.size(); i += 3) {
      ASSERT_EQ(out.pixels[i], 200);
      ASSERT_EQ(out.pixels[i + 1], 7);
      ASSERT_EQ(out.pixels[i + 2], 255);
    }
  }
}

TEST(ImageResize, BadArguments) {
  const pg::ImageRGB8 image = pattern(4, 4);
  EXPECT_THROW(pg::resize_bicubic_pil(image, 0, 4), pg::Error);
  EXPECT_THROW(pg::resize_bicubic_pil(image, 4, -1), pg::Error);
  pg::ImageRGB8 broken = image;
  broken.pixels.pop_back();
  EXPECT_THROW(pg::resize_bicubic_pil(broken, 2, 2), pg::Error);
  EXPECT_THROW(pg::normalize_to_chw(broken), pg::Error);
  EXPECT_THROW(pg::normalize_to_chw(pg::ImageRGB8{}), pg::Error);
}

TEST(ImageNormalize, ChannelsFirstAndExactValues) {
  pg::ImageRGB8 image{2, 1, {0, 128, 255, 1, 254, 127}};
  const std::vector<float> out = pg::normalize_to_chw(image);
  ASSERT_EQ(out.size(), 6u);
  // Layout [c][y][x]: R of both pixels, then G, then B.
  const uint8_t order[6] = {0, 1, 128, 254, 255, 127};
  for (int i = 0; i < 6; ++i) {
    const float rescaled = float(double(order[i]) * (1.0 / 255.0));
    EXPECT_EQ(out[size_t(i)], (rescaled - 0.5f) / 0.5f) << int(order[i]);
  }
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[4], 1.0f);
}

}  // namespace
