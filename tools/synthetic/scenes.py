"""Synthetic scenes: coloured circles, squares and triangles on a plain background, the questions the
project's small PaliGemma is trained on, and their exact expected answers.

Plain Python 3 + numpy + Pillow (runs on Debian 12's python3-numpy/python3-pil and in the sid reference root).
Masks are drawn geometrically with numpy (a pixel belongs to a shape when its centre does), and the picture is
painted from the masks, so scenes do not depend on any drawing library's rasterizer.

Write a scene set for other tools (format: tools/synthetic/README.md):
  python3 tools/synthetic/scenes.py --out DIR --count N --seed S [--vae models/synthetic/vae.npz]

Loc tokens encode ymin, xmin, ymax, xmax of a box on the squashed square input as
  bin = clamp(round(coord / side * 1024), 0, 1023)      (y with the height, x with the width)
the inverse of the engine's decoding pixel = round(bin / 1024 * side) (docs/cli.md "Tasks, boxes and masks"); for these
canvas sizes (side <= 320) decoding gives back the exact integer box.
Seg tokens are the 16 codes of the shape's mask: the mask cropped to its box, resized to 64x64 with Pillow's
bilinear filter on a float image (antialiased when shrinking, big_vision's refcoco_mask2str), mapped to [-1, 1]
and encoded by the VQ-VAE encoder stored in vae.npz (tools/synthetic/train.py trains it; nearest codebook row).
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

MIN_SIDE, MAX_SIDE = 160, 320
BACKGROUNDS = {"white": (255, 255, 255), "light gray": (200, 200, 200), "dark gray": (60, 60, 60)}
COLORS = {"red": (220, 30, 30), "green": (30, 160, 30), "blue": (30, 60, 220), "yellow": (230, 200, 20)}
KINDS = ("circle", "square", "triangle")
BOX_FRACTION = (0.2, 0.45)
MASK_SIZE = 64
CODES_PER_MASK = 16
CODEBOOK_SIZE = 128
COUNT_PROMPT = "answer en how many shapes are there?"


def shape_mask(kind, box, width, height):
    """Boolean [height, width] mask of a filled shape in its end-exclusive box; a pixel is in when its centre is."""
    x0, y0, x1, y1 = box
    side = x1 - x0
    ys, xs = np.mgrid[y0:y1, x0:x1]
    px, py = xs + 0.5, ys + 0.5
    if kind == "square":
        inside = np.ones((side, side), bool)
    elif kind == "circle":
        cx, cy = x0 + side / 2.0, y0 + side / 2.0
        inside = (px - cx) ** 2 + (py - cy) ** 2 <= (side / 2.0) ** 2
    elif kind == "triangle":  # apex at the top centre, base along the bottom edge, as wide as tall
        inside = np.abs(px - (x0 + side / 2.0)) <= (py - y0) / 2.0
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def boxes_overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_scene(rng):
    """One scene: canvas size, background, 1-3 shapes (left to right by box centre) with masks, and the picture."""
    while True:
        width = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
        height = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
        background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
        count = int(rng.integers(1, 4))
        pairs = [(c, k) for c in COLORS for k in KINDS]
        chosen = rng.choice(len(pairs), size=count, replace=False)
        shapes, placed = [], True
        for index in chosen:
            color, kind = pairs[int(index)]
            side = int(round(rng.uniform(*BOX_FRACTION) * min(width, height)))
            for _ in range(100):
                x0 = int(rng.integers(0, width - side + 1))
                y0 = int(rng.integers(0, height - side + 1))
                box = [x0, y0, x0 + side, y0 + side]
                if not any(boxes_overlap(box, s["box"]) for s in shapes):
                    break
            else:
                placed = False
                break
            shapes.append({"kind": kind, "color": color, "box": box})
        if placed:
            break
    shapes.sort(key=lambda s: (s["box"][0] + s["box"][2], s["box"][1] + s["box"][3]))
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUNDS[background]
    for s in shapes:
        s["mask"] = shape_mask(s["kind"], s["box"], width, height)
        image[s["mask"]] = COLORS[s["color"]]
    return {"width": width, "height": height, "background": background, "shapes": shapes, "image": image}


def loc_bins(box, width, height):
    """ymin, xmin, ymax, xmax bins of a pixel box (see the module docstring)."""
    x0, y0, x1, y1 = box

    def to_bin(coord, side):
        return min(max(int(round(coord / side * 1024)), 0), 1023)

    return [to_bin(y0, height), to_bin(x0, width), to_bin(y1, height), to_bin(x1, width)]


def loc_text(box, width, height):
    return "".join(f"<loc{b:04d}>" for b in loc_bins(box, width, height))


def mask_crop(mask, box):
    """The mask inside its box resized to 64x64 floats in [0, 1] (Pillow bilinear, mode F)."""
    x0, y0, x1, y1 = box
    crop = Image.fromarray(mask[y0:y1, x0:x1].astype(np.float32), mode="F")
    return np.asarray(crop.resize((MASK_SIZE, MASK_SIZE), Image.BILINEAR), dtype=np.float32)


class MaskEncoder:
    """The VQ-VAE encoder of vae.npz in numpy: a 16x16-patch MLP (Conv2d 16x16 stride 16, ReLU, Conv2d 1x1) to a
    4x4 grid of vectors, each replaced by the index of its nearest codebook row (L2)."""

    def __init__(self, arrays):
        self.w0 = np.asarray(arrays["encoder.0.weight"], np.float32)
        self.b0 = np.asarray(arrays["encoder.0.bias"], np.float32)
        self.w2 = np.asarray(arrays["encoder.2.weight"], np.float32)
        self.b2 = np.asarray(arrays["encoder.2.bias"], np.float32)
        self.codebook = np.asarray(arrays["_vq_vae._embedding"], np.float32)

    @classmethod
    def load(cls, path):
        with np.load(path) as z:
            return cls({k: z[k] for k in z.files})

    def vectors(self, crops):
        """[N, 64, 64] maps in [-1, 1] -> [N, 16, D] encoder outputs, grid cells row-major."""
        n = crops.shape[0]
        patches = crops.reshape(n, 4, 16, 4, 16).transpose(0, 1, 3, 2, 4).reshape(n, 16, 256)
        hidden = np.maximum(patches @ self.w0.reshape(self.w0.shape[0], 256).T + self.b0, 0.0)
        return hidden @ self.w2.reshape(self.w2.shape[0], -1).T + self.b2

    def codes(self, crops):
        z = self.vectors(np.asarray(crops, np.float32))
        distances = ((z[:, :, None, :] - self.codebook[None, None]) ** 2).sum(-1)
        return distances.argmin(-1)

    def encode(self, mask, box):
        return [int(c) for c in self.codes(2.0 * mask_crop(mask, box)[None] - 1.0)[0]]


def label(shape):
    return f"{shape['color']} {shape['kind']}"


def caption(shapes):
    names = [f"a {label(s)}" for s in shapes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def detect_answer(matches, name, width, height):
    return " ; ".join(f"{loc_text(s['box'], width, height)} {name}" for s in matches)


def questions(scene, rng, encoder=None):
    """Every question of a scene with its expected answer: caption, count, colour of each unique kind, kind of each
    unique colour, detect <kind> for all three kinds, detect <color> <kind> for each shape plus one absent pair,
    segment <color> <kind> for each shape (only with an encoder, which gives the seg codes)."""
    shapes, width, height = scene["shapes"], scene["width"], scene["height"]
    out = [{"task": "caption", "prompt": "caption en", "answer": caption(shapes)},
           {"task": "count", "prompt": COUNT_PROMPT, "answer": str(len(shapes))}]
    for kind in KINDS:
        same = [s for s in shapes if s["kind"] == kind]
        if len(same) == 1:
            out.append({"task": "color", "prompt": f"answer en what color is the {kind}?", "answer": same[0]["color"]})
    for color in COLORS:
        same = [s for s in shapes if s["color"] == color]
        if len(same) == 1:
            out.append({"task": "shape", "prompt": f"answer en what shape is {color}?", "answer": same[0]["kind"]})

    def detect(name, matches):
        return {"task": "detect", "prompt": f"detect {name}", "answer": detect_answer(matches, name, width, height),
                "objects": matches}

    for kind in KINDS:
        out.append(detect(kind, [s for s in shapes if s["kind"] == kind]))
    for s in shapes:
        out.append(detect(label(s), [s]))
    present = {(s["color"], s["kind"]) for s in shapes}
    absent = [(c, k) for c in COLORS for k in KINDS if (c, k) not in present]
    color, kind = absent[int(rng.integers(len(absent)))]
    out.append(detect(f"{color} {kind}", []))
    if encoder is not None:
        for s in shapes:
            codes = "".join(f"<seg{c:03d}>" for c in encoder.encode(s["mask"], s["box"]))
            out.append({"task": "segment", "prompt": f"segment {label(s)}",
                        "answer": f"{loc_text(s['box'], width, height)}{codes} {label(s)}", "objects": [s]})
    return out


def coco_rle(mask):
    """pycocotools' uncompressed RLE: column-major runs starting with a (possibly empty) run of zeros."""
    flat = np.asarray(mask, np.uint8).T.reshape(-1)
    change = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def scene_rng(seed, index):
    """Scene i of a seed has its own generator, so scenes can be drawn in any order or in parallel."""
    return np.random.default_rng([seed, index])


def scene_record(scene, image_name, qs):
    def obj(s):
        return {"label": label(s), "box": s["box"], "mask": coco_rle(s["mask"])}

    return {"image": image_name, "width": scene["width"], "height": scene["height"],
            "background": scene["background"],
            "shapes": [{"kind": s["kind"], "color": s["color"], "box": s["box"], "mask": coco_rle(s["mask"])}
                       for s in scene["shapes"]],
            "questions": [{k: v for k, v in q.items() if k != "objects"} |
                          ({"objects": [obj(s) for s in q["objects"]]} if "objects" in q else {})
                          for q in qs]}


def write_set(out_dir, count, seed, encoder):
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    with open(os.path.join(out_dir, "scenes.jsonl"), "w", encoding="utf-8") as f:
        for i in range(count):
            rng = scene_rng(seed, i)
            scene = draw_scene(rng)
            name = f"images/{i:06d}.png"
            Image.fromarray(scene["image"], "RGB").save(os.path.join(out_dir, name))
            f.write(json.dumps(scene_record(scene, name, questions(scene, rng, encoder))) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_vae = os.path.join(here, "..", "..", "models", "synthetic", "vae.npz")
    ap = argparse.ArgumentParser(description="Write a set of synthetic scenes with questions and answers.")
    ap.add_argument("--out", required=True, help="output folder (images/ and scenes.jsonl)")
    ap.add_argument("--count", type=int, required=True, help="number of scenes")
    ap.add_argument("--seed", type=int, default=0, help="seed; scene i is drawn from numpy default_rng([seed, i])")
    ap.add_argument("--vae", default=default_vae, help="vae.npz whose encoder gives the segment answers' seg codes")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")
    if not os.path.isfile(args.vae):
        ap.error(f"no VQ-VAE at {args.vae}; pass --vae models/synthetic/vae.npz (written by tools/synthetic/train.py)")
    write_set(args.out, args.count, args.seed, MaskEncoder.load(args.vae))


if __name__ == "__main__":
    main()
