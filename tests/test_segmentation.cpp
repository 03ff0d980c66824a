// .npz reading, the VQ-VAE mask decoder, PIL-exact bilinear resize, mask pasting and COCO RLE, against
// tests/fixtures/vae (written by tools/reference/make_vae_fixtures.py: a torch.nn implementation of the
// decoder with random weights, Pillow's resize, a plain-Python pycocotools RLE) and hand-worked cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "formats/npy.h"
#include "formats/npz.h"
#include "paligemma/error.h"
#include "../tools/common/objects_json.h"
#include "model/mask_decoder.h"
#include "tasks/segmentation.h"
#include "test_util.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(PG_FIXTURES_DIR) / "vae";

nlohmann::json cases() {
  std::ifstream in(kDir / "cases.json");
  return nlohmann::json::parse(in);
}

const MaskDecoder& decoder() {
  static const std::shared_ptr<const MaskDecoder> d = load_mask_decoder((kDir / "vae_small.npz").string());
  return *d;
}

using test::error_of;

std::vector<uint8_t> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Npz, ReadsStoredArchiveAndReportsUnsupportedArrays) {
  const NpzFile npz((kDir / "stored.npz").string());
  EXPECT_EQ(npz.keys(), (std::vector<std::string>{"matrix", "scalar", "doubles", "fortran"}));
  const NpyArray m = npz.read_f32("matrix");
  EXPECT_EQ(m.shape, (std::vector<int64_t>{3, 4}));
  const std::vector<float> v = m.as_f32();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], float(i));
  const NpyArray s = npz.read_f32("scalar");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.as_f32(), std::vector<float>{2.5f});
  EXPECT_NE(error_of([&] { npz.read_f32("doubles"); }).find("<f8"), std::string::npos);
  EXPECT_NE(error_of([&] { npz.read_f32("fortran"); }).find("Fortran"), std::string::npos);
  const std::string missing = error_of([&] { npz.read_f32("weights"); });
  EXPECT_NE(missing.find("\"weights\""), std::string::npos) << missing;
  EXPECT_FALSE(npz.contains("weights"));
}

TEST(Npz, ReadsDeflatedZip64Members) {
  // np.savez_compressed: deflated members whose local headers carry zip64 size fields.
  const NpzFile npz((kDir / "vae_small.npz").string());
  EXPECT_TRUE(npz.contains("_vq_vae._embedding"));
  EXPECT_TRUE(npz.contains("decoder.12.bias"));
  const NpyArray codebook = npz.read_f32("_vq_vae._embedding");
  EXPECT_EQ(codebook.shape, (std::vector<int64_t>{128, cases()["widths"]["codebook_dim"].get<int64_t>()}));
}

TEST(Npz, CorruptFilesFailWithTheFileName) {
  const test::TempDir tmp;
  const std::vector<uint8_t> good = file_bytes(kDir / "vae_small.npz");
  const fs::path cut =
      tmp.write("cut.npz", std::vector<uint8_t>(good.begin(), good.begin() + long(good.size() / 2)));
  EXPECT_NE(error_of([&] { NpzFile{cut.string()}; }).find(cut.string()), std::string::npos);

  const fs::path text = tmp.write("text.npz", std::vector<uint8_t>(100, 'x'));
  EXPECT_NE(error_of([&] { NpzFile{text.string()}; }).find("not an .npz"), std::string::npos);

  std::vector<uint8_t> flipped = good;
  flipped[200] ^= 0x55;  // inside the first member's deflated data
  const fs::path bad = tmp.write("flipped.npz", flipped);
  const NpzFile npz(bad.string());
  const std::string e = error_of([&] {
    for (const auto& k : npz.keys()) npz.read_f32(k);
  });
  EXPECT_TRUE(e.find("CRC") != std::string::npos || e.find("decompress") != std::string::npos) << e;

  EXPECT_NE(error_of([] { load_mask_decoder((kDir / "stored.npz").string()); }).find("_vq_vae._embedding"),
            std::string::npos);
}

TEST(Npz, ParseNpyChecksTheDataSize) {
  const std::vector<uint8_t> bytes = file_bytes(kDir / "resized_1.npy");
  EXPECT_NO_THROW(parse_npy(bytes.data(), bytes.size(), "x"));
  EXPECT_NE(error_of([&] { parse_npy(bytes.data(), bytes.size() - 4, "x"); }).find("truncated"), std::string::npos);
  EXPECT_THROW(parse_npy(bytes.data(), 9, "x"), Error);
}

TEST(MaskDecoder, MatchesTorchReference) {
  const auto c = cases();
  const NpyArray maps = read_npy((kDir / "maps.npy").string());
  const std::vector<float> expected = maps.as_f32();
  float worst = 0, scale = 0;
  for (size_t s = 0; s < c["code_sets"].size(); ++s) {
    const std::vector<float> got = decoder().decode(c["code_sets"][s].get<std::vector<int>>());
    ASSERT_EQ(got.size(), size_t(kMaskMapSize * kMaskMapSize));
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - expected[s * got.size() + i]));
      scale = std::max(scale, std::abs(expected[s * got.size() + i]));
    }
  }
  EXPECT_LT(worst, 1e-4f) << "largest difference " << worst << " at a maximum |value| of " << scale;
  EXPECT_GT(scale, 0.05f);  // the fixture's maps are not trivially small
}

TEST(MaskDecoder, RejectsBadCodes) {
  EXPECT_THROW(decoder().decode(std::vector<int>(15, 0)), Error);
  std::vector<int> codes(16, 0);
  codes[3] = 128;
  EXPECT_THROW(decoder().decode(codes), Error);
}

TEST(BilinearResize, BitExactWithPillowOnFloatImages) {
  // Enlarging, shrinking (wider support), one side kept, both pass orders, a 1x1 result.
  const auto c = cases();
  const std::vector<float> maps = read_npy((kDir / "maps.npy").string()).as_f32();
  for (const auto& p : c["paste"]) {
    const auto box = p["box"].get<std::vector<int>>();
    const int w = box[2] - box[0], h = box[3] - box[1];
    const size_t set = p["codes"].get<size_t>();
    const std::vector<float> map(maps.begin() + long(set * 4096), maps.begin() + long((set + 1) * 4096));
    const NpyArray expected = read_npy((kDir / p["resized"].get<std::string>()).string());
    ASSERT_EQ(expected.shape, (std::vector<int64_t>{h, w}));
    EXPECT_EQ(resize_bilinear_pil_float(map, 64, 64, w, h), expected.as_f32()) << w << "x" << h;
  }
}

TEST(BilinearResize, ConstantStaysConstantAndBadSizesThrow) {
  const std::vector<float> flat(7 * 5, 0.25f);
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {3, 9}, {20, 2}, {7, 5}, {13, 13}})
    for (float v : resize_bilinear_pil_float(flat, 7, 5, w, h)) EXPECT_NEAR(v, 0.25f, 1e-7f);
  EXPECT_THROW(resize_bilinear_pil_float(flat, 7, 5, 0, 3), Error);
  EXPECT_THROW(resize_bilinear_pil_float(flat, 5, 5, 3, 3), Error);
}

BinaryMask expected_mask(const nlohmann::json& p) {
  const auto box = p["box"].get<std::vector<int>>();
  BinaryMask m;
  m.width = p["width"].get<int>();
  m.height = p["height"].get<int>();
  m.pixels.assign(size_t(m.width) * size_t(m.height), 0);
  const std::vector<float> resized = read_npy((kDir / p["resized"].get<std::string>()).string()).as_f32();
  const int w = box[2] - box[0];
  for (int r = box[1]; r < box[3]; ++r)
    for (int col = box[0]; col < box[2]; ++col)
      m.pixels[size_t(r) * size_t(m.width) + size_t(col)] =
          resized[size_t(r - box[1]) * size_t(w) + size_t(col - box[0])] > 0;
  return m;
}

TEST(CocoRle, MatchesPycocotoolsConventionOnFixtures) {
  const auto c = cases();  // kept alive: a range-for over cases()["paste"] would iterate a destroyed temporary
  for (const auto& p : c["paste"]) {
    const CocoRle rle = encode_coco_rle(expected_mask(p));
    EXPECT_EQ((std::vector<int>{rle.height, rle.width}), p["rle"]["size"].get<std::vector<int>>());
    EXPECT_EQ(rle.counts, p["rle"]["counts"].get<std::vector<uint32_t>>());
  }
}

TEST(CocoRle, HandWorked) {
  // [[0 1 1], [0 0 1]] column by column: 0 0 | 1 0 | 1 1 -> runs 2 zeros, 1 one, 1 zero, 2 ones.
  EXPECT_EQ(encode_coco_rle({3, 2, {0, 1, 1, 0, 0, 1}}).counts, (std::vector<uint32_t>{2, 1, 1, 2}));
  EXPECT_EQ(encode_coco_rle({2, 2, {1, 1, 1, 1}}).counts, (std::vector<uint32_t>{0, 4}));
  EXPECT_EQ(encode_coco_rle({2, 2, {0, 0, 0, 0}}).counts, (std::vector<uint32_t>{4}));
}

TEST(PasteMask, FullPipelineMatchesReference) {
  // Text -> box (parser) -> codes -> C++ decoder -> resize -> threshold, against torch + Pillow. A pixel
  // may flip where the reference value is within float noise of 0; none did when this was written.
  const auto c = cases();
  size_t flipped = 0, total = 0;
  for (const auto& p : c["paste"]) {
    const auto bins = p["bins"].get<std::vector<int>>();
    const auto codes = c["code_sets"][p["codes"].get<size_t>()].get<std::vector<int>>();
    char text[64];
    std::snprintf(text, sizeof text, "<loc%04d><loc%04d><loc%04d><loc%04d>", bins[0], bins[1], bins[2], bins[3]);
    std::string output = text;
    for (int code : codes) {
      std::snprintf(text, sizeof text, "<seg%03d>", code);
      output += text;
    }
    output += " thing";
    const int width = p["width"].get<int>(), height = p["height"].get<int>();
    const DecodedObjects d = decode_objects(output, width, height, &decoder());
    ASSERT_EQ(d.objects.size(), 1u);
    const PixelBox b = d.objects[0].box;
    EXPECT_EQ((std::vector<int>{b.x0, b.y0, b.x1, b.y1}), p["box"].get<std::vector<int>>());
    const std::optional<BinaryMask>& mask = d.objects[0].mask;
    ASSERT_TRUE(mask.has_value());
    ASSERT_TRUE(d.objects[0].mask_rle.has_value());
    const BinaryMask expected = expected_mask(p);
    ASSERT_EQ(mask->pixels.size(), expected.pixels.size());
    for (size_t i = 0; i < expected.pixels.size(); ++i) flipped += mask->pixels[i] != expected.pixels[i];
    total += expected.pixels.size();
    if (mask->pixels == expected.pixels) {
      EXPECT_EQ(d.objects[0].mask_rle->counts, p["rle"]["counts"].get<std::vector<uint32_t>>());
    }
  }
  EXPECT_LE(flipped, 2u) << "of " << total << " pixels";
}

TEST(PasteMask, OutsideTheBoxIsEmptyAndDegenerateBoxesGiveEmptyMasks) {
  const std::vector<float> positive(64 * 64, 1.0f);
  const BinaryMask m = paste_mask(positive, {2, 1, 5, 3}, 6, 4);
  const std::vector<uint8_t> expected = {0, 0, 0, 0, 0, 0,  //
                                         0, 0, 1, 1, 1, 0,  //
                                         0, 0, 1, 1, 1, 0,  //
                                         0, 0, 0, 0, 0, 0};
  EXPECT_EQ(m.pixels, expected);
  const BinaryMask empty = paste_mask(positive, {3, 1, 3, 4}, 6, 4);
  EXPECT_EQ(empty.pixels, std::vector<uint8_t>(24, 0));
}

TEST(DecodeObjects, MasksOnlyForValidSegmentationObjectsWithADecoder) {
  std::string codes;
  for (int i = 0; i < 16; ++i) codes += "<seg001>";
  const std::string text = "<loc0100><loc0100><loc0900><loc0900>" + codes +
                           " a ; <loc0900><loc0100><loc0100><loc0900>" + codes +
                           " b ; <loc0000><loc0000><loc0500><loc0500> c";
  const DecodedObjects without = decode_objects(text, 50, 40, nullptr);
  ASSERT_EQ(without.objects.size(), 3u);
  EXPECT_TRUE(without.needs_mask_decoder);
  for (const DetectedObject& o : without.objects) EXPECT_FALSE(o.mask.has_value() || o.mask_rle.has_value());
  const DecodedObjects with = decode_objects(text, 50, 40, &decoder());
  EXPECT_FALSE(with.needs_mask_decoder);
  EXPECT_TRUE(with.objects[0].mask.has_value());
  EXPECT_FALSE(with.objects[1].mask.has_value());  // ymax < ymin
  EXPECT_FALSE(with.objects[2].mask.has_value());  // detection only
  const nlohmann::json j = objects_json(with);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["mask"]["size"], (nlohmann::json{40, 50}));
  EXPECT_EQ(j[0]["seg_codes"].size(), 16u);
  EXPECT_FALSE(j[1].contains("mask"));
  EXPECT_EQ(j[1]["valid"], false);
  EXPECT_FALSE(j[2].contains("seg_codes"));
  EXPECT_EQ(j[2]["box"], (nlohmann::json{0, 0, 24, 20}));  // 500 / 1024 * 50 = 24.41 -> 24, * 40 = 19.53 -> 20
}

}  // namespace
}  // namespace pg
