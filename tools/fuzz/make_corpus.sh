#!/usr/bin/env bash
# Regenerates the fuzz targets' seed corpus, tests/fuzz/corpus/<target>/, from the repository's fixtures
# (tests/fixtures) and a few small hand-made inputs; needs python3 (standard library only). The result is committed and
# kept small (no file over a few KB apart from the fixture images, a few hundred KB in all):
#   bash tools/fuzz/make_corpus.sh
# Replaces the folders it writes; findings belong in tests/fuzz/regressions/<target>/, which this leaves alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/fuzz/corpus
fixtures=tests/fixtures
rm -rf "$out"
mkdir -p "$out"/{safetensors,gguf,npz,image,config_json,server_request,batch_line}

# config.json: every fixture model's, and the smallest ones transformers' defaults complete.
for d in "$fixtures"/models/*/; do cp "$d/config.json" "$out/config_json/$(basename "$d").json"; done

# Images: one byte naming the family (image_fuzzer.cpp: 0 PNG, 1 JPEG, 2 GIF, 3 BMP, 4 WebP, 5 PNM, 6 TGA),
# then a fixture of that family, the small ones only; the decoders' error fixtures too.
add_image() {  # family file
  { printf "\\$(printf '%03o' "$1")"; cat "$2"; } >"$out/image/$(basename "$(dirname "$2")")_$(basename "$2")"
}
family=0
for kind in png jpeg gif bmp webp pnm tga; do
  for f in "$fixtures/images/$kind"/*; do
    [ "$(stat -c %s "$f")" -le 8192 ] && add_image "$family" "$f"
  done
  for f in "$fixtures/images/errors/${kind}"_*; do
    [ -f "$f" ] && add_image "$family" "$f"
  done
  family=$((family + 1))
done

python3 - "$fixtures" "$out" <<'PY'
import base64, io, json, pathlib, struct, sys, zipfile

fixtures, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

def f32(*values):
    return struct.pack("<%df" % len(values), *values)

def write(target, name, data):
    (out / target / name).write_bytes(data if isinstance(data, bytes) else data.encode())

# safetensors: the smallest fixture shard as it is, and hand-made files (every dtype, metadata, a scalar).
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob

write("safetensors", "fixture_shard.safetensors",
      (fixtures / "models/pg1_f16_sharded/model-00004-of-00004.safetensors").read_bytes())
write("safetensors", "dtypes.safetensors", safetensors({
    "a.f32": ("F32", [2, 3], f32(0, 1, 2, 3, 4, 5)),
    "b.f16": ("F16", [4], struct.pack("<4e", 1, 1, 1, 1)),
    "c.bf16": ("BF16", [1, 2], b"\x80\x3f\x00\x40"),
    "d.scalar": ("F32", [], b"\x00\x00\x80\x3f"),
    "e.empty": ("F32", [0, 5], b""),
}, {"format": "pt"}))
write("safetensors", "empty_header.safetensors", safetensors({}))

# GGUF as paligemma quantize writes it (src/formats/gguf.cpp GgufWriter), every metadata and tensor type.
def gguf(version, metadata, tensors, alignment=32):
    def string(s):
        s = s.encode() if isinstance(s, str) else s
        return struct.pack("<Q", len(s)) + s
    kv = b""
    for key, (kind, value) in metadata.items():
        kv += string(key)
        if kind == "str":
            kv += struct.pack("<I", 8) + string(value)
        elif kind == "u32":
            kv += struct.pack("<II", 4, value)
        elif kind == "u8s":
            kv += struct.pack("<IIQ", 9, 0, len(value)) + value
        elif kind == "strs":
            kv += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(string(v) for v in value)
        elif kind == "f32":
            kv += struct.pack("<If", 6, value)
    infos, blob = b"", b""
    for name, (ggml_type, shape, data) in tensors.items():
        infos += string(name) + struct.pack("<I", len(shape))
        infos += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        infos += struct.pack("<IQ", ggml_type, len(blob))
        blob += data + b"\0" * (-len(data) % alignment)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata)) + kv + infos
    return head + b"\0" * (-len(head) % alignment) + blob

tensors = {
    "f32": (0, [3], f32(0, 1, 2)),
    "f16": (1, [2, 2], struct.pack("<4e", 1, 1, 1, 1)),
    "bf16": (30, [2], b"\x80\x3f\x00\x40"),
    "q8_0": (8, [1, 32], b"\x00\x3c" + bytes(range(32))),
    "q4_0": (2, [2, 32], (b"\x00\x3c" + bytes(16)) * 2),
}
metadata = {
    "general.architecture": ("str", "paligemma"),
    "general.alignment": ("u32", 32),
    "general.file_type": ("u32", 7),
    "paligemma.quantization": ("str", "q8_0"),
    "paligemma.config_json": ("str", (fixtures / "models/pg1_f32_tiny/config.json").read_text()),
    "paligemma.tokenizer_model": ("u8s", b"\x0a\x05hello"),
    "general.tags": ("strs", ["a", "bc"]),
    "general.scale": ("f32", 0.5),
}
write("gguf", "all_types_v3.gguf", gguf(3, metadata, tensors))
write("gguf", "v2_one_tensor.gguf", gguf(2, {"general.architecture": ("str", "paligemma")},
                                         {"t": (0, [2, 2], bytes(16))}))
write("gguf", "alignment64.gguf", gguf(3, {"general.alignment": ("u32", 64)},
                                       {"x": (0, [5], bytes(20)), "y": (0, [1], bytes(4))}, alignment=64))

# .npz: the fixture archives (stored and deflated), and .npy arrays for parse_npy (npz_fuzzer.cpp).
write("npz", "stored.npz", (fixtures / "vae/stored.npz").read_bytes())
write("npz", "vae_small.npz", (fixtures / "vae/vae_small.npz").read_bytes())
def npy(descr, shape, data, version=1):  # as numpy.lib.format.write_array lays it out
    dims = "%d," % shape[0] if len(shape) == 1 else ", ".join(str(d) for d in shape)
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    length = 2 if version == 1 else 4
    header += " " * (-(8 + length + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H" if version == 1 else "<I", len(header)) + \
        header.encode() + data
write("npz", "f32_2x3.npy", npy("<f4", [2, 3], f32(0, 1, 2, 3, 4, 5)))
write("npz", "u8_v2.npy", npy("|u1", [5], bytes(range(5)), version=2))
write("npz", "scalar.npy", npy("<f4", [], f32(1.5)))
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:  # as numpy.savez_compressed writes it
    for name, data in [("a.npy", npy("<f4", [2, 2], f32(1, 1, 1, 1))), ("b.npy", npy("<f4", [3], f32(0, 1, 2)))]:
        z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)  # reproducible
write("npz", "compressed.npz", b.getvalue())

# Server request bodies with a tiny PNG and JPEG (tests/fixtures/images).
png = base64.b64encode((fixtures / "images/png/rgb_1x1.png").read_bytes()).decode()
jpg = base64.b64encode((fixtures / "images/jpeg/rgb420_1x1.jpg").read_bytes()).decode()
write("server_request", "generate.json", json.dumps({"images": [png], "prompt": "caption en"}))
write("server_request", "generate_options.json", json.dumps({
    "images": ["data:image/jpeg;base64," + jpg, png], "prompt": "answer en what", "max_tokens": 12,
    "temperature": 0.7, "top_k": 40, "top_p": 0.9, "seed": 3, "stop": ["\n", "."], "stream": True,
    "ignore_eos": False}))
write("server_request", "generate_beams.json", json.dumps({"images": [png], "prompt": "x", "beams": 3, "stop": "y"}))
write("server_request", "chat.json", json.dumps({"model": "pg", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "caption en"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}}]}],
    "max_completion_tokens": 8, "n": 1}))
write("server_request", "chat_string_url.json", json.dumps({"messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": "data:image/png;base64," + png}, {"type": "text", "text": "ocr"}]}],
    "temperature": 0}))
write("server_request", "chat_text_only.json", json.dumps({"messages": [{"role": "user", "content": "hi"}]}))

# Batch input files (tests/batch_test.sh's kinds of lines, good and bad).
write("batch_line", "requests.jsonl", "\n".join([
    '{"id": "a", "image": "shapes_a.png", "prompt": "caption en", "max_tokens": 6}',
    '{"id": "b", "images": ["a.png", "sub/c.png"], "prompt": "answer en which", "max_tokens": 5, "beams": 2,'
    ' "length_penalty": 0.5}',
    '{"id": "e", "image": "b.png", "prompt": "caption en", "temperature": 0.8, "top_k": 20, "top_p": 0.9,'
    ' "seed": 7, "stop": ["."]}',
    '{"id": 7, "video": "steps.mp4", "frames": 2, "prompt": "caption en"}',
    '{"id": "f", "image": "c.png", "task": "detect", "objects": "cat ; dog"}',
    '{"id": "g", "image": "c.png", "task": "answer", "question": "what?", "lang": "de"}',
    "",
]))
write("batch_line", "errors.jsonl", "\n".join([
    '{"id": "broken", "image": "a.png", "prompt": "caption en"',
    '{"id": "a", "image": "a.png", "prompt": "x"}',
    '{"id": "a", "image": "a.png", "prompt": "x"}',
    '{"id": "#1", "image": "a.png", "prompt": "x"}',
    '{"id": "d", "image": "a.png", "prompt": "x", "max_tokens": "ten"}',
    '[1, 2]',
    '{"id": "h", "image": "a.png", "task": "segment", "objects": "x", "seed": 1}',
]))
PY
