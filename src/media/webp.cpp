// WebP (libwebp's WebPAnimDecoder, exactly as Pillow decodes both still and animated WebP: RGBA
// canvas, first frame; the alpha channel is dropped).
#include <webp/decode.h>
#include <webp/demux.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "media/decoders.h"

namespace pg::image_decoders {

ImageRGB8 decode_webp(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(data, size, &features);
  if (status == VP8_STATUS_NOT_ENOUGH_DATA) fail_truncated(name, "WebP");
  if (status != VP8_STATUS_OK) fail_corrupt(name, "WebP", "cannot parse the header");
  check_dimensions(name, uint64_t(std::max(features.width, 0)), uint64_t(std::max(features.height, 0)), max_pixels);

  WebPData webp_data{data, size};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw Error("image '" + name + "': libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(WebPAnimDecoderNew(&webp_data, &options),
                                                                       WebPAnimDecoderDelete);
  if (!decoder) fail(name, std::string("WebP cannot be decoded: the file is truncated or corrupt; ") +
                               "re-download or re-export it");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info)) fail_corrupt(name, "WebP", "cannot read the canvas");
  check_dimensions(name, info.canvas_width, info.canvas_height, max_pixels);
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp) || !rgba) {
    fail(name, "WebP image data cannot be decoded: the file is truncated or corrupt; re-download or re-export it");
  }
  ImageRGB8 image = new_image(int(info.canvas_width), int(info.canvas_height));
  const size_t n = size_t(info.canvas_width) * info.canvas_height;
  for (size_t i = 0; i < n; ++i) std::memcpy(&image.pixels[3 * i], rgba + 4 * i, 3);
  return image;
}

}  // namespace pg::image_decoders
