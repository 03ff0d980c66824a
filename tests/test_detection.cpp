// Task prompts and the detection-output parser, on hand-worked cases
// (big_vision/evaluators/proj/paligemma/transfers/segmentation.py).
#include <gtest/gtest.h>

#include "paligemma/error.h"
#include "tasks/detection.h"

namespace pg {
namespace {

std::string prompt(const std::string& task, const std::string& language = "", const std::string& objects = "",
                   const std::string& text = "") {
  return build_task_prompt({task, language, objects, text});
}

TEST(TaskPrompt, BuildsTheDocumentedPrefixes) {
  EXPECT_EQ(prompt("caption"), "caption en");
  EXPECT_EQ(prompt("caption", "de"), "caption de");
  EXPECT_EQ(prompt("describe", "zh"), "describe zh");
  EXPECT_EQ(prompt("ocr"), "ocr");
  EXPECT_EQ(prompt("answer", "", "", "  what colour is the car? "), "answer en what colour is the car?");
  EXPECT_EQ(prompt("question", "fr", "", "un chat"), "question fr un chat");
  EXPECT_EQ(prompt("detect", "", "cat"), "detect cat");
  EXPECT_EQ(prompt("segment", "", " cat;dog ;  big \t tree "), "segment cat ; dog ; big tree");
  EXPECT_EQ(prompt("detect", "", "chat noir ; 猫"), "detect chat noir ; 猫");
}

TEST(TaskPrompt, RejectsMissingAndMisplacedArguments) {
  EXPECT_THROW(prompt("translate"), Error);
  EXPECT_THROW(prompt("detect"), Error);
  EXPECT_THROW(prompt("segment", "", "  "), Error);
  EXPECT_THROW(prompt("answer"), Error);
  EXPECT_THROW(prompt("question", "en", "", " "), Error);
  EXPECT_THROW(prompt("ocr", "en"), Error);
  EXPECT_THROW(prompt("detect", "en", "cat"), Error);
  EXPECT_THROW(prompt("caption", "", "cat"), Error);
  EXPECT_THROW(prompt("detect", "", "cat", "why"), Error);
  EXPECT_THROW(prompt("caption", "e n"), Error);
  EXPECT_THROW(prompt("answer", "", "", "two\nlines"), Error);
}

TEST(TaskPrompt, ObjectListNormalization) {
  EXPECT_EQ(normalize_object_list("a;b"), "a ; b");
  EXPECT_EQ(normalize_object_list("  person  "), "person");
  EXPECT_THROW(normalize_object_list("cat ; ; dog"), Error);
  EXPECT_THROW(normalize_object_list("cat ;"), Error);
  EXPECT_THROW(normalize_object_list(";cat"), Error);
  EXPECT_THROW(normalize_object_list("<loc0001> cat"), Error);
  try {
    normalize_object_list("cat ; ; dog");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty name"), std::string::npos) << e.what();
  }
}

std::string locs(int ymin, int xmin, int ymax, int xmax) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "<loc%04d><loc%04d><loc%04d><loc%04d>", ymin, xmin, ymax, xmax);
  return buf;
}

std::string segs(int count, int first = 0) {
  std::string s;
  for (int i = 0; i < count; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "<seg%03d>", (first + 7 * i) % 128);
    s += buf;
  }
  return s;
}

TEST(DetectionParser, SeveralObjectsMapToOriginalPixels) {
  // 640x480: x = bin / 1024 * 640 = bin * 0.625, y = bin * 0.46875, rounded.
  const auto p = parse_detections(locs(100, 200, 300, 400) + " cat ; " + locs(512, 0, 1023, 512) + " dog", 640, 480);
  ASSERT_EQ(p.objects.size(), 2u);
  EXPECT_EQ(p.text, "");
  const DetectedObject& cat = p.objects[0];
  EXPECT_EQ(cat.label, "cat");
  EXPECT_EQ(cat.bins, (std::array<int, 4>{100, 200, 300, 400}));
  EXPECT_EQ((std::array<int, 4>{cat.box.x0, cat.box.y0, cat.box.x1, cat.box.y1}),
            (std::array<int, 4>{125, 47, 250, 141}));  // 46.875 -> 47, 140.625 -> 141
  EXPECT_EQ(cat.box_normalized, (std::array<double, 4>{200 / 1024.0, 100 / 1024.0, 400 / 1024.0, 300 / 1024.0}));
  EXPECT_TRUE(cat.valid);
  EXPECT_TRUE(cat.seg_codes.empty());
  const DetectedObject& dog = p.objects[1];
  EXPECT_EQ(dog.label, "dog");
  EXPECT_EQ((std::array<int, 4>{dog.box.x0, dog.box.y0, dog.box.x1, dog.box.y1}),
            (std::array<int, 4>{0, 240, 320, 480}));  // 1023 * 0.46875 = 479.53 -> 480
}

TEST(DetectionParser, RoundsHalvesToEvenLikePython) {
  // 5 px: bin 512 -> 2.5 -> 2; bin 256 -> 1.25 -> 1. 3 px: bin 512 -> 1.5 -> 2; bin 768 -> 2.25 -> 2.
  const auto p = parse_detections(locs(512, 256, 768, 512), 5, 3);
  ASSERT_EQ(p.objects.size(), 1u);
  const PixelBox b = p.objects[0].box;
  EXPECT_EQ((std::array<int, 4>{b.x0, b.y0, b.x1, b.y1}), (std::array<int, 4>{1, 2, 2, 2}));
  // 7 px: bin 384 -> 2.625 -> 3, bin 640 -> 4.375 -> 4; 6 px: 384 -> 2.25 -> 2, 640 -> 3.75 -> 4.
  const auto q = parse_detections(locs(384, 384, 640, 640), 7, 6);
  const PixelBox c = q.objects[0].box;
  EXPECT_EQ((std::array<int, 4>{c.x0, c.y0, c.x1, c.y1}), (std::array<int, 4>{3, 2, 4, 4}));
}

TEST(DetectionParser, LabelsWithSpacesAndNonAscii) {
  const auto p = parse_detections(
      locs(1, 2, 3, 4) + " big brown dog ; " + locs(1, 2, 3, 4) + " 猫 ; " + locs(1, 2, 3, 4) + " crème brûlée", 100,
      100);
  ASSERT_EQ(p.objects.size(), 3u);
  EXPECT_EQ(p.objects[0].label, "big brown dog");
  EXPECT_EQ(p.objects[1].label, "猫");
  EXPECT_EQ(p.objects[2].label, "crème brûlée");
  EXPECT_EQ(p.text, "");
}

TEST(DetectionParser, SeparatorSpacingVariants) {
  const auto p =
      parse_detections(locs(1, 2, 3, 4) + "cat;" + locs(5, 6, 7, 8) + "dog  ;  " + locs(9, 10, 11, 12), 64, 64);
  ASSERT_EQ(p.objects.size(), 3u);
  EXPECT_EQ(p.objects[0].label, "cat");
  EXPECT_EQ(p.objects[1].label, "dog");
  EXPECT_EQ(p.objects[2].label, "");  // output without labels (RefCOCO style)
  EXPECT_EQ(p.objects[2].bins, (std::array<int, 4>{9, 10, 11, 12}));
  EXPECT_EQ(p.text, "");
}

TEST(DetectionParser, TruncatedObjectAtTheEndIsText) {
  const auto p = parse_detections(locs(100, 200, 300, 400) + " cat ; <loc0001><loc0002>", 64, 64);
  ASSERT_EQ(p.objects.size(), 1u);
  EXPECT_EQ(p.objects[0].label, "cat");
  EXPECT_EQ(p.text, "<loc0001><loc0002>");
}

TEST(DetectionParser, TruncatedOrOverlongMaskIsText) {
  const std::string truncated = locs(10, 20, 30, 40) + segs(9) + " ca";
  const auto p = parse_detections(locs(1, 2, 3, 4) + " dog ; " + truncated, 64, 64);
  ASSERT_EQ(p.objects.size(), 1u);
  EXPECT_EQ(p.objects[0].label, "dog");
  EXPECT_EQ(p.text, truncated);

  const std::string overlong = locs(10, 20, 30, 40) + segs(17) + " cat";
  const auto q = parse_detections(overlong + " ; " + locs(1, 2, 3, 4) + " dog", 64, 64);
  ASSERT_EQ(q.objects.size(), 1u);
  EXPECT_EQ(q.objects[0].label, "dog");
  EXPECT_EQ(q.text, overlong);
}

TEST(DetectionParser, BoxesOutOfOrderAreKeptAsEmittedAndMarkedInvalid) {
  const auto p = parse_detections(locs(300, 400, 100, 200) + " cat ; " + locs(5, 5, 5, 9) + " line", 640, 480);
  ASSERT_EQ(p.objects.size(), 2u);
  const DetectedObject& o = p.objects[0];
  EXPECT_FALSE(o.valid);
  EXPECT_EQ(o.bins, (std::array<int, 4>{300, 400, 100, 200}));
  EXPECT_EQ((std::array<int, 4>{o.box.x0, o.box.y0, o.box.x1, o.box.y1}), (std::array<int, 4>{250, 141, 125, 47}));
  EXPECT_FALSE(p.objects[1].valid);  // ymax == ymin: big_vision requires ymax > ymin
}

TEST(DetectionParser, GarbageBetweenObjectsIsText) {
  const auto p = parse_detections("Sure! " + locs(1, 2, 3, 4) + " cat ; hello <b> world " + locs(5, 6, 7, 8) +
                                      " dog ; <loc1024><loc0001><loc0002><loc0003> tail",
                                  64, 64);
  ASSERT_EQ(p.objects.size(), 2u);
  EXPECT_EQ(p.objects[0].label, "cat");
  EXPECT_EQ(p.objects[1].label, "dog");
  // <loc1024> is not a vocabulary piece, so only three locs follow it: no object.
  EXPECT_EQ(p.text, "Sure! hello <b> world <loc1024><loc0001><loc0002><loc0003> tail");
}

TEST(DetectionParser, SegmentationObjectsCarryTheirSixteenCodes) {
  const std::string text =
      locs(100, 80, 950, 900) + segs(16, 3) + " cat ; " + locs(0, 0, 512, 512) + " " + segs(16, 100) + " dog";
  const auto p = parse_detections(text, 96, 80);
  ASSERT_EQ(p.objects.size(), 2u);
  EXPECT_EQ(p.text, "");
  EXPECT_EQ(p.objects[0].label, "cat");
  ASSERT_EQ(p.objects[0].seg_codes.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(p.objects[0].seg_codes[size_t(i)], (3 + 7 * i) % 128);
  EXPECT_EQ(p.objects[1].label, "dog");
  ASSERT_EQ(p.objects[1].seg_codes.size(), 16u);
  EXPECT_EQ(p.objects[1].seg_codes[0], 100);
  // <seg128> is out of range: the run is 15 long, so the object is text.
  const auto q = parse_detections(locs(1, 2, 3, 4) + segs(15) + "<seg128> x", 8, 8);
  EXPECT_TRUE(q.objects.empty());
}

TEST(DetectionParser, EmptyAndPlainOutput) {
  const auto e = parse_detections("", 10, 10);
  EXPECT_TRUE(e.objects.empty());
  EXPECT_EQ(e.text, "");
  const auto p = parse_detections("  a cat on a mat  ", 10, 10);
  EXPECT_TRUE(p.objects.empty());
  EXPECT_EQ(p.text, "a cat on a mat");
  EXPECT_FALSE(has_loc_tokens("a cat <loc1024> <loc12>"));
  EXPECT_TRUE(has_loc_tokens("x<loc0000>"));
  EXPECT_THROW(parse_detections("x", 0, 10), Error);
}

}  // namespace
}  // namespace pg
