#!/usr/bin/env python3
"""Writes the small reference fixtures of the PaliGemma engine's tests (tests/fixtures/).

Runs INSIDE the Debian sid reference root (transformers 5.x, torch, sentencepiece, safetensors, Pillow, numpy):

    sudo tools/reference/reference-root.sh run -- \
        bash tools/reference/make_fixtures.sh [--out tests/fixtures] [--seed 0] [shape options]

Every file is checked after writing: transformers loads each checkpoint back identically, the tokenizer gives the
same ids as transformers' GemmaTokenizer, and a hand-written float32 forward pass (recipe_logits) reproduces the
float32 references.

What it writes (see tests/fixtures/README.md for the file formats):
  tokenizer/tokenizer.model   tiny SentencePiece BPE model (loc/seg pieces as user-defined symbols)
  tokenizer/prompt_ids.json   prompt + "\n" -> ids, checked against transformers' GemmaTokenizer
  models/pg1_f32              PaliGemma 1 (Gemma text), float32, one safetensors file, the hub's names
                              (vision_tower.vision_model.*, language_model.model.*, multi_modal_projector.*)
  models/pg1_f16_sharded      PaliGemma 1 with its own "calm" weights (INIT_LOWP), float16, sharded + index, the
                              names transformers 5.x save_pretrained writes for a model built from a config
                              (vision_tower.* without .vision_model); references computed in float16
  models/pg2_f32              PaliGemma 2 (Gemma 2 text), float32, one file, the in-memory names
                              (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*)
  models/pg2_bf16_sharded     PaliGemma 2 with its own "calm" weights, bfloat16, sharded, the hub's names;
                              references computed in bfloat16
  models/pg1_f32_tiny         a tiny PaliGemma 1 (TINY_SHAPES), float32, calm weights, for a float32 <eos> case
  cases/<case>/               image(s), case.json, pixel_values.npy, logits.npy (+ vision_features.npy,
                              image_embeds.npy for the first case of each model)

float16/bfloat16 cases also record lowp_vs_f32_rel_diff: per step, max|logits - logits_f32| / max|logits_f32|
with logits_f32 from the same stored weights upcast to float32 (teacher-forced), and must meet the checks in
run_case (asserted for the committed configuration; --lenient or other seeds/shapes only warn).

--full-size DIR writes (instead) a full-size random PaliGemma 1 3B-224 checkpoint in bfloat16 plus a
reference.json / logits_step0.npy (never run by default; its output is not committed). --full-size-gen 2 makes
it PaliGemma 2 3B (Gemma 2 2B text), --full-size-resolution 448/896 the 1024/4096-token variants,
--full-size-dtype float32 stores float32 weights (how PaliGemma 1 is published; the reference then runs in
float32); these are the checkpoints of tools/bench/compare_transformers.py. --full-size-from SRC starts from the
weights of an earlier full-size checkpoint of the same family instead of drawing them (minutes instead of half an
hour on a small machine): a float32 copy, or another resolution, whose vision position embeddings (the only
tensor whose shape changes) get transformers' initialization.
"""

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

# Deterministic, single-threaded: reruns must reproduce the fixture files byte for byte.
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import sentencepiece as spm  # noqa: E402
import torch_parts  # noqa: E402
import transformers  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (  # noqa: E402
    GemmaTokenizer,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
)
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil  # noqa: E402

transformers.logging.set_verbosity_error()

LICENSE_DIR = "/usr/share/common-licenses"
# Stable texts from Debian's base-files; sorted, fixed list so the training corpus does not depend on what
# else is installed in the root.
LICENSE_FILES = ["Apache-2.0", "CC-BY-4.0", "GPL-3", "LGPL-2.1", "MPL-2.0"]
EXTRA_LINES = [
    "café naïve Zürich 日本語 Привет",
    "décris l'image 日本",
    "Ça va? Größe, façade, señor, Ørsted, Łódź, ñandú",
    "Привет, как дела? Спасибо.",
    "日本語のテキスト、東京と大阪。",
    "caption en",
    "answer en what is this?",
    "detect cat ; dog",
    "segment the red circle",
    "The picture shows 3 cats, 12 dogs and 2024 birds.",
]
LOC_SEG = [f"<loc{i:04d}>" for i in range(1024)] + [f"<seg{i:03d}>" for i in range(128)]

# Extra prompts for tokenizer/prompt_ids.json (besides every case prompt).
TOKENIZER_PROMPTS = [
    "caption en",
    "answer en what is this?",
    "detect cat ; dog",
    "segment cat",
    "décris l'image 日本",
    "café naïve Zürich 日本語 Привет",
    "caption <loc0100><loc0200><loc0300><loc0400>",
    "<loc0000><loc1023><seg000><seg127> x",
    "numbers 1234567890 and 3.14",
    "  two leading spaces and  double  spaces",
    "tab\tand\nnewline inside",
    "emoji 🙂 and symbols ©®™ ☃",
    "UPPER lower MiXeD",
    "",
    "a",
]

# Case list: (name, model, prompt, [image specs][, options]). The first case of each model also stores vision
# features. Image spec: (file name, generator name, width, height); the image's seed comes from the case and file
# name. Options: {"eos": True}: the greedy output must end with <eos> before max_new_tokens.
CASES = [
    ("pg1_rgb_caption", "pg1_f32", "caption en", [("rgb.png", "rgb", 150, 90)]),
    ("pg1_gray_answer", "pg1_f32", "answer en what is this?", [("gray.png", "gray", 96, 128)]),
    ("pg1_jpeg_nonascii", "pg1_f32", "décris l'image 日本", [("photo.jpg", "jpeg", 160, 120)]),
    ("pg1h_rgba_detect", "pg1_f16_sharded", "detect cat ; dog", [("rgba.png", "rgba", 140, 100)]),
    ("pg1h_tiny_loc", "pg1_f16_sharded", "caption <loc0100><loc0200><loc0300><loc0400>",
     [("tiny.png", "rgb", 20, 30)]),
    ("pg1h_large_answer", "pg1_f16_sharded", "answer en how many shapes are there?",
     [("large.png", "smooth", 300, 160)]),
    ("pg2_palette_caption", "pg2_f32", "caption en", [("palette.png", "palette", 110, 70)]),
    ("pg2_two_images", "pg2_f32", "answer en the left image has more circles than the right one",
     [("left.png", "rgb", 120, 80), ("right.jpg", "jpeg", 100, 140)]),
    ("pg2_loc_detect", "pg2_f32", "detect cat ; dog <loc0512>", [("gray.png", "gray", 64, 48)]),
    ("pg2b_rgb_caption", "pg2_bf16_sharded", "caption en", [("rgb.png", "rgb", 60, 65)]),
    ("pg2b_jpeg_nonascii", "pg2_bf16_sharded", "décris l'image 日本", [("photo.jpg", "jpeg", 60, 65)]),
    # greedy output ends with <eos> before max_new_tokens (the engine's stop-at-<eos> path)
    ("pg2b_eos", "pg2_bf16_sharded", "caption fr", [("rgb.png", "rgb", 60, 60)], {"eos": True}),
    ("pg1t_eos", "pg1_f32_tiny", "answer en what is this?", [("rgb.png", "rgb", 16, 16)], {"eos": True}),
]



def log(*a):
    print("[make_fixtures]", *a, file=sys.stderr, flush=True)


def seed_for(base, label):
    """A stable 31-bit seed derived from the base seed and a label."""
    h = hashlib.sha256(f"{base}:{label}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_npy(path, arr):
    np.save(path, np.ascontiguousarray(arr, dtype=np.float32))


# --------------------------------------------------------------------------------------------------------------
# 1. Tokenizer
# --------------------------------------------------------------------------------------------------------------
def train_tokenizer(out_dir, vocab_base, seed):
    lines = []
    for name in LICENSE_FILES:
        with open(os.path.join(LICENSE_DIR, name), encoding="utf-8") as f:
            lines += [ln for ln in f.read().splitlines() if ln.strip()]
    lines += EXTRA_LINES * 3
    model = torch_parts.train_bpe_tokenizer(lines, vocab_base + len(LOC_SEG), LOC_SEG, seed_for(seed, "spm"))
    return torch_parts.write_tokenizer(model, out_dir)


def load_hf_tokenizer(tok_dir):
    # mask_token=None: GemmaTokenizer would otherwise append a "<mask>" token that the SentencePiece model does
    # not have, and "<image>" would land at V+1 instead of V.
    return GemmaTokenizer.from_pretrained(tok_dir, mask_token=None)


def make_processor(tok_dir, image_size, image_seq_length):
    image_processor = SiglipImageProcessorPil(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        resample=3,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_convert_rgb=None,
        image_seq_length=image_seq_length,
    )
    return PaliGemmaProcessor(image_processor=image_processor, tokenizer=load_hf_tokenizer(tok_dir))


def check_prompt_ids(sp, hf_tok, prompt):
    """prompt + "\n" through SentencePiece and through transformers must give the same ids."""
    a = sp.encode(prompt + "\n")
    b = hf_tok(prompt + "\n", add_special_tokens=False)["input_ids"]
    assert a == b, f"tokenizer mismatch for {prompt!r}: spm {a} vs transformers {b}"
    return a


# --------------------------------------------------------------------------------------------------------------
# 2. Models
# --------------------------------------------------------------------------------------------------------------
def build_config(args, gen, V, rows):
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=args.vision_hidden,
        intermediate_size=args.vision_intermediate,
        num_hidden_layers=args.vision_layers,
        num_attention_heads=args.vision_heads,
        num_channels=3,
        image_size=args.image_size,
        patch_size=args.patch_size,
        layer_norm_eps=1e-6,
        hidden_act="gelu_pytorch_tanh",
        vision_use_head=False,
        projection_dim=args.text_hidden,
    )
    text = dict(
        hidden_size=args.text_hidden,
        intermediate_size=args.text_intermediate,
        num_hidden_layers=args.text_layers,
        num_attention_heads=args.text_heads,
        head_dim=args.head_dim,
        vocab_size=rows,
        hidden_activation="gelu_pytorch_tanh",
        rms_norm_eps=1e-6,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        tie_word_embeddings=True,
    )
    if gen == 1:
        text.update(model_type="gemma", num_key_value_heads=args.pg1_kv_heads)
    else:
        text.update(
            model_type="gemma2",
            num_key_value_heads=args.pg2_kv_heads,
            query_pre_attn_scalar=args.query_pre_attn_scalar,
            attn_logit_softcapping=args.attn_softcap,
            final_logit_softcapping=args.final_softcap,
            sliding_window=args.sliding_window,
        )
    cfg = PaliGemmaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=V,
        vocab_size=V,
        projection_dim=args.text_hidden,
        hidden_size=args.text_hidden,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = "eager"
    return cfg


# Scales of the re-drawn weights (see widen_weights). With the tied lm_head a random model keeps predicting its own
# input token (its embedding is in the residual stream); a final norm with scales (1 + w) of random sign removes
# that bias. The layers' outputs must be large against the (x sqrt(H)) input embedding, or the model degenerates
# to a bigram table with short cycles; too large and the context dominates and one token repeats. The output
# projections (PG1) and the post-norms (PG2) set that balance (tuned by looking at greedy outputs).
# These "wide" weights are chaotic (a one-ulp change of one activation can change the logits by several per cent
# after three layers): fine for the float32 models, whose references any float32 implementation reproduces to
# ~1e-5, but not for the low-precision models (see INIT_LOWP).
INIT = {
    1: dict(embed=1.0, qk=2.0, v=1.0, o=8.0, gate_up=1.0, down=8.0, proj=4.0, rms=0.2, post_norm=None,
            final_norm=(-1.0, 1.0)),
    2: dict(embed=1.0, qk=3.0, v=1.0, o=1.0, gate_up=1.0, down=1.0, proj=4.0, rms=0.2, post_norm=(6.0, 1.0),
            final_norm=(-1.0, 1.0)),
}

# "Calm" weights of the low-precision models (pg1_f16_sharded, pg2_bf16_sharded) and of the tiny <eos> model,
# closer to a trained checkpoint: the float16 / bfloat16 reference stays close to exact arithmetic with the same
# weights (lowp_vs_f32_rel_diff in case.json), so an implementation that rounds slightly differently stays close
# too. Embeddings std embed/sqrt(H) (rows of ~unit RMS after the x sqrt(H) scaling), projector and all
# projections ~1/sqrt(fan_in), soft attention (small q/k gains: sharp attention is what amplifies rounding), and
# MLPs strong enough against the embedding that the greedy path is not a short bigram cycle: PG2 post-norm scales
# (1 + w) ~0.4 after attention and ~0.7 after the MLP, PG1 MLP output x2. Final norm scales of random sign as
# above. <eos> (row 1) is a normal row scaled by `eos` (reachable; the cases were chosen where it is generated
# only in the <eos> cases), the other control rows x0.3. The weights' seed is seed_for(seed, f"{label}/{variant}");
# the variants (and the case images / prompts in CASES) were chosen by a search so that every case meets the
# checks in run_case (noise bar, top-2 margins >= 1% of max|logit|, >= 6 distinct tokens, <eos> only where
# wanted) and every layer matters (layer_ablation).
INIT_LOWP = {
    "pg1_f16_sharded": dict(gen=1, embed=1.0, embed_scaled=True, qk=1.0, v=1.0, o=1.0, gate_up=1.0, down=2.0,
                            proj=1.0, rms=0.2, post_norm=None, final_norm=(-1.0, 1.0), ctrl=0.3,
                            label="pg1_f16_sharded", variant=1),
    "pg2_bf16_sharded": dict(gen=2, embed=1.0, embed_scaled=True, qk=0.5, v=1.0, o=1.0, gate_up=1.0, down=1.0,
                             proj=1.0, rms=0.2, post_norm=(-0.7, 0.1), post_attn=(-0.6, 0.1),
                             post_ffw=(-0.3, 0.1), final_norm=(-1.0, 1.0), ctrl=0.3, eos=1.6,
                             label="pg2_bf16", variant=43),
    "pg1_f32_tiny": dict(gen=1, embed=1.0, embed_scaled=True, qk=1.0, v=1.0, o=1.0, gate_up=1.0, down=2.0,
                         proj=1.0, rms=0.2, post_norm=None, final_norm=(-1.0, 1.0), ctrl=0.3, eos=2.0,
                         label="pg1_f32_tiny", variant=5),
}

# Shapes of the tiny float32 model pg1_f32_tiny (the float32 <eos> case; small, to keep the fixtures small);
# everything else as for the other models.
TINY_SHAPES = dict(vision_hidden=16, vision_intermediate=32, vision_layers=2, vision_heads=2, image_size=28,
                   patch_size=7, text_hidden=16, text_intermediate=32, text_layers=2, text_heads=2, head_dim=8,
                   pg1_kv_heads=2)

# The dtype each model is stored in and its reference computed in.
MODEL_DTYPES = {"pg1_f32": torch.float32, "pg1_f16_sharded": torch.float16, "pg2_f32": torch.float32,
                "pg2_bf16_sharded": torch.bfloat16, "pg1_f32_tiny": torch.float32}

# Asserted bound on lowp_vs_f32_rel_diff (max over the steps of max|logits_lowp - logits_f32| / max|logits_f32|).
# float16: 0.3%. bfloat16: 1%; 0.3% is out of reach: rounding the exact logits to bfloat16 alone moves them by up
# to 2^-9..2^-8 (0.2-0.4%) of max|logit|, computing only the final norm and lm_head in bfloat16 by ~0.3%, and
# the ~30 roundings on the path through 2 + 3 layers add ~0.5% (measured for these shapes; see README).
LOWP_NOISE_BAR = {torch.float16: 0.003, torch.bfloat16: 0.01}


@torch.no_grad()
def widen_weights(model, cfg, V, seed, gen, k=None):
    """Re-draws every weight so the random model is 'lively': greedy outputs change from step to step and every
    layer matters (transformers' default init, std 0.02, makes the model repeat one token). k: the scales
    (default INIT[gen]; INIT_LOWP entries for the calm models)."""
    g = torch.Generator().manual_seed(seed)
    k = INIT[gen] if k is None else k

    def randn(shape, std, mean=0.0):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std + mean

    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        shape = tuple(p.shape)
        if name == "lm_head.weight":
            continue  # tied to embed_tokens
        if name.endswith("embed_tokens.weight"):
            std = k["embed"] / math.sqrt(shape[1]) if k.get("embed_scaled") else k["embed"]
            w = randn(shape, std)
            # control pieces <pad>/<eos>/<bos>/<unk>: scaled down so they are rarely the argmax
            # (the engine stops at <eos>; an <eos> at step 0 would make a useless fixture)
            ctrl = k.get("ctrl", 0.3)
            w[0:4] *= ctrl
            if "eos" in k:  # <eos>: a row of normal size times k["eos"]
                w[1] *= k["eos"] / ctrl
            # rows V.. (<image> and the padding rows up to a multiple of 64): mean embedding + tiny noise,
            # like the hub conversion's resize_token_embeddings
            mean = w[:V].mean(0)
            w[V:] = mean + randn((shape[0] - V, shape[1]), 0.003 * std)
        elif "vision_tower" in name and ("layer_norm" in name or "layernorm" in name):
            # standard LayerNorm: weight around 1, bias around 0
            w = randn(shape, 0.1, 1.0) if name.endswith("weight") else randn(shape, 0.1)
        elif "norm" in name:  # Gemma RMSNorm stores w; the scale is (1 + w)
            if name.endswith("language_model.norm.weight"):
                # final norm: scales (1 + w) of random sign, so that the input token's own embedding (still in
                # the residual stream) no longer favours predicting the same token again (tied lm_head)
                w = randn(shape, k["final_norm"][1], k["final_norm"][0])
            elif k["post_norm"] and "post_attention_layernorm" in name:
                # Gemma 2 post-norms set the size of each layer's contribution to the residual stream
                mean, std = k.get("post_attn", k["post_norm"])
                w = randn(shape, std, mean)
            elif k["post_norm"] and "post_feedforward_layernorm" in name:
                mean, std = k.get("post_ffw", k["post_norm"])
                w = randn(shape, std, mean)
            else:
                w = randn(shape, k["rms"])
        elif name.endswith("position_embedding.weight"):
            w = randn(shape, 0.5)
        elif name.endswith("patch_embedding.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            w = randn(shape, 2.0 / math.sqrt(fan_in))
        elif name.endswith(".bias"):
            w = randn(shape, 0.1)
        elif p.dim() == 2:
            gain = 1.0
            if "multi_modal_projector" in name:
                gain = k["proj"]
            elif "language_model" in name:
                for key, kk in (("q_proj", "qk"), ("k_proj", "qk"), ("v_proj", "v"), ("o_proj", "o"),
                                ("gate_proj", "gate_up"), ("up_proj", "gate_up"), ("down_proj", "down")):
                    if key in name:
                        gain = k[kk]
            w = randn(shape, gain / math.sqrt(shape[1]))
        else:
            raise RuntimeError(f"no init rule for {name} {shape}")
        p.copy_(w.to(p.dtype))
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()


def hub_vision_name(k):
    if k.startswith("vision_tower.") and not k.startswith("vision_tower.vision_model."):
        return "vision_tower.vision_model." + k[len("vision_tower."):]
    return k


def to_hub_vision_names(model_dir):
    """Rewrites a checkpoint's vision keys `vision_tower.X` -> `vision_tower.vision_model.X` (the hub's names),
    shard by shard, index included."""
    for f in sorted(os.listdir(model_dir)):
        if f.endswith(".safetensors"):
            path = os.path.join(model_dir, f)
            sd = {hub_vision_name(k): v for k, v in load_file(path).items()}
            save_file(sd, path, metadata={"format": "pt"})
            del sd
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as fh:
            idx = json.load(fh)
        idx["weight_map"] = {hub_vision_name(k): v for k, v in sorted(idx["weight_map"].items())}
        idx["weight_map"] = dict(sorted(idx["weight_map"].items()))
        with open(index, "w", encoding="utf-8") as fh:
            json.dump(idx, fh, indent=2)
            fh.write("\n")


def save_hub_model(model, processor, tok_path, out_dir, dtype, shard_size=None, names="hub", tmp_dir=None):
    """names: "hub"             the hub's names (vision_tower.vision_model.*, language_model.model.*, ...), as
                                 transformers 5.x save_pretrained writes them for a model loaded from the hub;
              "save_pretrained" what 5.x save_pretrained writes for a model built from a config
                                 (vision_tower.* without .vision_model, language_model.model.*, ...);
              "in_memory"       model.state_dict() names (model.language_model.*, model.vision_tower.*, ...)."""
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    kw = {"max_shard_size": shard_size} if shard_size else {}
    if names == "hub":
        # save, rename the vision keys to the hub's, load that back and save it again: from a checkpoint with the
        # hub's names, save_pretrained writes the hub's names (and shards / casts like for any checkpoint)
        if os.path.isdir(tmp_dir):
            shutil.rmtree(tmp_dir)
        model.save_pretrained(tmp_dir)
        to_hub_vision_names(tmp_dir)
        m = PaliGemmaForConditionalGeneration.from_pretrained(tmp_dir, dtype=dtype)
        assert_same_weights(copy.deepcopy(model).to(dtype), m, "hub-name round trip")
        m.save_pretrained(out_dir, **kw)
        shutil.rmtree(tmp_dir)
    else:
        m = copy.deepcopy(model).to(dtype)
        m.save_pretrained(out_dir, **kw)
        if names == "in_memory":
            # keep save_pretrained's config.json / generation_config.json, replace its weights file by one with
            # the in-memory names (lm_head.weight dropped: it is tied)
            assert not shard_size
            os.remove(os.path.join(out_dir, "model.safetensors"))
            assert not [f for f in os.listdir(out_dir) if "safetensors" in f]
            sd = {k: v.detach().contiguous().clone() for k, v in m.state_dict().items() if k != "lm_head.weight"}
            save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    del m
    # processor files without tokenizer.json (it would be ~300 KB per model; the engine reads tokenizer.model)
    processor.image_processor.save_pretrained(out_dir)  # preprocessor_config.json, as on the hub
    processor.save_pretrained(out_dir)
    for f in ("tokenizer.json", "special_tokens_map.json", "chat_template.jinja"):
        if os.path.exists(os.path.join(out_dir, f)):
            os.remove(os.path.join(out_dir, f))
    tc_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(tc_path, encoding="utf-8") as f:
        tc = json.load(f)
    for k in ("vocab_file", "is_local", "local_files_only", "name_or_path"):
        tc.pop(k, None)
    tc["add_bos_token"] = False
    tc["add_eos_token"] = False
    write_json(tc_path, tc)
    shutil.copyfile(tok_path, os.path.join(out_dir, "tokenizer.model"))
    # tidy config.json: drop the path-dependent / runtime-only fields
    cfg_path = os.path.join(out_dir, "config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.pop("_name_or_path", None)
    write_json(cfg_path, cfg)


def check_files(out_dir, names, expect_shards):
    files = sorted(os.listdir(out_dir))
    st = [f for f in files if f.endswith(".safetensors")]
    if expect_shards:
        assert len(st) >= 3 and "model.safetensors.index.json" in files, (out_dir, files)
        with open(os.path.join(out_dir, "model.safetensors.index.json"), encoding="utf-8") as f:
            wm = json.load(f)["weight_map"]
    else:
        assert st == ["model.safetensors"], (out_dir, files)
    keys = []
    for f in st:
        ks = list(load_file(os.path.join(out_dir, f)).keys())
        if expect_shards:
            assert all(wm[k] == f for k in ks)
        keys += ks
    if expect_shards:
        assert sorted(wm) == sorted(keys)
    assert "lm_head.weight" not in keys and "language_model.lm_head.weight" not in keys, keys
    prefixes = {
        "hub": ("language_model.model.", "vision_tower.vision_model.", "multi_modal_projector."),
        "save_pretrained": ("language_model.model.", "vision_tower.", "multi_modal_projector."),
        "in_memory": ("model.language_model.", "model.vision_tower.", "model.multi_modal_projector."),
    }[names]
    assert all(k.startswith(prefixes) for k in keys), (out_dir, keys)
    if names != "hub":
        assert not any(".vision_model." in k for k in keys), (out_dir, keys)
    return files


@torch.no_grad()
def load_model(model_dir, dtype):
    m = PaliGemmaForConditionalGeneration.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    m.eval()
    assert m.config._attn_implementation == "eager"
    assert m.config.text_config._attn_implementation == "eager", m.config.text_config._attn_implementation
    return m


def assert_same_weights(a, b, what, exact=True):
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb), what
    for k in sa:
        x, y = sa[k].float(), sb[k].float()
        assert x.shape == y.shape, (what, k)
        if exact:
            assert torch.equal(x, y), (what, k)


# --------------------------------------------------------------------------------------------------------------
# 3. Images and cases
# --------------------------------------------------------------------------------------------------------------
def draw_scene(rng, w, h):
    """An RGB uint8 scene: gradient background, a few shapes, mild noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = (xx / max(w - 1, 1) * 0.6 + yy / max(h - 1, 1) * 0.4)[..., None]
    bg = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    im = Image.fromarray(bg, "RGB")
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, max(w - 4, 1))), int(rng.integers(0, max(h - 4, 1)))
        x1, y1 = x0 + int(rng.integers(3, max(w // 2, 4))), y0 + int(rng.integers(3, max(h // 2, 4)))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            d.rectangle([x0, y0, x1, y1], fill=col)
        elif kind == 1:
            d.ellipse([x0, y0, x1, y1], fill=col, outline=(0, 0, 0))
        else:
            d.line([x0, y0, x1, y1], fill=col, width=2)
    return np.asarray(im)


def make_image(kind, w, h, seed):
    rng = np.random.default_rng(seed)
    if kind == "smooth":  # large, low noise (compresses well), still with shapes
        return Image.fromarray(draw_scene(rng, w, h), "RGB")
    arr = draw_scene(rng, w, h).astype(np.int16) + rng.integers(-6, 7, (h, w, 3))
    rgb = np.clip(arr, 0, 255).astype(np.uint8)
    if kind in ("rgb", "jpeg"):
        return Image.fromarray(rgb, "RGB")
    if kind == "gray":
        return Image.fromarray(rgb, "RGB").convert("L")
    if kind == "rgba":
        yy, xx = np.mgrid[0:h, 0:w]
        alpha = ((xx * 255) // max(w - 1, 1) ^ (yy * 97 % 256)).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    if kind == "palette":
        return Image.fromarray(rgb, "RGB").quantize(colors=16, method=Image.Quantize.MEDIANCUT,
                                                    dither=Image.Dither.NONE)
    raise ValueError(kind)


def save_image(img, path):
    if path.endswith(".jpg"):
        img.save(path, format="JPEG", quality=90)
    else:
        img.save(path, format="PNG", optimize=False)


def softcap(x, cap):
    return cap * torch.tanh(x / cap)


def rel_max_diff_rows(a, b):
    """Per row: max |a - b| / max |b|."""
    return ((a - b).abs().amax(-1) / b.abs().amax(-1)).tolist()


@torch.no_grad()
def teacher_forced_logits(model, inputs, gen):
    """Logits of one forward pass over input_ids + gen[:-1] (generated tokens as the suffix, token_type_ids 1),
    rows P-1 .. P-1+len(gen)-1: row i is the prediction of gen[i]. For float32 models this reproduces the
    incremental generate() logits to ~1e-5 (asserted in run_case)."""
    P = inputs["input_ids"].shape[1]
    suffix = torch.tensor([gen[:-1]], dtype=torch.long)
    ids = torch.cat([inputs["input_ids"], suffix], 1)
    tt = torch.cat([inputs["token_type_ids"], torch.ones_like(suffix)], 1)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=tt,
                pixel_values=inputs["pixel_values"].to(model.dtype))
    return out.logits[0, P - 1:].float()


@torch.no_grad()
def layer_ablation(model32, inputs, cap=None):
    """How much each layer matters: for every text and vision layer, the float32 model with that layer's output
    removed (PG2: post-norm scales 0; PG1: o_proj/down_proj 0; SigLIP: out_proj/fc2 0). Returns
    {layer: max |logits - logits_without_layer| / max |logits|} for the first generated token's logits."""
    def logits0(m):
        l = m(**inputs).logits[0, -1].float()
        return softcap(l, cap) if cap else l
    ref = logits0(model32)
    gen2 = model32.config.text_config.model_type == "gemma2"
    res = {}
    for kind, layers in (("text", model32.model.language_model.layers), ("vision", model32.model.vision_tower.encoder.layers)):
        for i in range(len(layers)):
            m = copy.deepcopy(model32)
            L = (m.model.language_model.layers if kind == "text" else m.model.vision_tower.encoder.layers)[i]
            if kind == "vision":
                zero = (L.self_attn.out_proj.weight, L.self_attn.out_proj.bias, L.mlp.fc2.weight, L.mlp.fc2.bias)
            elif gen2:
                L.post_attention_layernorm.weight.fill_(-1.0)
                L.post_feedforward_layernorm.weight.fill_(-1.0)
                zero = ()
            else:
                zero = (L.self_attn.o_proj.weight, L.mlp.down_proj.weight)
            for t in zero:
                t.zero_()
            res[f"{kind}{i}"] = round(((logits0(m) - ref).abs().max() / ref.abs().max()).item(), 4)
            del m
    return res


def check(cond, msg, strict):
    if not cond:
        if strict:
            raise AssertionError(msg)
        log("WARNING (not asserted: --lenient or a non-default configuration):", msg)


@torch.no_grad()
def run_case(model, processor, sp, case_dir, name, model_name, prompt, image_specs, args, V, first, dtype, seed,
             opts, model32=None, strict=True):
    """opts: {"eos": True} for a case whose greedy output must end with <eos> before max_new_tokens.
    model32: for the low-precision models, the same stored weights upcast to float32 (noise figure)."""
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    image_size = processor.image_processor.size["height"]
    paths = []
    for fname, kind, w, h in image_specs:
        img = make_image(kind, w, h, seed_for(seed, f"{name}/{fname}"))
        save_image(img, os.path.join(case_dir, fname))
        paths.append(fname)
    images = [Image.open(os.path.join(case_dir, p)).convert("RGB") for p in paths]
    if len(images) == 1:
        inputs = processor(text=prompt, images=images[0], return_tensors="pt")
    else:
        inputs = processor(text=prompt, images=[images], return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    n_img = len(images) * processor.image_seq_length
    text_ids = check_prompt_ids(sp, processor.tokenizer, prompt)
    assert ids == [V] * n_img + [sp.bos_id()] + text_ids, f"{name}: unexpected processor ids {ids}"
    assert inputs["attention_mask"].eq(1).all() and inputs["token_type_ids"].eq(0).all()
    pv = inputs["pixel_values"]
    assert pv.dtype == torch.float32 and tuple(pv.shape) == (len(images), 3, image_size, image_size)

    gen_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids", "pixel_values")}
    out = model.generate(
        **gen_inputs,
        max_new_tokens=args.max_new_tokens,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
    )
    gen = out.sequences[0, len(ids):].tolist()
    raw = torch.stack([l[0] for l in out.logits]).float()  # [steps, rows]
    assert raw.shape == (len(gen), model.config.text_config.vocab_size), raw.shape
    assert raw.argmax(-1).tolist() == gen, (name, raw.argmax(-1).tolist(), gen)
    check(gen[0] != 1, f"{name}: <eos> at step 0", strict)
    if 1 in gen:
        assert gen.index(1) == len(gen) - 1
    cap = getattr(model.config.text_config, "final_logit_softcapping", None)
    logits = softcap(raw, cap) if cap else raw
    top2 = logits.topk(2, -1).values  # of the saved logits
    margins = [round(float(v), 6) for v in (top2[:, 0] - top2[:, 1])]
    rel_margins = ((top2[:, 0] - top2[:, 1]) / logits.abs().amax(-1)).tolist()
    # quality checks (see README): varied output, <eos> exactly where wanted, margins well above the noise
    if opts.get("eos"):
        check(gen[-1] == 1 and len(gen) < args.max_new_tokens, f"{name}: no <eos> before max_new_tokens: {gen}",
              strict)
    else:
        check(1 not in gen, f"{name}: unexpected <eos>: {gen}", strict)
    extra = {}
    if model32 is not None:
        ref32 = teacher_forced_logits(model32, gen_inputs, gen)
        if cap:
            ref32 = softcap(ref32, cap)
        noise = rel_max_diff_rows(logits, ref32)
        extra["lowp_vs_f32_rel_diff"] = [round(v, 6) for v in noise]
        bar = LOWP_NOISE_BAR[dtype]
        check(max(noise) <= bar, f"{name}: low-precision noise {max(noise):.4f} > {bar} of max|logit|", strict)
        check(ref32.argmax(-1).tolist() == gen, f"{name}: the float32 run of the same weights picks other tokens "
              f"{ref32.argmax(-1).tolist()} vs {gen}", strict)
        check(min(rel_margins) >= 0.01, f"{name}: top-2 margin {min(rel_margins):.4f} < 1% of max|logit|", strict)
        if not opts.get("eos"):
            check(len(gen) == args.max_new_tokens and len(set(gen)) >= args.max_new_tokens // 2,
                  f"{name}: fewer than {args.max_new_tokens // 2} distinct tokens: {gen}", strict)
    elif dtype == torch.float32:
        # the single teacher-forced forward pass used for the noise figure reproduces generate()'s logits
        tf = teacher_forced_logits(model, gen_inputs, gen)
        tf = softcap(tf, cap) if cap else tf
        d = (tf - logits).abs().max().item()
        assert d < 1e-3, (name, "teacher-forced vs generate", d)
    write_npy(os.path.join(case_dir, "logits.npy"), logits.numpy())
    write_npy(os.path.join(case_dir, "pixel_values.npy"), pv.numpy())
    if first:
        vt = model.model.vision_tower(pv.to(dtype)).last_hidden_state  # post_layernorm output
        emb = model.model.multi_modal_projector(vt)
        ref = model.model.get_image_features(pv.to(dtype)).pooler_output
        assert torch.equal(emb, ref)
        write_npy(os.path.join(case_dir, "vision_features.npy"), vt.reshape(-1, vt.shape[-1]).float().numpy())
        write_npy(os.path.join(case_dir, "image_embeds.npy"), emb.reshape(-1, emb.shape[-1]).float().numpy())
    dtype_name = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    case = {
        "model": model_name,
        "images": paths,
        "prompt": prompt,
        "max_new_tokens": args.max_new_tokens,
        "input_ids": ids,
        "generated": gen,
        "final_logit_softcap_applied_to_logits": bool(cap),
        "top2_margin": margins,
        **extra,
        "how": (
            f"tools/reference/make_fixtures.py seed={seed}: transformers {transformers.__version__}, torch "
            f"{torch.__version__}, PaliGemmaForConditionalGeneration.from_pretrained(models/{model_name}, "
            f"dtype={dtype_name}, attn_implementation='eager').generate(do_sample=False, max_new_tokens="
            f"{args.max_new_tokens}, output_logits=True); processor = PaliGemmaProcessor(SiglipImageProcessorPil, "
            f"GemmaTokenizer.from_pretrained(tokenizer/, mask_token=None)); images via PIL Image.open().convert('RGB')"
            + (f"; logits = {cap:g}*tanh(raw/{cap:g}) (transformers leaves the final soft-cap out)" if cap else "")
            + ("; lowp_vs_f32_rel_diff: per step max|logits - logits_f32| / max|logits_f32|, logits_f32 from the "
               "same stored weights upcast to float32 (model.float()), one teacher-forced forward pass over "
               "input_ids + generated[:-1]" if extra else "")
        ),
    }
    write_json(os.path.join(case_dir, "case.json"), case)
    return case | {"rel_margins": rel_margins, "inputs": gen_inputs}


# --------------------------------------------------------------------------------------------------------------
# 4. Independent check: the spec's recipe, written out by hand, reproduces the saved logits
# --------------------------------------------------------------------------------------------------------------
def read_weights(model_dir):
    """All tensors of a model directory as float32, under the legacy names, whatever the layout on disk."""
    files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    w = {}
    for f in files:
        for k, v in load_file(os.path.join(model_dir, f)).items():
            if k.startswith("model.language_model."):
                k = "language_model.model." + k[len("model.language_model."):]
            elif k.startswith("model."):
                k = k[len("model."):]
            if k.startswith("vision_tower.") and not k.startswith("vision_tower.vision_model."):
                k = "vision_tower.vision_model." + k[len("vision_tower."):]
            w[k] = v.float()
    return w


@torch.no_grad()
def recipe_logits(w, cfg, pixel_values, ids, prefix_len, one_based=True):
    """float32 forward of the spec's recipe (no transformers code): returns logits [len(ids), rows]."""
    vc, tc = cfg["vision_config"], cfg["text_config"]
    F = torch.nn.functional
    Dv, nh_v, P = vc["hidden_size"], vc["num_attention_heads"], vc["patch_size"]
    G = vc["image_size"] // P

    def ln(x, pre):
        return F.layer_norm(x, (x.shape[-1],), w[pre + ".weight"], w[pre + ".bias"], vc["layer_norm_eps"])

    def gelu(x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    vp = "vision_tower.vision_model."
    feats = []
    for img in pixel_values.float():
        patches = img.reshape(3, G, P, G, P).permute(1, 3, 0, 2, 4).reshape(G * G, 3 * P * P)  # (ch, ky, kx)
        x = patches @ w[vp + "embeddings.patch_embedding.weight"].reshape(Dv, -1).T
        x = x + w[vp + "embeddings.patch_embedding.bias"] + w[vp + "embeddings.position_embedding.weight"]
        for i in range(vc["num_hidden_layers"]):
            lp = f"{vp}encoder.layers.{i}."
            h = ln(x, lp + "layer_norm1")
            q, k, v = (h @ w[lp + f"self_attn.{n}_proj.weight"].T + w[lp + f"self_attn.{n}_proj.bias"]
                       for n in ("q", "k", "v"))
            hd = Dv // nh_v
            q, k, v = (t.reshape(-1, nh_v, hd).transpose(0, 1) for t in (q, k, v))
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), -1) @ v
            a = a.transpose(0, 1).reshape(-1, Dv)
            x = x + a @ w[lp + "self_attn.out_proj.weight"].T + w[lp + "self_attn.out_proj.bias"]
            h = ln(x, lp + "layer_norm2")
            h = gelu(h @ w[lp + "mlp.fc1.weight"].T + w[lp + "mlp.fc1.bias"])
            x = x + h @ w[lp + "mlp.fc2.weight"].T + w[lp + "mlp.fc2.bias"]
        z = ln(x, vp + "post_layernorm")
        feats.append(z @ w["multi_modal_projector.linear.weight"].T + w["multi_modal_projector.linear.bias"])
    img_rows = torch.cat(feats)  # NOT scaled (transformers 5.x; big_vision does the same)

    gen2 = tc["model_type"] == "gemma2"
    H, nq, nkv, hd = tc["hidden_size"], tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
    tp = "language_model.model."
    E = w[tp + "embed_tokens.weight"]
    ids_t = torch.tensor(ids)
    x = E[ids_t.clamp(max=E.shape[0] - 1)] * torch.tensor(H ** 0.5, dtype=torch.float32)
    x[ids_t == cfg["image_token_index"]] = img_rows
    L = len(ids)
    pos = torch.arange(L, dtype=torch.float32) + (1 if one_based else 0)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = pos[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)

    def rope(t):  # [heads, L, hd]
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat([-t2, t1], -1) * sin

    def rms(t, name):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + tc["rms_norm_eps"]) * (1 + w[name])

    i_idx, j_idx = torch.arange(L)[:, None], torch.arange(L)[None, :]
    allowed_full = j_idx <= torch.maximum(i_idx, torch.tensor(prefix_len - 1))
    scale = (tc["query_pre_attn_scalar"] if gen2 else hd) ** -0.5
    for l in range(tc["num_hidden_layers"]):
        lp = f"{tp}layers.{l}."
        allowed = allowed_full
        if gen2 and tc["layer_types"][l] == "sliding_attention":
            # window only for generated queries; prefix queries see the whole prefix
            allowed = allowed_full & ((i_idx < prefix_len) | (i_idx - j_idx < tc["sliding_window"]))
        h = rms(x, lp + "input_layernorm.weight")
        q = (h @ w[lp + "self_attn.q_proj.weight"].T).reshape(L, nq, hd).transpose(0, 1)
        k = (h @ w[lp + "self_attn.k_proj.weight"].T).reshape(L, nkv, hd).transpose(0, 1)
        v = (h @ w[lp + "self_attn.v_proj.weight"].T).reshape(L, nkv, hd).transpose(0, 1)
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(nq // nkv, 0), v.repeat_interleave(nq // nkv, 0)  # head h -> kv h // (nq/nkv)
        sc = q @ k.transpose(1, 2) * scale
        if gen2:
            sc = tc["attn_logit_softcapping"] * torch.tanh(sc / tc["attn_logit_softcapping"])
        sc = sc.masked_fill(~allowed, float("-inf"))
        a = (torch.softmax(sc, -1) @ v).transpose(0, 1).reshape(L, nq * hd) @ w[lp + "self_attn.o_proj.weight"].T
        if gen2:
            x = x + rms(a, lp + "post_attention_layernorm.weight")
            h = rms(x, lp + "pre_feedforward_layernorm.weight")
        else:
            x = x + a
            h = rms(x, lp + "post_attention_layernorm.weight")
        m = (gelu(h @ w[lp + "mlp.gate_proj.weight"].T) * (h @ w[lp + "mlp.up_proj.weight"].T))
        m = m @ w[lp + "mlp.down_proj.weight"].T
        x = x + (rms(m, lp + "post_feedforward_layernorm.weight") if gen2 else m)
    logits = rms(x, tp + "norm.weight") @ E.T
    if gen2 and tc.get("final_logit_softcapping"):
        logits = tc["final_logit_softcapping"] * torch.tanh(logits / tc["final_logit_softcapping"])
    return logits


def check_case_with_recipe(models_dir, case_dir):
    with open(os.path.join(case_dir, "case.json"), encoding="utf-8") as f:
        case = json.load(f)
    mdir = os.path.join(models_dir, case["model"])
    with open(os.path.join(mdir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    w = read_weights(mdir)
    pv = torch.from_numpy(np.load(os.path.join(case_dir, "pixel_values.npy")))
    ref = torch.from_numpy(np.load(os.path.join(case_dir, "logits.npy")))
    P = len(case["input_ids"])
    seq = case["input_ids"] + case["generated"][:-1]  # teacher forcing with the reference tokens
    got = recipe_logits(w, cfg, pv, seq, P)[P - 1:]
    diff = (got - ref).abs().max().item()
    same_argmax = got.argmax(-1).tolist() == ref.argmax(-1).tolist()
    got0 = recipe_logits(w, cfg, pv, seq, P, one_based=False)[P - 1:]
    diff0 = (got0 - ref).abs().max().item()
    return diff, same_argmax, diff0


def write_readme(out, args, V, rows, sp, summary, ablation):
    case_rows = []
    for c in summary:
        gen = c["generated"]
        eos = f", `<eos>` at step {gen.index(1)}" if 1 in gen else ""
        noise = (f"{max(c['lowp_vs_f32_rel_diff']):.2%}" if "lowp_vs_f32_rel_diff" in c else "–")
        case_rows.append(
            f"| `{c['name']}` | `{c['model']}` | `{c['prompt']}` | {c['n_images']}: "
            + ", ".join(c["images"]) + f" | {len(c['input_ids'])} | {len(gen)} ({len(set(gen))} distinct{eos}) "
            f"| {min(c['top2_margin']):.3g} ({min(c['rel_margins']):.2%}) | {noise} | {c['recipe_diff']:.2g} |")
    abl_rows = "\n".join(
        f"| `{name}` | " + ", ".join(f"{k} {v:.0%}" for k, v in res.items()) + " |" for name, res in ablation.items())
    tiny = argparse.Namespace(**(vars(args) | TINY_SHAPES))
    bf16_noise = [max(c["lowp_vs_f32_rel_diff"]) for c in summary if c["model"] == "pg2_bf16_sharded"]
    f16_noise = [max(c["lowp_vs_f32_rel_diff"]) for c in summary if c["model"] == "pg1_f16_sharded"]
    t = f"""# Reference fixtures (generated: do not edit by hand)

Written by `tools/reference/make_fixtures.py` inside the Debian sid reference root (`tools/reference/reference-root.sh`)
(transformers {transformers.__version__}, torch {torch.__version__}, sentencepiece {spm.__version__},
numpy {np.__version__}), seed {args.seed}. Regenerate everything here (tokenizer/, models/, cases/, this file) with:

```
sudo tools/reference/reference-root.sh run -- bash tools/reference/make_fixtures.sh
```

A rerun reproduces every file byte for byte (fixed seeds, one thread). `make_fixtures.sh --seed N` and the shape
options (`--text-layers`, `--head-dim`, `--sliding-window`, ... see `--help`) write other random checkpoints
with the same layout (e.g. `--out /tmp/unseen --seed 7` for a hidden check); for those the case quality checks
below (noise, margins, `<eos>` placement, varied output) are only warned about, since the model variants and
case inputs were chosen for seed 0 and the default shapes.

## tokenizer/

- `tokenizer.model`: SentencePiece BPE trained with the sentencepiece module on five texts of
  /usr/share/common-licenses ({", ".join(LICENSE_FILES)}) plus a few non-ASCII lines; vocab_size {V}
  = 1152 user-defined pieces + {V - 1152} others; byte_fallback, split_digits, no dummy prefix, identity
  normalization, remove_extra_whitespaces=False. The newline "\\n" is not a piece: it is the byte piece `<0x0A>`
  (id {sp.piece_to_id("<0x0A>")}).
  Ids: `<pad>`=0, `<eos>`=1, `<bos>`=2, `<unk>`=3, `<loc0000>`…`<loc1023>` = {sp.piece_to_id("<loc0000>")}…{sp.piece_to_id("<loc1023>")},
  `<seg000>`…`<seg127>` = {sp.piece_to_id("<seg000>")}…{sp.piece_to_id("<seg127>")}, bytes `<0x00>`…`<0xFF>` = {sp.piece_to_id("<0x00>")}…{sp.piece_to_id("<0xFF>")}.
  These differ from the real vocabulary: look special pieces up by name.
  `<image>` is not a piece: it is id V = {V} (`config.json` `image_token_index`), like the real 257152.
  Embedding rows = (V + 2) rounded up to a multiple of 64 = {rows} (the real conversion gives 257216).
- `prompt_ids.json`: `prompt + "\\n"` → ids (and pieces) for every case prompt and some edge cases; the ids from
  the sentencepiece library and from transformers' `GemmaTokenizer` (add_special_tokens=False) are asserted equal.

## models/

Tiny random PaliGemma checkpoints in the hub's directory layout: `config.json` (model_type paligemma, nested
text_config/vision_config), `generation_config.json`, safetensors weights, `tokenizer.model` (a copy),
`tokenizer_config.json`, `preprocessor_config.json` (hub style: bicubic, 1/255, mean=std=0.5,
{args.image_size}×{args.image_size}, image_seq_length {(args.image_size // args.patch_size) ** 2}; pg1_f32_tiny:
{tiny.image_size}×{tiny.image_size}, {(tiny.image_size // tiny.patch_size) ** 2}) and
`processor_config.json` (what transformers 5 writes). No `tokenizer.json` (300 KB each; not needed).
`lm_head.weight` is never stored (tied to embed_tokens).

| directory | text model | weights | tensor names | references computed in |
|---|---|---|---|---|
| `pg1_f32` | Gemma (PG1), {args.pg1_kv_heads} kv head(s) | float32, one `model.safetensors`, "wide" init | hub: `vision_tower.vision_model.*`, `language_model.model.*`, `multi_modal_projector.*` | float32 |
| `pg1_f16_sharded` | Gemma (PG1), {args.pg1_kv_heads} kv head(s) | float16, shards + `model.safetensors.index.json`, own "calm" init | what 5.x `save_pretrained` writes for a model built from a config: `vision_tower.*` (no `.vision_model`), `language_model.model.*`, `multi_modal_projector.*` | float16 |
| `pg2_f32` | Gemma 2 (PG2), {args.pg2_kv_heads} kv heads | float32, one file, "wide" init | in-memory (new): `model.vision_tower.*` (no `.vision_model`), `model.language_model.*`, `model.multi_modal_projector.*` | float32 |
| `pg2_bf16_sharded` | Gemma 2 (PG2), {args.pg2_kv_heads} kv heads | bfloat16, shards + index, own "calm" init | hub | bfloat16 |
| `pg1_f32_tiny` | Gemma (PG1), {tiny.pg1_kv_heads} kv heads (= query heads), smaller shapes | float32, one file, "calm" init | hub | float32 |

Shapes: vision hidden {args.vision_hidden}, intermediate {args.vision_intermediate}, {args.vision_layers} layers,
{args.vision_heads} heads, image {args.image_size}, patch {args.patch_size}, LayerNorm eps 1e-6, no pooling head,
projection_dim = text hidden. Text hidden {args.text_hidden}, intermediate {args.text_intermediate},
{args.text_layers} layers, {args.text_heads} query heads, head_dim {args.head_dim}, RMSNorm eps 1e-6, rope theta
10000. PG2: query_pre_attn_scalar {args.query_pre_attn_scalar} (≠ head_dim), attn_logit_softcapping
{args.attn_softcap:g}, final_logit_softcapping {args.final_softcap:g}, sliding_window {args.sliding_window} on
layers 0, 2, … (smaller than every sequence here). `pg1_f32_tiny`: vision hidden {tiny.vision_hidden},
intermediate {tiny.vision_intermediate}, {tiny.vision_layers} layers, {tiny.vision_heads} heads, image
{tiny.image_size} ({(tiny.image_size // tiny.patch_size) ** 2} image tokens); text hidden {tiny.text_hidden},
intermediate {tiny.text_intermediate}, {tiny.text_layers} layers, {tiny.text_heads} query heads and
{tiny.pg1_kv_heads} kv heads, head_dim {tiny.head_dim}.

The weights are random, re-drawn by `widen_weights` (not transformers' init, whose outputs repeat one token):

- `pg1_f32`, `pg2_f32`: "wide" (`INIT`: std ≈ gain/√fan_in, embeddings std 1, norm weights random, PG1 output
  projections ×8, PG2 post-norm scales ≈ 7, final-norm scales of random sign) so greedy outputs change from step
  to step and every layer, the soft-caps and the sliding window all change the logits. These weights are chaotic
  (a one-ulp change of one activation moves the logits by percents after three layers): only float32 references
  are made with them. The rows of `<pad>/<eos>/<bos>/<unk>` are scaled by 0.3 (so `<eos>` is never produced).
- `pg1_f16_sharded`, `pg2_bf16_sharded`, `pg1_f32_tiny`: their own weights ("calm", `INIT_LOWP`; the
  low-precision models are no longer casts of the float32 models' weights): embeddings std 1/√H, projector and
  projections ≈ 1/√fan_in, small q/k gains (soft attention; sharp attention is what amplifies rounding), PG2
  post-norm scales ≈ 0.4 (attention) and ≈ 0.7 (MLP) against embedding rows of RMS 1, PG1 MLP outputs ×2,
  final-norm scales of random sign. Closer to a trained checkpoint: the float16/bfloat16 references stay close
  to exact arithmetic with the same weights (`lowp_vs_f32_rel_diff`), outputs still vary, and every layer
  matters (below). The soft-caps stay configured but barely act here (logits and attention scores are small);
  the float32 models exercise them. The `<eos>` row is {INIT_LOWP["pg2_bf16_sharded"]["eos"]:g}× a normal row in
  `pg2_bf16_sharded` and {INIT_LOWP["pg1_f32_tiny"]["eos"]:g}× in `pg1_f32_tiny` (so that greedy decoding can reach it;
  it is produced only in the `*_eos` cases), ×0.3 in `pg1_f16_sharded`; `<pad>/<bos>/<unk>` ×0.3. The weight
  seeds (`INIT_LOWP` variants) and the case images/prompts were chosen by a search so that the checks below hold.
- In all models the rows ≥ V are the mean embedding plus tiny noise (as in the hub conversion).

Every layer matters: removing one layer (its attention and MLP outputs) of the calm models changes the first
step's logits by this fraction of max|logit| (float32, the case's first input; asserted ≥ 10%):

| model | text and vision layers removed one at a time |
|---|---|
""" + abl_rows + f"""

## cases/<case>/

- `case.json`: `model` (directory under models/), `images` (files in the case directory), `prompt`,
  `max_new_tokens`, `input_ids` (the processor's: N×`<image>`(=V), `<bos>`, prompt + "\\n" tokens),
  `generated` (greedy ids; ends with `<eos>` (1) where one was produced: the `*_eos` cases),
  `final_logit_softcap_applied_to_logits`, `top2_margin` (per step: top-1 minus top-2 of the saved logits),
  for the float16/bfloat16 models `lowp_vs_f32_rel_diff` (per step: max|logits − logits_f32| / max|logits_f32|,
  where logits_f32 come from the same stored weights upcast to float32 (`model.float()`), one teacher-forced
  forward pass over `input_ids` + `generated[:-1]`; an implementation-independent noise figure),
  `how` (one line: script, versions, seed, dtype).
- the image file(s); the processor got `PIL.Image.open(path).convert("RGB")`.
- `pixel_values.npy`: float32 [n_images, 3, S, S] (S = {args.image_size}; {tiny.image_size} for pg1_f32_tiny),
  exactly the processor's output (`SiglipImageProcessorPil`: PIL bicubic resize, u8/255, (x−0.5)/0.5).
- `logits.npy`: float32 [steps, {rows}]; row i = the logits from which generated token i was chosen (so row i is
  computed with generated[0..i−1] in the context). For PG2 the rows are `{args.final_softcap:g}*tanh(raw/{args.final_softcap:g})`:
  transformers 5.x leaves the final soft-cap out, the engine applies it. For pg2_bf16_sharded the raw logits are
  bfloat16 values, for pg1_f16_sharded float16 values.
- first case of each model: `vision_features.npy` float32 [n_images·image tokens, vision hidden]
  (SigLIP `post_layernorm` output) and `image_embeds.npy` float32 [n_images·image tokens, text hidden]
  (projector output; transformers 5.x scatters it into the sequence unscaled).

| case | model | prompt | images | prompt tokens | generated | min top-2 margin (of max\\|logit\\|) | low-precision noise | recipe max abs diff |
|---|---|---|---|---|---|---|---|---|
""" + chr(10).join(case_rows) + f"""

"min top-2 margin": the smallest `top2_margin` over the steps, and in brackets relative to that step's
max|logit|. "low-precision noise": max over the steps of `lowp_vs_f32_rel_diff`. Asserted for the float16 and
bfloat16 cases: noise ≤ 0.3% (float16) / ≤ 1% (bfloat16) of max|logit| at every step, top-2 margin ≥ 1% of
max|logit| at every step, the float32 run of the same weights picks the same tokens at every step, ≥ 6 distinct
tokens out of {args.max_new_tokens} (cases without `<eos>`); `<eos>` only and exactly where wanted (all models).
bfloat16 cannot get to 0.3%: rounding the exact logits to bfloat16 alone moves them by up to 2^-9..2^-8 (0.2–0.4%)
of max|logit|, computing only the final norm and lm_head in bfloat16 by ~0.3%, and the ~30 roundings along two
vision and three text layers add about as much again; these cases' noise is {min(bf16_noise, default=0):.2%}–{max(bf16_noise, default=0):.2%}
(float16: {min(f16_noise, default=0):.2%}–{max(f16_noise, default=0):.2%}).

"recipe max abs diff": the script re-implements the forward pass by hand from the safetensors files (float32,
no transformers code: patchify-matmul SigLIP, projector without scaling, text rows × √H, 1-based RoPE positions,
prefix-LM mask, sliding window only for generated queries, soft-caps) and compares with `logits.npy`,
teacher-forced with `generated`. float32 cases must agree within 2e-3 (they agree to ~1e-4); the float16 and
bfloat16 ones differ by the rounding of the reference (not asserted; about the noise figure times max|logit|).

Advice for tests: float32 models: compare generated tokens exactly and logits to ~1e-3 absolute. float16 and
bfloat16 models (an implementation that rounds where transformers does): logits to ~1e-2 of max|logit| and the
tokens exactly (every margin is ≥ 1% of max|logit|, above the noise figure). Where a case ends with `<eos>`,
generation must stop there (fewer than max_new_tokens tokens).

## What transformers {transformers.__version__} does (checked while writing these files)

- Attention mask: every prompt token (image tokens, `<bos>`, text, "\\n") attends to every prompt token, on the
  sliding-window layers too (the prefix block is OR-ed into the sliding mask, regardless of distance). A
  generated token at index i attends to the whole prefix + earlier generated tokens on full layers, and to keys
  j with i − j < sliding_window (i.e. {args.sliding_window} keys including itself) on sliding layers (the
  DynamicSlidingWindowLayer cache keeps {args.sliding_window} keys).
- Positions are 1-based (`position_ids = arange + 1`).
- The processor inserts exactly one `<bos>` after the image tokens and appends "\\n"; the tokenizer itself adds
  no `<bos>`.
- Image features are not scaled at all: the text rows are multiplied by √H inside the embedding module
  (`embed_scale` cast to the weight dtype), the projector output replaces the `<image>` rows as it is.
- Eager attention applies the attention soft-cap; the final soft-cap is not applied.
- `save_pretrained` writes `vision_tower.*` without `.vision_model.` for a model built from a config, but the
  hub's `vision_tower.vision_model.*` for a model loaded from hub-named files; all three spellings load.
"""
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(t)


# --------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures", help="fixture root (default tests/fixtures)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-base", type=int, default=1000, help="SentencePiece vocab size without loc/seg pieces")
    ap.add_argument("--vision-hidden", type=int, default=64)
    ap.add_argument("--vision-intermediate", type=int, default=96)
    ap.add_argument("--vision-layers", type=int, default=2)
    ap.add_argument("--vision-heads", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--patch-size", type=int, default=14)
    ap.add_argument("--text-hidden", type=int, default=64)
    ap.add_argument("--text-intermediate", type=int, default=96)
    ap.add_argument("--text-layers", type=int, default=3)
    ap.add_argument("--text-heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=16)
    ap.add_argument("--pg1-kv-heads", type=int, default=1)
    ap.add_argument("--pg2-kv-heads", type=int, default=2)
    ap.add_argument("--query-pre-attn-scalar", type=int, default=24)
    ap.add_argument("--attn-softcap", type=float, default=50.0)
    ap.add_argument("--final-softcap", type=float, default=30.0)
    ap.add_argument("--sliding-window", type=int, default=40)
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--shard-size", default="200KB", help="max_shard_size of the sharded models")
    ap.add_argument("--lenient", action="store_true",
                    help="only warn where a case misses the quality checks (low-precision noise, top-2 margins, "
                         "varied output, <eos> where wanted, every layer matters); the default for any "
                         "configuration other than the committed one (other --seed or shape options)")
    ap.add_argument("--full-size", metavar="DIR", help="write a full-size random PaliGemma 1 3B-224 bf16 "
                    "checkpoint + reference.json to DIR instead of the fixtures")
    ap.add_argument("--full-size-tokenizer", default=None,
                    help="tokenizer.model for --full-size (default: <out>/tokenizer/tokenizer.model)")
    ap.add_argument("--full-size-gen", type=int, choices=(1, 2), default=1,
                    help="--full-size: PaliGemma 1 3B (Gemma 2B) or PaliGemma 2 3B (Gemma 2 2B)")
    ap.add_argument("--full-size-resolution", type=int, choices=(224, 448, 896), default=224,
                    help="--full-size: image size (256, 1024 or 4096 image tokens)")
    ap.add_argument("--full-size-dtype", choices=("bfloat16", "float32"), default="bfloat16",
                    help="--full-size: stored weight dtype (the reference computes in it)")
    ap.add_argument("--full-size-from", metavar="SRC", help="--full-size: take the weights of this full-size "
                    "checkpoint of the same family (re-drawing only tensors whose shape differs)")
    ap.add_argument("--full-size-no-reference", action="store_true",
                    help="--full-size: write only the checkpoint and image, no transformers run (896 px takes "
                         "many minutes on a small machine)")
    args = ap.parse_args()
    # the quality checks were met by choosing INIT_LOWP variants and case inputs for the committed configuration
    ignore = ("out", "lenient", "full_size", "full_size_tokenizer", "full_size_gen", "full_size_resolution",
              "full_size_dtype", "full_size_from", "full_size_no_reference")
    args.default_config = all(getattr(args, a) == ap.get_default(a) for a in vars(args) if a not in ignore)
    return args


def main():
    args = parse_args()
    if args.full_size:
        return full_size(args)
    out = args.out
    seed = args.seed
    strict = args.default_config and not args.lenient
    log(f"transformers {transformers.__version__}, torch {torch.__version__}, seed {seed}, out {out}, "
        f"quality checks {'asserted' if strict else 'only warned about'}")

    # 1. tokenizer
    tok_dir = os.path.join(out, "tokenizer")
    tok_path = train_tokenizer(tok_dir, args.vocab_base, seed)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    V = sp.get_piece_size()
    rows = (V + 2 + 63) // 64 * 64
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<eos>", "<bos>", "<unk>"]
    assert sp.piece_to_id("<loc0000>") != sp.unk_id() and sp.piece_to_id("<seg127>") != sp.unk_id()
    n_img_tokens = (args.image_size // args.patch_size) ** 2
    processor = make_processor(tok_dir, args.image_size, n_img_tokens)
    assert processor.image_token_id == V, (processor.image_token_id, V)
    prompts = list(dict.fromkeys(TOKENIZER_PROMPTS + [c[2] for c in CASES]))
    prompt_ids = []
    for p in prompts:
        ids = check_prompt_ids(sp, processor.tokenizer, p)
        prompt_ids.append({"text": p + "\n", "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids]})
    write_json(os.path.join(tok_dir, "prompt_ids.json"), {
        "how": "SentencePiece encode of text (prompt + '\\n'); identical ids from transformers GemmaTokenizer "
               f"(transformers {transformers.__version__}), add_special_tokens=False",
        "vocab_size": V, "pad_id": 0, "eos_id": 1, "bos_id": 2, "unk_id": 3, "image_token_index": V,
        "embedding_rows": rows, "cases": prompt_ids})
    log(f"tokenizer: V={V}, embedding rows={rows}, <loc0000>={sp.piece_to_id('<loc0000>')}, "
        f"<seg000>={sp.piece_to_id('<seg000>')}")

    # 2. models
    models_dir = os.path.join(out, "models")
    os.makedirs(models_dir, exist_ok=True)
    tmp = os.path.join(models_dir, "_tmp")
    built = {}
    for gen in (1, 2):  # the float32 models ("wide", chaotic weights)
        cfg = build_config(args, gen, V, rows)
        torch.manual_seed(seed_for(seed, f"init{gen}"))
        model = PaliGemmaForConditionalGeneration(cfg).eval()
        widen_weights(model, cfg, V, seed_for(seed, f"pg{gen}"), gen)
        assert not any("head" in k and "vision" in k and "lm_head" not in k for k in model.state_dict()), \
            "vision_use_head should be False"
        if gen == 1:
            save_hub_model(model, processor, tok_path, os.path.join(models_dir, "pg1_f32"), torch.float32,
                           names="hub", tmp_dir=tmp)
            check_files(os.path.join(models_dir, "pg1_f32"), "hub", False)
        else:
            save_hub_model(model, processor, tok_path, os.path.join(models_dir, "pg2_f32"), torch.float32,
                           names="in_memory")
            check_files(os.path.join(models_dir, "pg2_f32"), "in_memory", False)
        built[f"pg{gen}_f32"] = model
    # the low-precision models and the tiny float32 <eos> model: their own "calm" weights (INIT_LOWP)
    tiny_args = argparse.Namespace(**(vars(args) | TINY_SHAPES))
    tiny_processor = make_processor(tok_dir, tiny_args.image_size, (tiny_args.image_size // tiny_args.patch_size) ** 2)
    processors = {name: processor for name in MODEL_DTYPES} | {"pg1_f32_tiny": tiny_processor}
    for name, k in INIT_LOWP.items():
        margs = tiny_args if name == "pg1_f32_tiny" else args
        cfg = build_config(margs, k["gen"], V, rows)
        torch.manual_seed(seed_for(seed, f"init/{name}"))
        model = PaliGemmaForConditionalGeneration(cfg).eval()
        widen_weights(model, cfg, V, seed_for(seed, f"{k['label']}/{k['variant']}"), k["gen"], k)
        mdir = os.path.join(models_dir, name)
        dtype = MODEL_DTYPES[name]
        names, shards = {"pg1_f16_sharded": ("save_pretrained", True), "pg2_bf16_sharded": ("hub", True),
                         "pg1_f32_tiny": ("hub", False)}[name]
        save_hub_model(model, processors[name], tok_path, mdir, dtype, shard_size=args.shard_size if shards else None,
                       names=names, tmp_dir=tmp)
        check_files(mdir, names, shards)
        built[name] = model.to(dtype)

    # reload from disk; the references are computed with exactly what the engine will load, in the stored dtype
    loaded = {name: (load_model(os.path.join(models_dir, name), dtype), dtype) for name, dtype in MODEL_DTYPES.items()}
    for name, (m, dtype) in loaded.items():
        assert next(m.parameters()).dtype == dtype, name
        assert_same_weights(built[name], m, f"{name} reload")
        assert m.lm_head.weight.data_ptr() == m.model.language_model.embed_tokens.weight.data_ptr(), name
        assert m.config.image_token_index == V and m.config.text_config.vocab_size == rows
    del built
    # the same stored low-precision weights upcast to float32, for the noise figure lowp_vs_f32_rel_diff
    upcast = {name: copy.deepcopy(m).float() for name, (m, dtype) in loaded.items() if dtype != torch.float32}
    # a processor saved into a model directory loads back and tokenizes the same
    p2 = PaliGemmaProcessor.from_pretrained(os.path.join(models_dir, "pg1_f32"))
    assert p2.image_token_id == V and p2.image_seq_length == n_img_tokens
    assert p2.tokenizer("caption en\n", add_special_tokens=False)["input_ids"] == sp.encode("caption en\n")
    p3 = PaliGemmaProcessor.from_pretrained(os.path.join(models_dir, "pg1_f32_tiny"))
    assert p3.image_token_id == V and p3.image_seq_length == tiny_processor.image_seq_length
    assert p3.image_processor.size == tiny_processor.image_processor.size

    # 3. cases
    cases_dir = os.path.join(out, "cases")
    if os.path.isdir(cases_dir):
        shutil.rmtree(cases_dir)
    os.makedirs(cases_dir)
    seen = set()
    summary = []
    ablation = {}
    for name, model_name, prompt, image_specs, *rest in CASES:
        opts = rest[0] if rest else {}
        m, dtype = loaded[model_name]
        first = model_name not in seen
        seen.add(model_name)
        c = run_case(m, processors[model_name], sp, os.path.join(cases_dir, name), name, model_name, prompt,
                     image_specs, args, V, first, dtype, seed, opts, model32=upcast.get(model_name), strict=strict)
        gen = c["generated"]
        log(f"case {name}: model {model_name}, {len(image_specs)} image(s), {len(c['input_ids'])} prompt tokens, "
            f"generated {gen} -> {sp.decode([t for t in gen if t < V])!r}, min top-2 margin "
            f"{min(c['rel_margins']):.2%} of max|logit|"
            + (f", low-precision noise {max(c['lowp_vs_f32_rel_diff']):.3%}" if "lowp_vs_f32_rel_diff" in c else ""))
        check(len(set(gen)) > 1 or opts.get("eos"), f"{name}: generated tokens all the same", strict)
        if first and model_name in INIT_LOWP:
            # every layer matters: removing any one layer changes the first logits by >= 10% of max|logit|
            m32 = upcast.get(model_name, m)
            cap = getattr(m32.config.text_config, "final_logit_softcapping", None)
            ablation[model_name] = layer_ablation(m32, {k: v for k, v in c["inputs"].items()}, cap)
            log(f"layer ablation {model_name}: {ablation[model_name]}")
            check(min(ablation[model_name].values()) >= 0.1, f"{model_name}: a layer barely matters "
                  f"{ablation[model_name]}", strict)
        summary.append(c | {"name": name, "n_images": len(image_specs)})
    check(any(1 in c["generated"] and loaded[c["model"]][1] == torch.float32 for c in summary),
          "no float32 case ends with <eos>", strict)
    # the spec's recipe, written out independently of transformers, reproduces every case
    for c in summary:
        diff, same, diff0 = check_case_with_recipe(models_dir, os.path.join(cases_dir, c["name"]))
        log(f"recipe check {c['name']}: max |logit diff| {diff:.3g} (0-based positions: {diff0:.3g}), "
            f"argmax {'same' if same else 'DIFFERENT'}")
        if loaded[c["model"]][1] == torch.float32:  # the low-precision references ran in float16 / bfloat16
            assert diff < 2e-3 and same, (c["name"], diff)
        c["recipe_diff"], c["recipe_same"] = diff, same
    all_gen = [t for c in summary for t in c["generated"]]
    assert len(set(all_gen)) > len(all_gen) // 4, "generated tokens are not varied enough"
    write_readme(out, args, V, rows, sp, summary, ablation)
    for sub in ("tokenizer", "models", "cases"):
        for root, _, files in os.walk(os.path.join(out, sub)):
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
    log("done")


# --------------------------------------------------------------------------------------------------------------
# 5. Full-size random PaliGemma 1 / 2 3B checkpoints (224/448/896, bf16 or f32), not part of the committed fixtures
# --------------------------------------------------------------------------------------------------------------
# Text configs of the released 3B models (spec §5 table: Gemma 2B for PaliGemma 1, Gemma 2 2B for PaliGemma 2).
FULL_TEXT = {
    1: dict(model_type="gemma", hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
            num_attention_heads=8, num_key_value_heads=1),
    2: dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
            num_attention_heads=8, num_key_value_heads=4, query_pre_attn_scalar=256, attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0, sliding_window=4096),
}


@torch.no_grad()
def full_size(args):
    out = args.full_size
    gen, res, dtype = args.full_size_gen, args.full_size_resolution, getattr(torch, args.full_size_dtype)
    tokens = (res // 14) ** 2
    os.makedirs(out, exist_ok=True)
    tok_path = args.full_size_tokenizer or os.path.join(args.out, "tokenizer", "tokenizer.model")
    if not os.path.exists(tok_path):
        tok_path = train_tokenizer(os.path.join(out, "_tokenizer"), args.vocab_base, args.seed)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    V_tok = sp.get_piece_size()
    V, rows = 257152, 257216  # like the real checkpoint; ids >= V_tok never appear in a prompt
    H = FULL_TEXT[gen]["hidden_size"]
    torch.set_num_threads(os.cpu_count() or 1)
    torch.use_deterministic_algorithms(False)
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                           num_hidden_layers=27, num_attention_heads=16, num_channels=3, image_size=res,
                           patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
                           vision_use_head=False, projection_dim=H),
        text_config=dict(head_dim=256, vocab_size=rows, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                         max_position_embeddings=8192, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True, **FULL_TEXT[gen]),
        image_token_index=V, vocab_size=V, projection_dim=H, hidden_size=H,
        pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True,
    )
    cfg._attn_implementation = "eager"
    if args.full_size_from:
        log(f"loading the weights of {args.full_size_from} as PaliGemma {gen} 3B-{res} {args.full_size_dtype} ...")
        model, info = PaliGemmaForConditionalGeneration.from_pretrained(
            args.full_size_from, config=cfg, dtype=dtype, attn_implementation="eager", ignore_mismatched_sizes=True,
            output_loading_info=True)
        model.eval()
        changed = [k[0] for k in info["mismatched_keys"]] + list(info["missing_keys"]) + list(info["unexpected_keys"])
        assert all("position_embedding" in str(k) for k in changed), f"{args.full_size_from} is another model: {changed}"
    else:
        log(f"building the full-size PaliGemma {gen} 3B-{res} in bfloat16 (random init) ...")
        old = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        model = PaliGemmaForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16,
                                                               attn_implementation="eager").eval()
        torch.set_default_dtype(old)
        # same recipe as the tiny models (one float32 parameter at a time, at most ~2 GB extra)
        widen_weights(model, cfg, V, seed_for(args.seed, "full" if gen == 1 else "full/pg2"), gen)
        model = model.to(dtype)
    assert model.config.text_config._attn_implementation == "eager"
    log("saving ...")
    model.save_pretrained(out, max_shard_size="2GB")
    to_hub_vision_names(out)  # the hub's vision_tower.vision_model.* names
    shutil.copyfile(tok_path, os.path.join(out, "tokenizer.model"))
    processor = make_processor(os.path.dirname(tok_path), res, tokens)
    processor.image_processor.save_pretrained(out)
    assert processor.image_token_id == V_tok  # the tiny tokenizer's own <image> id; replaced below

    img = make_image("rgb", res, res, seed_for(args.seed, "full/image"))
    img_path = os.path.join(out, "image.png")
    save_image(img, img_path)
    image = Image.open(img_path).convert("RGB")
    inputs = processor(text="caption en", images=image, return_tensors="pt")
    ids = inputs["input_ids"].clone()
    ids[ids == V_tok] = V  # <image> is 257152 in the full-size vocabulary
    assert ids[0].tolist() == [V] * tokens + [2] + sp.encode("caption en\n")
    if args.full_size_no_reference:
        log(f"wrote {out} (no reference run)")
        return
    log(f"running the reference (eager, {args.full_size_dtype}) ...")
    out_g = model.generate(input_ids=ids, attention_mask=inputs["attention_mask"],
                           token_type_ids=inputs["token_type_ids"], pixel_values=inputs["pixel_values"].to(dtype),
                           max_new_tokens=4, do_sample=False, output_logits=True, return_dict_in_generate=True)
    gen_ids = out_g.sequences[0, ids.shape[1]:].tolist()
    write_npy(os.path.join(out, "logits_step0.npy"), out_g.logits[0][0].float().numpy())
    write_npy(os.path.join(out, "pixel_values.npy"), inputs["pixel_values"].numpy())
    write_json(os.path.join(out, "reference.json"), {
        "image": "image.png",
        "prompt": "caption en",
        "input_ids": ids[0].tolist(),
        "generated": gen_ids,
        "logits_step0": f"logits_step0.npy (float32 [{rows}], first generated token's logits)",
        "pixel_values": f"pixel_values.npy (float32 [1,3,{res},{res}])",
        "how": f"tools/reference/make_fixtures.py --full-size --full-size-gen {gen} --full-size-resolution {res} "
               f"--full-size-dtype {args.full_size_dtype} seed={args.seed}: transformers "
               f"{transformers.__version__}, torch {torch.__version__}, {args.full_size_dtype} eager, greedy 4 steps",
    })
    log(f"full-size reference: generated {gen_ids}")


if __name__ == "__main__":
    main()
