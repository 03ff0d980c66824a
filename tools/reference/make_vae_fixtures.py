"""Writes tests/fixtures/vae/: a small random-weight PaliGemma mask decoder (VQ-VAE) in the real
vae-oid.npz key layout, and what an independent PyTorch implementation of it computes.

Run inside the Debian sid reference root (torch, numpy, Pillow), from the repository root:
  sudo tools/reference/reference-root.sh run -- \
      python3 tools/reference/make_vae_fixtures.py

The decoder is built from the architecture of big_vision's vae-oid decoder
(big_vision/evaluators/proj/paligemma/transfers/segmentation.py) with torch.nn layers
(torch_parts.mask_decoder: Conv2d, ConvTranspose2d(kernel 4, stride 2, padding 1)), so it shares no code with the
C++ engine; tools/synthetic/train.py builds the shipped model's decoder with the same function. Channel
widths are smaller than the real file's (codebook dim 8, 12 channels, upsampling 8/8/4/4) to keep the
fixtures small; the C++ decoder reads every width from the array shapes.

Mask pasting follows big_vision's segmentation evaluator: PIL bilinear resize of the float 64x64 map (mode
"F") to the box size, then > 0; the box is the HF Space's (bin / 1024 * size, Python round). RLE is
pycocotools' uncompressed form, computed here in plain Python (pycocotools is not available).
"""
import json
import os
import sys
import zipfile

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_parts  # noqa: E402

OUT = "tests/fixtures/vae"
CODEBOOK_SIZE = 128
CODEBOOK_DIM = 8
CHANNELS = 12
UPSAMPLE_CHANNELS = (8, 8, 4, 4)


class MaskDecoder(nn.Module):
    """Module indices reproduce the state_dict names of vae-oid.npz (decoder.0, decoder.2.net.0, ...)."""

    def __init__(self):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(CODEBOOK_SIZE, CODEBOOK_DIM))
        self.decoder = torch_parts.mask_decoder(CODEBOOK_DIM, CHANNELS, UPSAMPLE_CHANNELS)

    def forward(self, codes):  # codes [B, 16] -> [B, 64, 64]
        grid = self.codebook[codes].reshape(codes.shape[0], 4, 4, CODEBOOK_DIM).permute(0, 3, 1, 2)
        return self.decoder(grid)[:, 0]


def coco_rle_counts(mask):
    """pycocotools' uncompressed RLE: column-major runs, starting with a (possibly empty) run of zeros."""
    flat = mask.T.reshape(-1)
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return counts


def space_box(bins, width, height):
    """HF Space: y with the height, x with the width, bin / 1024, Python round (half to even)."""
    ymin, xmin, ymax, xmax = bins
    return [round(xmin / 1024 * width), round(ymin / 1024 * height),
            round(xmax / 1024 * width), round(ymax / 1024 * height)]


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    model = MaskDecoder().eval()
    with torch.no_grad():
        # Default init leaves the map nearly constant; larger weights make varied masks, and the final bias
        # is set so that about half of the values are positive.
        for name, p in model.decoder.named_parameters():
            if name.endswith("weight"):
                p.mul_(2.0)
        probe = model(torch.randint(0, CODEBOOK_SIZE, (64, 16)))
        model.decoder[12].bias -= probe.median()

    state = {"_vq_vae._embedding": model.codebook.detach().numpy()}
    for name, value in model.decoder.state_dict().items():
        state["decoder." + name] = value.numpy()
    state["encoder.0.weight"] = np.zeros((4, 1, 4, 4), np.float32)  # the real file has encoder keys too
    np.savez_compressed(f"{OUT}/vae_small.npz", **state)
    # A stored (uncompressed) archive for the reader's tests, with one array of each unsupported kind.
    np.savez(f"{OUT}/stored.npz", matrix=np.arange(12, dtype=np.float32).reshape(3, 4),
             scalar=np.float32(2.5), doubles=np.zeros(3, np.float64),
             fortran=np.asfortranarray(np.ones((2, 3), np.float32)))
    with zipfile.ZipFile(f"{OUT}/stored.npz") as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    with zipfile.ZipFile(f"{OUT}/vae_small.npz") as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())

    rng = np.random.default_rng(1)
    code_sets = [rng.integers(0, CODEBOOK_SIZE, 16).tolist(), [127] * 16, list(range(0, 128, 8))]
    with torch.no_grad():
        maps = model(torch.tensor(code_sets)).numpy().astype(np.float32)
    np.save(f"{OUT}/maps.npy", maps)

    # (image width, height, bins ymin xmin ymax xmax, code set): boxes that enlarge, shrink (antialiased
    # support), keep one side at 64, shrink one side and enlarge the other, both pass orders, a one-pixel box;
    # the mask is the resized map > 0 pasted into the box (the C++ test rebuilds it from resized_*.npy).
    paste_cases = [
        (96, 80, [100, 80, 950, 900], 0),
        (160, 120, [300, 200, 520, 430], 1),
        (40, 30, [0, 0, 1023, 1023], 2),
        (128, 100, [204, 300, 900, 812], 0),
        (150, 40, [10, 20, 1000, 400], 1),
        (30, 100, [100, 0, 1000, 900], 2),
        (90, 90, [512, 512, 523, 523], 0),
    ]
    cases, pixels = [], []
    for i, (width, height, bins, code_index) in enumerate(paste_cases):
        x0, y0, x1, y1 = space_box(bins, width, height)
        resized = np.asarray(Image.fromarray(maps[code_index], mode="F").resize((x1 - x0, y1 - y0),
                                                                                Image.BILINEAR))
        mask = np.zeros((height, width), np.uint8)
        mask[y0:y1, x0:x1] = resized > 0.0
        np.save(f"{OUT}/resized_{i}.npy", resized.astype(np.float32))
        pixels.append(int(mask.sum()))
        cases.append({"width": width, "height": height, "bins": bins, "codes": code_index,
                      "box": [x0, y0, x1, y1], "resized": f"resized_{i}.npy",
                      "rle": {"size": [height, width], "counts": coco_rle_counts(mask)}})

    with open(f"{OUT}/cases.json", "w") as f:
        json.dump({"code_sets": code_sets, "maps": "maps.npy", "paste": cases,
                   "widths": {"codebook_dim": CODEBOOK_DIM, "channels": CHANNELS,
                              "upsample": list(UPSAMPLE_CHANNELS)}}, f)
        f.write("\n")
    print("map range", float(maps.min()), float(maps.max()), "positive fraction", float((maps > 0).mean()))
    print("mask pixels", pixels)


if __name__ == "__main__":
    main()
