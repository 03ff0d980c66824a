// The mask decoder read from an .npz archive (big_vision's vae-oid.npz, or the `vae.npz` a model directory
// or a quantized file carries).
#pragma once
#include <string>

#include "model/mask_decoder.h"

namespace pg {

// Throws pg::Error naming the file for an unreadable archive and naming the file and array for a missing
// array or a shape that does not fit.
MaskDecoder load_mask_decoder(const std::string& npz_path);

}  // namespace pg
