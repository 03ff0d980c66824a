#!/usr/bin/env python3
"""Generates tests/fixtures/images/: small images in every supported format and mode, with what the
reference (Pillow + transformers in the Debian sid root) makes of them.

For every image file it records
  * PIL's Image.open(f).convert("RGB") as uint8 .npy [H, W, 3]            (decode_image_* parity)
  * for some, Image.fromarray(rgb).resize((w, h), Image.BICUBIC) as uint8 .npy  (resize_bicubic_pil)
  * for two, SiglipImageProcessorPil's pixel_values as float32 .npy [3, H, W]   (normalize_to_chw)
in manifest.json. Identical arrays are stored once. Everything is deterministic (seeded noise, PIL
drawing, hand-written encoders for layouts Pillow cannot write: 16-bit and interlaced PNG, BMP RLE and
bit fields, TGA colour-map offsets, plain PNM...).

Run it in the reference root, from the repository root:
  sudo tools/reference/reference-root.sh run -- \
      python3 tools/reference/make_image_fixtures.py
"""
import hashlib
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageDraw, features

OUT = "tests/fixtures/images"
BICUBIC = Image.Resampling.BICUBIC

entries = []
stored = {}  # sha1 of an array -> relative path
total_bytes = 0


def save_npy(array, stem):
    """Stores an array once; returns its path relative to OUT."""
    global total_bytes
    key = hashlib.sha1(array.dtype.str.encode() + str(array.shape).encode() + array.tobytes()).hexdigest()
    if key in stored:
        return stored[key]
    rel = f"expected/{stem}.npy"
    assert not os.path.exists(os.path.join(OUT, rel)), rel
    np.save(os.path.join(OUT, rel), np.ascontiguousarray(array))
    total_bytes += os.path.getsize(os.path.join(OUT, rel))
    stored[key] = rel
    return rel


def write_file(rel, data):
    global total_bytes
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    total_bytes += len(data)
    return rel


def pil_bytes(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def add(rel, data, fmt, note, resizes=(), processor=None):
    """Writes an image file and records the reference's view of it."""
    write_file(rel, data)
    stem = rel.replace("/", "_").rsplit(".", 1)[0]
    with Image.open(os.path.join(OUT, rel)) as im:
        pil_mode = im.mode
        rgb = np.asarray(im.convert("RGB"))
    entry = {
        "file": rel,
        "format": fmt,
        "pil_mode": pil_mode,
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "note": note,
        "rgb": save_npy(rgb, stem + ".rgb"),
        "resize": [],
    }
    for w, h in resizes:
        out = np.asarray(Image.fromarray(rgb).resize((w, h), BICUBIC))
        entry["resize"].append({"width": w, "height": h, "npy": save_npy(out, f"{stem}.resize{w}x{h}")})
    if processor:
        pw, ph = processor
        from transformers import SiglipImageProcessorPil

        proc = SiglipImageProcessorPil(
            size={"height": ph, "width": pw}, resample=3, do_rescale=True, rescale_factor=1 / 255,
            do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
        with Image.open(os.path.join(OUT, rel)) as im:
            pv = proc(images=im, return_tensors="np")["pixel_values"][0]
        assert pv.dtype == np.float32 and pv.shape == (3, ph, pw), (pv.dtype, pv.shape)
        entry["processor"] = {"width": pw, "height": ph, "npy": save_npy(pv, f"{stem}.processor{pw}x{ph}")}
        # The processor's resize is PIL's resize of the RGB image, and its values a function of uint8.
        resized = np.asarray(Image.fromarray(rgb).resize((pw, ph), BICUBIC))
        lut = ((np.arange(256, dtype=np.float64) * (1 / 255)).astype(np.float32) - np.float32(0.5)) / np.float32(0.5)
        assert np.array_equal(lut[resized].transpose(2, 0, 1), pv), "processor != float32((u8 * (1/255) f64) - .5) / .5"
        entry["processor"]["distinct_u8_values"] = int(len(np.unique(resized)))
    entries.append(entry)
    return rgb


errors = []


def add_error(rel, data, note):
    """Writes a file that Pillow refuses to decode; the engine must refuse it too."""
    write_file(rel, data)
    try:
        with Image.open(os.path.join(OUT, rel)) as im:
            im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - any failure is what we record
        errors.append({"file": rel, "note": note, "pil_error": f"{type(e).__name__}: {e}"})
        return
    raise AssertionError(f"Pillow decoded {rel}, expected an error")


# ----------------------------------------------------------------------------------------------
# Source pictures: gradients, shapes and seeded noise (so every value 0..255 shows up).

def scene(w, h, seed, noise=10.0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x * 255.0 / max(w - 1, 1)
    g = y * 255.0 / max(h - 1, 1)
    b = 255.0 - (x + y) * 255.0 / max(w + h - 2, 1)
    img = np.stack([r, g, b], -1) + rng.normal(0.0, noise, (h, w, 3))
    im = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse([w * 0.1, h * 0.15, w * 0.55, h * 0.7], fill=(250, 30, 20), outline=(0, 0, 0))
    d.rectangle([w * 0.6, h * 0.5, w * 0.9, h * 0.9], fill=(20, 200, 40))
    d.line([0, h - 1, w - 1, 0], fill=(255, 255, 255), width=max(1, min(w, h) // 20))
    return im


def alpha_of(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    a[(x + y) % 7 == 0] = 0  # fully transparent pixels keep their colour in convert("RGB")
    a[rng.random((h, w)) < 0.05] = 255
    return a


def with_alpha(rgb_im, seed):
    a = alpha_of(rgb_im.width, rgb_im.height, seed)
    return Image.fromarray(np.dstack([np.asarray(rgb_im), a]), "RGBA")


# ----------------------------------------------------------------------------------------------
# Hand-written encoders.

def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_pack_rows(samples, bit_depth):
    """samples: [h, w, c] ints. Returns packed rows (without filter bytes)."""
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        flat = samples[y].reshape(-1)
        if bit_depth == 16:
            rows.append(flat.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(flat.astype(np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            out = bytearray((len(flat) + per - 1) // per)
            for i, v in enumerate(flat):
                out[i // per] |= int(v) << (8 - bit_depth * (i % per + 1))
            rows.append(bytes(out))
    return rows


def png_encode(samples, color_type, bit_depth, palette=None, trns=None, interlace=False, filters=(0,)):
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, c = samples.shape
    bpp = max(1, c * bit_depth // 8)

    def filtered(rows):
        out = b""
        prev = bytes(len(rows[0])) if rows else b""
        for i, row in enumerate(rows):
            ft = filters[i % len(filters)]
            cur = bytearray(row)
            enc = bytearray(len(row))
            for j in range(len(row)):
                a = cur[j - bpp] if j >= bpp else 0
                b = prev[j]
                cc = prev[j - bpp] if j >= bpp else 0
                if ft == 0:
                    pred = 0
                elif ft == 1:
                    pred = a
                elif ft == 2:
                    pred = b
                elif ft == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - cc
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                enc[j] = (cur[j] - pred) & 255
            out += bytes([ft]) + bytes(enc)
            prev = row
        return out

    if interlace:
        raw = b""
        for xs, ys, dx, dy in ADAM7:
            sub = samples[ys::dy, xs::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += filtered(png_pack_rows(sub, bit_depth))
    else:
        raw = filtered(png_pack_rows(samples, bit_depth))
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        data += png_chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    idat = zlib.compress(raw, 9)
    data += png_chunk(b"IDAT", idat[: len(idat) // 2]) + png_chunk(b"IDAT", idat[len(idat) // 2 :])
    return data + png_chunk(b"IEND", b"")


def bmp_file(w, h, bits, pixel_data, palette=(), compression=0, header=40, top_down=False, masks=None, colors=0):
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
        pal = b"".join(bytes([b, g, r]) for r, g, b in palette)
    else:
        info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bits, compression, len(pixel_data),
                           2835, 2835, colors, 0)
        pal = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
        if masks is not None:
            info += struct.pack("<III", *masks)
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(pixel_data), 0, 0, off) + info + pal + pixel_data


def bmp_rows(rows, bits):  # rows already packed; pads each to 4 bytes
    return b"".join(row + bytes((-len(row)) % 4) for row in rows)


def rle8_encode(index_rows, delta_at=None):
    """index_rows: bottom-up rows of palette indices. Mixed runs and absolute packets."""
    out = bytearray()
    for y, row in enumerate(index_rows):
        x = 0
        n = len(row)
        while x < n:
            if delta_at == (x, y):
                out += bytes([0, 2, 2, 0])  # skip 2 pixels (Pillow fills them with index 0)
                x += 2
                continue
            run = 1
            while x + run < n and run < 255 and row[x + run] == row[x]:
                run += 1
            if run >= 2 or n - x < 3:
                out += bytes([run, row[x]])
                x += run
            else:
                lit = 1
                while x + lit < n and lit < 255 and (x + lit + 1 >= n or row[x + lit] != row[x + lit + 1]):
                    lit += 1
                if lit < 3:
                    out += bytes([1, row[x]])
                    x += 1
                    continue
                out += bytes([0, lit]) + bytes(row[x : x + lit])
                if lit % 2:
                    out += b"\0"
                x += lit
        out += b"\0\0"
    return bytes(out) + b"\0\1"


def rle4_encode(index_rows):
    out = bytearray()
    for row in index_rows:
        x = 0
        n = len(row)
        while x < n:
            # run of alternating pair (a, b, a, b...)
            run = 1
            while x + run < n and run < 255 and row[x + run] == row[x + (run % 2)]:
                run += 1
            if run >= 3 or n - x < 4:
                b = row[x + 1] if run > 1 else 0
                out += bytes([run, (row[x] << 4) | b])
                x += run
            else:
                lit = min(n - x, 12)
                nib = bytearray((lit + 1) // 2)
                for i in range(lit):
                    nib[i // 2] |= row[x + i] << (4 if i % 2 == 0 else 0)
                out += bytes([0, lit]) + nib
                if len(nib) % 2:
                    out += b"\0"
                x += lit
        out += b"\0\0"
    return bytes(out) + b"\0\1"


def tga_file(w, h, itype, depth, data, cmap=b"", cmap_start=0, cmap_len=0, cmap_depth=0, flags=0x20, ident=b""):
    header = struct.pack("<BBBHHBHHHHBB", len(ident), 1 if cmap_len else 0, itype, cmap_start, cmap_len, cmap_depth,
                         0, 0, w, h, depth, flags)
    return header + ident + cmap + data


def gif_lzw_plain(indices, bits):
    """LZW stream that sends a clear code every few codes (valid, keeps the code size constant)."""
    clear, end = 1 << bits, (1 << bits) + 1
    cs = bits + 1
    codes = [clear]
    for i, v in enumerate(indices):
        codes.append(int(v))
        if i % ((1 << cs) - clear - 3) == 0:
            codes.append(clear)
    codes.append(end)
    acc = nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += cs
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 255)
    return bytes(out)


def gif_sub_blocks(data, size=255):
    out = b""
    for i in range(0, len(data), size):
        out += bytes([len(data[i : i + size])]) + data[i : i + size]
    return out + b"\0"


# ----------------------------------------------------------------------------------------------

def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "expected"))

    big = scene(300, 201, 1)
    mid = scene(150, 90, 2)
    small = scene(7, 5, 3, noise=40)
    one = scene(1, 1, 4)
    tall = scene(13, 400, 5)
    very_tall = scene(3, 400, 6)  # height > 100 * width
    wide = scene(640, 6, 7)
    mid_a = with_alpha(mid, 8)
    small_a = with_alpha(small, 9)
    mid_l = mid.convert("L")
    # Smaller pictures for the format variants, to keep the fixture folder small.
    sm = scene(75, 47, 30)
    sm_a = with_alpha(sm, 31)
    sm_l = sm.convert("L")
    sm_p = sm.quantize(colors=100, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    mid_p = mid.quantize(colors=200, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small_p = small.quantize(colors=12, dither=Image.Dither.NONE)

    # ---------------- PNG
    add("png/rgb_300x201.png", pil_bytes(big, "PNG"), "PNG", "RGB 8-bit",
        resizes=[(224, 224), (37, 19)], processor=(224, 224))
    add("png/rgb_150x90.png", pil_bytes(mid, "PNG"), "PNG", "RGB 8-bit",
        resizes=[(448, 56), (37, 19), (150, 45), (75, 90), (149, 91)])
    add("png/rgba_150x90.png", pil_bytes(mid_a, "PNG"), "PNG", "RGBA: alpha dropped, not composited")
    add("png/l_150x90.png", pil_bytes(mid_l, "PNG"), "PNG", "grey 8-bit", resizes=[(64, 64)])
    add("png/la_150x90.png", pil_bytes(Image.merge("LA", [mid_l, Image.fromarray(alpha_of(150, 90, 10))]), "PNG"),
        "PNG", "grey + alpha 8-bit")
    add("png/p_150x90.png", pil_bytes(mid_p, "PNG"), "PNG", "palette 8-bit, 200 colours", resizes=[(100, 60)])
    sp = small_p.copy()
    add("png/p_trns_7x5.png", pil_bytes(sp, "PNG", transparency=bytes([0, 128] + [255] * 10)), "PNG",
        "palette with tRNS (ignored by convert)")
    add("png/rgb_1x1.png", pil_bytes(one, "PNG"), "PNG", "1x1", resizes=[(5, 3), (224, 1)])
    add("png/rgb_7x5.png", pil_bytes(small, "PNG"), "PNG", "7x5", resizes=[(61, 41), (3, 2), (7, 19)])
    add("png/rgb_13x400.png", pil_bytes(tall, "PNG"), "PNG", "tall", resizes=[(224, 224), (13, 37)])
    add("png/rgb_3x400.png", pil_bytes(very_tall, "PNG"), "PNG", "height > 100 * width",
        resizes=[(224, 224), (2, 150)])
    add("png/rgb_640x6.png", pil_bytes(wide, "PNG"), "PNG", "wide", resizes=[(224, 9), (641, 3)])
    rng = np.random.default_rng(11)
    # 16-bit layouts (hand-written: Pillow cannot write 16-bit RGB).
    v16 = rng.integers(0, 65536, (23, 37, 3)).astype(np.int64)
    v16[0, :8, 0] = [0, 1, 255, 256, 257, 32767, 65280, 65535]
    add("png/rgb16_37x23.png", png_encode(v16, 2, 16, filters=(0, 1, 2, 3, 4)), "PNG", "RGB 16-bit: high byte")
    a16 = rng.integers(0, 65536, (23, 37, 1))
    add("png/rgba16_37x23.png", png_encode(np.concatenate([v16, a16], 2), 6, 16), "PNG", "RGBA 16-bit")
    g16 = rng.integers(0, 65536, (23, 37)).astype(np.int64)
    g16[:, ::3] = rng.integers(0, 300, (23, 13))
    g16[0, :6] = [0, 1, 254, 255, 256, 65535]
    add("png/grey16_37x23.png", png_encode(g16, 0, 16, filters=(4, 3)), "PNG",
        "grey 16-bit: Pillow mode I;16, convert clips to 255")
    add("png/grey16_interlaced_37x23.png", png_encode(g16, 0, 16, interlace=True), "PNG", "grey 16-bit Adam7")
    add("png/la16_37x23.png", png_encode(np.dstack([g16, a16[:, :, 0]]), 4, 16), "PNG",
        "grey + alpha 16-bit: Pillow mode RGBA, high byte")
    add("png/grey16_trns_37x23.png", png_encode(g16, 0, 16, trns=struct.pack(">H", 255)), "PNG", "grey 16 + tRNS")
    for bits in (1, 2, 4):
        g = rng.integers(0, 1 << bits, (21, 19))
        add(f"png/grey{bits}_19x21.png", png_encode(g, 0, bits), "PNG", f"grey {bits}-bit")
        pal = rng.integers(0, 256, ((1 << bits) - (1 if bits > 1 else 0), 3))  # one index past the palette
        p = rng.integers(0, 1 << bits, (21, 19))
        add(f"png/p{bits}_19x21.png", png_encode(p, 3, bits, palette=pal), "PNG",
            f"palette {bits}-bit (some indices past the palette: black)")
    add("png/p4_interlaced_19x21.png", png_encode(rng.integers(0, 16, (21, 19)), 3, 4,
                                                  palette=rng.integers(0, 256, (16, 3)), interlace=True),
        "PNG", "palette 4-bit Adam7")
    add("png/grey8_trns_19x21.png", png_encode(rng.integers(0, 256, (21, 19)), 0, 8, trns=b"\0\x07"), "PNG",
        "grey 8 + tRNS")
    add("png/grey2_trns_19x21.png", png_encode(rng.integers(0, 4, (21, 19)), 0, 2, trns=b"\0\x01"), "PNG",
        "grey 2 + tRNS")
    add("png/rgb_trns_19x21.png", png_encode(rng.integers(0, 256, (21, 19, 3)), 2, 8, trns=b"\0\1\0\2\0\3"),
        "PNG", "RGB + tRNS")
    add("png/rgb_interlaced_150x90.png", png_encode(np.asarray(mid), 2, 8, interlace=True, filters=(1, 4, 2, 3, 0)),
        "PNG", "RGB Adam7")
    add("png/rgba_interlaced_7x5.png", png_encode(np.asarray(small_a), 6, 8, interlace=True), "PNG", "RGBA Adam7")
    add("png/rgb16_interlaced_9x10.png", png_encode(v16[:10, :9], 2, 16, interlace=True, filters=(4,)), "PNG",
        "RGB 16 Adam7")
    add("png/one_bit_mode1_75x47.png", pil_bytes(sm.convert("1"), "PNG"), "PNG", "Pillow mode 1 (dithered)")

    # ---------------- JPEG
    add("jpeg/rgb420_150x90.jpg", pil_bytes(mid, "JPEG", quality=90, subsampling=2), "JPEG", "4:2:0",
        resizes=[(37, 19)], processor=(64, 64))
    add("jpeg/rgb444_75x47.jpg", pil_bytes(sm, "JPEG", quality=95, subsampling=0), "JPEG", "4:4:4")
    add("jpeg/rgb422_75x47.jpg", pil_bytes(sm, "JPEG", quality=75, subsampling=1), "JPEG", "4:2:2")
    add("jpeg/grey_75x47.jpg", pil_bytes(sm_l, "JPEG", quality=85), "JPEG", "greyscale")
    add("jpeg/progressive_75x47.jpg", pil_bytes(sm, "JPEG", quality=80, progressive=True), "JPEG", "progressive")
    add("jpeg/optimized_restart_75x47.jpg",
        pil_bytes(sm, "JPEG", quality=70, optimize=True, restart_marker_rows=1), "JPEG",
        "optimised Huffman tables, restart markers")
    add("jpeg/cmyk_75x47.jpg", pil_bytes(sm.convert("CMYK"), "JPEG", quality=90), "JPEG",
        "CMYK, Adobe (inverted) convention")
    add("jpeg/rgb420_7x5.jpg", pil_bytes(small, "JPEG", quality=90), "JPEG", "odd size")
    add("jpeg/rgb420_1x1.jpg", pil_bytes(one, "JPEG"), "JPEG", "1x1")
    add("jpeg/rgb420_13x400.jpg", pil_bytes(tall, "JPEG", quality=60), "JPEG", "tall, odd width")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display: must NOT be applied
    add("jpeg/exif_orientation6_75x47.jpg", pil_bytes(sm, "JPEG", exif=exif), "JPEG",
        "EXIF orientation 6 (not applied)")
    full = pil_bytes(sm, "JPEG", quality=88)
    assert full.endswith(b"\xff\xd9")
    add_error("jpeg/no_eoi_75x47.jpg", full[:-2], "EOI marker missing: libjpeg needs more data for the last rows")

    # ---------------- WebP
    add("webp/lossless_75x47.webp", pil_bytes(sm, "WEBP", lossless=True), "WEBP", "lossless RGB")
    add("webp/lossless_rgba_75x47.webp", pil_bytes(sm_a, "WEBP", lossless=True, exact=True), "WEBP",
        "lossless RGBA")
    add("webp/lossy_75x47.webp", pil_bytes(sm, "WEBP", quality=80), "WEBP", "lossy RGB", resizes=[(37, 19)])
    add("webp/lossy_rgba_75x47.webp", pil_bytes(sm_a, "WEBP", quality=70), "WEBP", "lossy + alpha")
    add("webp/lossy_7x5.webp", pil_bytes(small, "WEBP", quality=90), "WEBP", "odd size")
    add("webp/lossy_1x1.webp", pil_bytes(one, "WEBP"), "WEBP", "1x1")
    frames = [small, scene(7, 5, 12, noise=40)]
    add("webp/animated_7x5.webp", pil_bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:],
                                            lossless=True, duration=100), "WEBP", "animated: first frame")

    # ---------------- GIF
    add("gif/p_75x47.gif", pil_bytes(sm_p, "GIF"), "GIF", "palette, interlaced (Pillow default)")
    add("gif/p_noninterlaced_75x47.gif", pil_bytes(sm_p, "GIF", interlace=False), "GIF", "palette")
    add("gif/p_trns_7x5.gif", pil_bytes(small_p, "GIF", transparency=3), "GIF", "transparency index")
    add("gif/grey_75x47.gif", pil_bytes(sm_l, "GIF"), "GIF", "grey ramp palette: Pillow mode L")
    add("gif/animated_7x5.gif", pil_bytes(small_p, "GIF", save_all=True,
                                          append_images=[scene(7, 5, 13).quantize(colors=8)], duration=50),
        "GIF", "animated: first frame")
    # Hand-made: logical screen larger than the frame, transparency index fills the rest; local palette.
    pal = [(10, 20, 30), (200, 100, 0), (0, 255, 0), (1, 2, 3)]
    idx = np.random.default_rng(14).integers(0, 4, 6 * 5)
    body = b"GIF89a" + struct.pack("<HHBBB", 9, 8, 0x81, 0, 0) + b"".join(bytes(p) for p in pal)
    body += b"!\xf9\x04" + bytes([1, 0, 0, 2]) + b"\0"
    body += b"!\xfe" + gif_sub_blocks(b"a comment")
    body += b"," + struct.pack("<HHHHB", 2, 1, 6, 5, 0) + bytes([2]) + gif_sub_blocks(gif_lzw_plain(idx, 2), 7)
    add("gif/offset_frame_trns_9x8.gif", body + b";", "GIF", "frame smaller than screen, GCE transparency")
    lpal = [(255, 0, 0), (0, 0, 255), (7, 7, 7), (9, 9, 9), (90, 80, 70), (1, 1, 1), (2, 2, 2), (3, 3, 3)]
    idx = np.random.default_rng(15).integers(0, 8, 11 * 20)
    body = b"GIF87a" + struct.pack("<HHBBB", 11, 18, 0x80, 0, 0) + bytes([5, 5, 5, 6, 6, 6])
    body += b"," + struct.pack("<HHHHB", 0, 0, 11, 20, 0x80 | 0x40 | 2) + b"".join(bytes(p) for p in lpal)
    body += bytes([3]) + gif_sub_blocks(gif_lzw_plain(idx, 3), 255)
    add("gif/local_palette_interlaced_11x20.gif", body + b";", "GIF",
        "local palette, interlaced, frame taller than the screen (canvas grows)")

    # ---------------- BMP
    add("bmp/rgb24_75x47.bmp", pil_bytes(sm, "BMP"), "BMP", "24-bit")
    add("bmp/rgb24_7x5.bmp", pil_bytes(small, "BMP"), "BMP", "24-bit, padded rows")
    add("bmp/p8_75x47.bmp", pil_bytes(sm_p, "BMP"), "BMP", "8-bit palette")
    add("bmp/grey8_75x47.bmp", pil_bytes(sm_l, "BMP"), "BMP", "8-bit grey ramp: Pillow mode L")
    add("bmp/mode1_75x47.bmp", pil_bytes(sm.convert("1"), "BMP"), "BMP", "1-bit black/white")
    add("bmp/rgba32_7x5.bmp", pil_bytes(small_a, "BMP"), "BMP", "32-bit BGRA (Pillow writes bit fields)")
    s = np.asarray(small)
    r = np.random.default_rng(16)
    px32 = np.dstack([s[::-1, :, ::-1], r.integers(0, 256, (5, 7, 1))]).astype(np.uint8)
    add("bmp/rgbx32_7x5.bmp", bmp_file(7, 5, 32, px32.tobytes()), "BMP", "32-bit BI_RGB, fourth byte ignored")
    add("bmp/topdown24_7x5.bmp", bmp_file(7, 5, 24, bmp_rows([row[:, ::-1].tobytes() for row in s], 24), top_down=True),
        "BMP", "top-down")
    add("bmp/os2_24_7x5.bmp", bmp_file(7, 5, 24, bmp_rows([row[:, ::-1].tobytes() for row in s[::-1]], 24), header=12),
        "BMP", "OS/2 12-byte header")
    v555 = r.integers(0, 1 << 15, (5, 7)).astype("<u2")
    add("bmp/rgb555_7x5.bmp", bmp_file(7, 5, 16, bmp_rows([row.tobytes() for row in v555], 16)), "BMP",
        "16-bit 5-5-5: v * 255 / 31")
    v565 = r.integers(0, 1 << 16, (5, 7)).astype("<u2")
    add("bmp/rgb565_7x5.bmp", bmp_file(7, 5, 16, bmp_rows([row.tobytes() for row in v565], 16), compression=3,
                                       masks=(0xF800, 0x7E0, 0x1F)), "BMP", "16-bit 5-6-5 bit fields")
    pal16 = [tuple(int(v) for v in c) for c in r.integers(0, 256, (16, 3))]
    i4 = r.integers(0, 16, (5, 9))
    rows4 = [bytes((int(row[2 * k]) << 4) | (int(row[2 * k + 1]) if 2 * k + 1 < 9 else 0) for k in range(5))
             for row in i4[::-1]]
    add("bmp/p4_9x5.bmp", bmp_file(9, 5, 4, bmp_rows(rows4, 4), palette=pal16), "BMP", "4-bit palette")
    i1 = r.integers(0, 2, (5, 11))
    rows1 = [bytes([int("".join(map(str, row[:8])), 2), int("".join(map(str, row[8:])) + "00000", 2)])
             for row in i1[::-1]]
    add("bmp/p1_11x5.bmp", bmp_file(11, 5, 1, bmp_rows(rows1, 1), palette=[(200, 10, 10), (10, 10, 200)]), "BMP",
        "1-bit coloured palette")
    pal8 = [tuple(int(v) for v in c) for c in r.integers(0, 256, (6, 3))]
    i8 = np.repeat(r.integers(0, 6, (9, 5)), 3, axis=1)[:, :13]
    i8[2, 4:9] = [0, 1, 2, 3, 4]
    add("bmp/rle8_13x9.bmp", bmp_file(13, 9, 8, rle8_encode([list(row) for row in i8[::-1]], delta_at=(4, 3)),
                                      palette=pal8, compression=1, colors=6), "BMP", "RLE8 with a delta")
    i4r = np.repeat(r.integers(0, 16, (6, 6)), 2, axis=1)[:, :11]
    i4r[1, :6] = [1, 2, 1, 2, 1, 2]
    add("bmp/rle4_11x6.bmp", bmp_file(11, 6, 4, rle4_encode([list(row) for row in i4r[::-1]]), palette=pal16,
                                      compression=2), "BMP", "RLE4")

    # ---------------- TGA
    add("tga/rgb_75x47.tga", pil_bytes(sm, "TGA"), "TGA", "24-bit, bottom-up")
    add("tga/rgb_rle_topdown_75x47.tga", pil_bytes(sm, "TGA", rle=True, orientation=1), "TGA", "24-bit RLE")
    add("tga/rgba_rle_7x5.tga", pil_bytes(small_a, "TGA", rle=True), "TGA", "32-bit RLE")
    add("tga/grey_75x47.tga", pil_bytes(sm_l, "TGA"), "TGA", "grey")
    add("tga/p_rle_75x47.tga", pil_bytes(sm_p, "TGA", rle=True), "TGA", "colour-mapped RLE")
    add("tga/rgb555_7x5.tga", tga_file(7, 5, 2, 16, v555.tobytes(), flags=0x20), "TGA", "16-bit 5-5-5")
    add("tga/rgb_right_to_left_7x5.tga", tga_file(7, 5, 2, 24, s[:, :, ::-1].tobytes(), flags=0x30, ident=b"id!"),
        "TGA", "right-to-left, image id")
    cmap = bytes(r.integers(0, 256, 3 * 5, dtype=np.uint8))
    add("tga/cmap_offset_9x4.tga", tga_file(9, 4, 1, 8, bytes(r.integers(0, 10, 36, dtype=np.uint8)), cmap=cmap,
                                            cmap_start=3, cmap_len=5, cmap_depth=24, flags=0),
        "TGA", "colour map starting at entry 3; other indices black")
    la = np.dstack([np.asarray(small.convert("L")), alpha_of(7, 5, 17)])
    add("tga/la16_7x5.tga", tga_file(7, 5, 3, 16, la.tobytes()), "TGA", "grey + alpha")
    # RLE whose literal packets run across row ends.
    pix = s.reshape(-1, 3)[:, ::-1]
    rle = b""
    for i in range(0, 35, 8):
        chunk = pix[i : i + 8]
        rle += bytes([len(chunk) - 1]) + chunk.tobytes()
    add("tga/rle_crossing_rows_7x5.tga", tga_file(7, 5, 10, 24, rle, flags=0x20), "TGA",
        "RLE literal packets crossing rows")

    # ---------------- PNM
    add("pnm/rgb_75x47.ppm", pil_bytes(sm, "PPM"), "PPM", "P6")
    add("pnm/grey_75x47.pgm", pil_bytes(sm_l, "PPM"), "PPM", "P5")
    add("pnm/bitmap_75x47.pbm", pil_bytes(sm.convert("1"), "PPM"), "PPM", "P4")
    g16i = Image.fromarray(g16.astype(np.uint16))
    add("pnm/grey16_37x23.pgm", pil_bytes(g16i, "PPM"), "PPM", "P5 maxval 65535: mode I, clipped")
    bits = np.random.default_rng(18).integers(0, 2, (5, 7))
    p1 = "P1\n# plain bitmap\n7 5\n" + "\n".join(" ".join(map(str, row)) for row in bits) + "\n"
    add("pnm/plain_7x5.pbm", p1.encode(), "PPM", "P1")
    g = np.random.default_rng(19).integers(0, 16, (5, 7))
    p2 = "P2\n7 5 # comment after a token\n15\n" + "\n".join(" ".join(map(str, row)) for row in g) + "\n"
    add("pnm/plain_maxval15_7x5.pgm", p2.encode(), "PPM", "P2 maxval 15: round half even")
    c = np.random.default_rng(20).integers(0, 1001, (5, 7, 3))
    p3 = "P3\n7 5\n1000\n" + "\n".join(" ".join(map(str, row.reshape(-1))) for row in c) + "\n"
    add("pnm/plain_maxval1000_7x5.ppm", p3.encode(), "PPM", "P3 maxval 1000")
    g300 = np.random.default_rng(21).integers(0, 301, (5, 7))
    p2i = "P2\n7 5\n300\n" + "\n".join(" ".join(map(str, row)) for row in g300) + "\n"
    add("pnm/plain_maxval300_7x5.pgm", p2i.encode(), "PPM", "P2 maxval 300: mode I, clipped")
    g100 = np.random.default_rng(22).integers(0, 101, (5, 7)).astype(np.uint8)
    add("pnm/maxval100_7x5.pgm", b"P5\n7 5\n100\n" + g100.tobytes(), "PPM", "P5 maxval 100")
    c1000 = np.random.default_rng(23).integers(0, 1001, (5, 7, 3)).astype(">u2")
    add("pnm/maxval1000_7x5.ppm", b"P6 7 5 1000\n" + c1000.tobytes(), "PPM", "P6 maxval 1000, 2-byte samples")
    g3 = np.random.default_rng(24).integers(0, 4, (5, 7)).astype(np.uint8)
    add("pnm/maxval3_7x5.pgm", b"P5\n#c\n7 5\n3\n" + g3.tobytes(), "PPM", "P5 maxval 3")

    # ---------------- Files Pillow refuses (the engine must refuse them too).
    good = pil_bytes(small, "PNG")
    text = png_chunk(b"tEXt", b"Comment\0hello")
    text = text[:-4] + bytes([text[-4] ^ 1]) + text[-3:]
    add_error("errors/png_bad_text_crc_7x5.png", good[:33] + text + good[33:], "ancillary chunk with a bad CRC")
    body = b"GIF89a" + struct.pack("<HHBBB", 4, 2, 0x80, 0, 0) + bytes([1, 2, 3, 4, 5, 6])
    body += b"," + struct.pack("<HHHHB", 0, 0, 4, 2, 0) + bytes([2]) + gif_sub_blocks(gif_lzw_plain([0, 1, 1], 2))
    add_error("errors/gif_lzw_ends_early_4x2.gif", body + b";", "LZW end code before the frame is complete")
    add_error("errors/bmp_rle8_ends_early_3x2.bmp",
              bmp_file(3, 2, 8, bytes([2, 1, 0, 0, 0, 1]), palette=[(1, 2, 3), (4, 5, 6)], compression=1, colors=2),
              "RLE8 end of bitmap before all pixels")
    add_error("errors/tga_rle_run_crosses_row_2x2.tga", tga_file(2, 2, 10, 24, bytes([0x83, 1, 2, 3])),
              "RLE run packet across a row end")
    add_error("errors/pnm_value_over_maxval_2x1.pgm", b"P2 2 1 10 5 11\n", "plain sample larger than maxval")
    add_error("errors/tga_type1_without_colormap_2x1.tga", tga_file(2, 1, 1, 8, bytes([5, 6])),
              "colour-mapped type without a colour map")

    # ---------------- Random resize cases: small random images, random targets (both pass orders,
    # single-pass cases, 1-pixel sides), all in one flat uint8 array.
    rr = np.random.default_rng(25)
    flat, cases = [], []
    offset = 0
    for i in range(64):
        sw, sh = (int(v) for v in rr.integers(1, 29, 2))
        dw, dh = (int(v) for v in rr.integers(1, 29, 2))
        if i % 8 == 0:
            dw = sw
        elif i % 8 == 1:
            dh = sh
        src = rr.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        dst = np.asarray(Image.fromarray(src).resize((dw, dh), BICUBIC))
        cases.append({"src_width": sw, "src_height": sh, "src_offset": offset, "width": dw, "height": dh,
                      "offset": offset + src.size})
        flat += [src.reshape(-1), dst.reshape(-1)]
        offset += src.size + dst.size
    random_resizes = {"npy": save_npy(np.concatenate(flat), "random_resizes"), "cases": cases}

    manifest = {
        "generator": "tools/reference/make_image_fixtures.py",
        "reference": {
            "pillow": PIL.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
            "libwebp": features.version("webp"),
            "zlib": features.version("zlib"),
            "numpy": np.__version__,
        },
        "images": entries,
        "errors": errors,
        "random_resizes": random_resizes,
    }
    try:
        import transformers

        manifest["reference"]["transformers"] = transformers.__version__
    except ImportError:
        pass
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"{len(entries)} images, {len(stored)} arrays, {size / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
