// PaliGemma's tasks: the prompt of a named task, and detection / segmentation output as objects with boxes and
// masks (big_vision/evaluators/proj/paligemma/transfers/segmentation.py; prompts as the PaliGemma model cards
// give them). Engine::generate fills GenerateResult::objects with decode_objects on the first image; these
// functions also parse text generated elsewhere, without a model.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paligemma/image.h"

namespace pg {

// ---- Task prompts -----------------------------------------------------------------------------------------

struct TaskPromptRequest {
  std::string task;      // caption | describe | ocr | answer | question | detect | segment
  std::string language;  // caption, describe, answer, question; empty means "en"
  std::string objects;   // detect, segment: "cat ; dog" (any spacing around ';')
  // answer: the question to answer. question: the answer to write a question for (the task is
  // "question {lang} {answer}", question generation). Other tasks take no free text.
  std::string text;
};

// The prefix, e.g. "caption en", "answer en what is this?", "detect cat ; dog"; the engine adds the "\n".
// Throws pg::Error (one line, naming the flag-like field) for an unknown task, a missing or unneeded
// argument, a language that is not one word, a newline in the free text (it would end the prefix early),
// and the object-list errors of normalize_object_list.
std::string build_task_prompt(const TaskPromptRequest& request);

// "cat;dog ;  big \t tree " -> "cat ; dog ; big tree": names trimmed, runs of white space inside a name made
// one space, names joined by " ; ". Throws pg::Error for an empty list, an empty name ("cat ; ; dog", a
// trailing ";"), or a name holding "<" or ">" (it would read as a special token).
std::string normalize_object_list(const std::string& objects);

// ---- Objects ----------------------------------------------------------------------------------------------

constexpr int kLocBins = 1024;  // <loc0000> ... <loc1023>

// A box in pixels: columns x0 <= x < x1, rows y0 <= y < y1 (end exclusive, like a PIL box and numpy
// slices) — as the model emitted it, so x1 < x0 or y1 < y0 can happen for an invalid object.
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};

// A binary mask over a whole image, row-major, 1 inside and 0 outside.
struct BinaryMask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// COCO's uncompressed run-length encoding (pycocotools): runs over the pixels in column-major order,
// alternating 0-runs and 1-runs and starting with a 0-run (which may be empty).
struct CocoRle {
  int height = 0;
  int width = 0;
  std::vector<uint32_t> counts;
};
CocoRle encode_coco_rle(const BinaryMask& mask);

struct DetectedObject {
  std::string label;                       // trimmed; may be empty (e.g. RefCOCO-style output) or non-ASCII UTF-8
  std::array<int, 4> bins{};               // as emitted: ymin, xmin, ymax, xmax, each in [0, 1023]
  PixelBox box;                            // round(bin / 1024 * side), Python rounding (half to even)
  std::array<double, 4> box_normalized{};  // x0, y0, x1, y1 = bin / 1024
  // big_vision's validity rule (segmentation evaluator): ymax > ymin and xmax > xmin in bins.
  bool valid = false;
  std::vector<int> seg_codes;  // empty, or the 16 mask codes (4x4 grid, row-major) of segmentation output
  // A valid object with seg codes, decoded with a mask decoder: its image-sized mask and the mask's COCO RLE.
  std::optional<BinaryMask> mask;
  std::optional<CocoRle> mask_rle;
};

struct DecodedObjects {
  std::vector<DetectedObject> objects;  // in output order
  std::string text;                     // everything that is not part of an object, pieces joined by " "
  bool needs_mask_decoder = false;      // some object has seg codes but no decoder was given
};

// The VQ-VAE that turns an object's 16 <segNNN> codes into a mask (big_vision's vae-oid.npz). An opaque,
// immutable handle: safe to share between threads.
class MaskDecoder;

// Reads a mask decoder .npz (vae-oid.npz, or the vae.npz of a model directory). Throws pg::Error naming the
// file for an unreadable archive, and the file and array for a missing array or a shape that does not fit.
std::shared_ptr<const MaskDecoder> load_mask_decoder(const std::string& npz_path);

// The mask decoder a model brings: `model`/vae.npz for a model directory, the vae.npz a quantized file
// carries; null when it has none (a real PaliGemma needs vae-oid.npz given with load_mask_decoder).
// Throws pg::Error for an unreadable quantized file or decoder.
std::shared_ptr<const MaskDecoder> load_model_mask_decoder(const std::string& model);

// Parses decoded text (the <locNNNN>/<segNNN> pieces verbatim, as Engine::decode keeps them) for an original
// image of width x height pixels, then decodes the masks when `decoder` is not null. Never fails on model
// output: an object is 4 consecutive loc pieces, then optional white space, then optionally exactly 16
// consecutive seg pieces, then optional white space, then a label (the longest run without ';', '<' or '>',
// trimmed), then optional white space and one optional ';'. Whatever does not fit this (a truncated object,
// a seg run that is not exactly 16 long, pieces out of range, garbage between objects) goes to `text`.
// Throws pg::Error for an image size < 1, and before any mask work when masks are due and the image has
// more than `max_pixels` pixels (each mask is an image-sized bitmap).
DecodedObjects decode_objects(std::string_view text, int image_width, int image_height, const MaskDecoder* decoder,
                              size_t max_pixels = kDefaultMaxImagePixels);

// Whether the text contains at least one <locNNNN> piece (so it is worth parsing).
bool has_loc_tokens(std::string_view text);

}  // namespace pg
