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

}  // namespace pg
