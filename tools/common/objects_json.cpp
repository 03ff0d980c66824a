#include "objects_json.h"

namespace pg {

nlohmann::json objects_json(const DecodedObjects& decoded) {
  nlohmann::json objects = nlohmann::json::array();
  for (const DetectedObject& o : decoded.objects) {
    nlohmann::json j{{"label", o.label},
                     {"box", {o.box.x0, o.box.y0, o.box.x1, o.box.y1}},
                     {"box_normalized", o.box_normalized},
                     {"valid", o.valid}};
    if (!o.seg_codes.empty()) j["seg_codes"] = o.seg_codes;
    if (o.mask_rle) j["mask"] = {{"size", {o.mask_rle->height, o.mask_rle->width}}, {"counts", o.mask_rle->counts}};
    objects.push_back(std::move(j));
  }
  return objects;
}

nlohmann::ordered_json batch_result_json(const GenerateResult& r, bool beam_search) {
  nlohmann::ordered_json out{
      {"text", r.text}, {"tokens", r.tokens}, {"finish_reason", finish_reason_name(r.finish_reason)}};
  if (beam_search) out["score"] = r.score;
  // Boxes and masks on the first image, as `generate --json` gives them.
  if (has_loc_tokens(r.text)) out["objects"] = objects_json(r.objects);
  const Timings& t = r.timings;
  out["timings"] = nlohmann::ordered_json{{"preprocess_s", t.preprocess_s},
                                          {"vision_s", t.vision_s},
                                          {"prefill_s", t.prefill_s},
                                          {"ttft_s", t.ttft_s},
                                          {"decode_tokens_per_s", t.decode_tokens_per_s},
                                          {"total_s", t.total_s}};
  return out;
}

}  // namespace pg
