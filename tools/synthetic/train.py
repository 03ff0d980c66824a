"""Trains the project's small PaliGemma 2 on the synthetic scenes of tools/synthetic/scenes.py and writes
models/synthetic/ (hub layout: config.json, model.safetensors, tokenizer.model, ...) plus its mask decoder vae.npz.

Runs inside the Debian sid reference root (tools/reference/reference-root.sh: transformers 5.12, torch,
sentencepiece, Pillow, numpy), from the repository root:
  sudo tools/reference/reference-root.sh run -- \
      python3 tools/synthetic/train.py --out build/synthetic-112
  sudo tools/reference/reference-root.sh run -- \
      python3 tools/synthetic/train.py --out models/synthetic --resume build/synthetic-112 --image-size 140 \
      --steps 3000 --lr 5e-4 --warmup 100 --seed 7 --near-tie-share 0.4 --task-weight caption=5

Stages of the first run (all seeded; see tools/synthetic/README.md for sizes, timings and figures):
 1. SentencePiece tokenizer of the task language with <image>, <loc0000>..<loc1023>, <seg000>..<seg127>.
 2. VQ-VAE on the shapes' 64x64 mask crops: 16x16-patch encoder, big_vision's vae-oid decoder architecture with
    smaller widths, 128-entry codebook; the decoder is saved under vae-oid.npz's keys for the engine.
 3. PaliGemma 2 (SigLIP + projector + Gemma 2), prefix-LM training on a task mix (labels on the suffix only).
 4. Files, then a greedy evaluation in transformers on fresh scenes of another seed.
The second run (--resume) keeps 1, 2 and the weights, resamples the tower's position embeddings when the input grows,
and repeats the decoder part of 3, and 4, drawing more scenes whose shapes nearly share a centre column
(--near-tie-share), where captions most often come out in the wrong order.
"""
import argparse
import contextlib
import json
import math
import multiprocessing
import os
import queue
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import scenes  # noqa: E402
from evaluate import closest_gap  # noqa: E402
import torch_parts  # noqa: E402

import sentencepiece as spm  # noqa: E402
import transformers  # noqa: E402
from transformers import GemmaTokenizer, PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor  # noqa: E402
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil  # noqa: E402

transformers.logging.set_verbosity_error()

LOC_PIECES = [f"<loc{i:04d}>" for i in range(1024)]
SEG_PIECES = [f"<seg{i:03d}>" for i in range(128)]
IMAGE_ID = 4  # "<image>": the first user-defined piece, after <pad> <eos> <bos> <unk>
START = time.time()


def log(*parts):
    print(f"[{time.time() - START:7.1f}s]", *parts, flush=True)


def native_bf16():
    """Whether the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16; Linux's /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compute_precision(args):
    """The forward passes' arithmetic: bfloat16 autocast (float32 master weights) or plain float32. "auto" takes
    bfloat16 only where the CPU has bfloat16 instructions: there a training step is ~10x faster than in float32,
    while on an AVX2-only CPU torch emulates bfloat16 and the same step is ~10x slower than in float32 (both
    measured with this script's --bench; tools/synthetic/README.md)."""
    if args.precision == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return args.precision


def forward_precision(args):
    """A context for a forward pass in the run's precision (set by main from --precision)."""
    if args.precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------------------------------
# 1. Tokenizer
# ------------------------------------------------------------------------------------------------------------------
def task_sentences(seed, count):
    """Prompts and answers (loc/seg pieces stripped) of `count` scenes: the tokenizer's training text."""
    lines = []
    for i in range(count):
        rng = scenes.scene_rng(seed, i)
        for q in scenes.questions(scenes.draw_scene(rng), rng):
            lines.append(q["prompt"])
            words = " ".join(w for w in q["answer"].replace(">", "> ").split() if not w.startswith("<"))
            lines.append(words)
    for c in scenes.COLORS:
        for k in scenes.KINDS:
            lines.append(f"segment {c} {k}")
    return lines


def train_tokenizer(out_dir, seed):
    """BPE over the task language; <image>, loc and seg pieces are user-defined symbols (one id each)."""
    model = torch_parts.train_bpe_tokenizer(task_sentences(seed, 400), 1536, ["<image>"] + LOC_PIECES + SEG_PIECES,
                                            seed, hard_vocab_limit=False)
    return torch_parts.write_tokenizer(model, out_dir)


# ------------------------------------------------------------------------------------------------------------------
# 2. VQ-VAE
# ------------------------------------------------------------------------------------------------------------------
class MaskVAE(nn.Module):
    """Decoder: vae-oid.npz's architecture (torch_parts.mask_decoder), narrower. Encoder: a 16x16-patch MLP
    (scenes.MaskEncoder is its numpy twin)."""

    def __init__(self, dim, channels, upsample, hidden):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, hidden, 16, stride=16), nn.ReLU(), nn.Conv2d(hidden, dim, 1))
        self.codebook = nn.Parameter(torch.randn(scenes.CODEBOOK_SIZE, dim) * 0.5)
        self.decoder = torch_parts.mask_decoder(dim, channels, upsample)

    def quantize(self, z):  # z [B, D, 4, 4] -> codes [B, 16] (row-major grid)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        return torch.cdist(flat, self.codebook).argmin(-1).reshape(z.shape[0], 16)

    def decode(self, codes):  # codes [B, 16] -> [B, 64, 64] logit maps (> 0 = inside)
        grid = self.codebook[codes].reshape(codes.shape[0], 4, 4, -1).permute(0, 3, 1, 2)
        return self.decoder(grid)[:, 0]

    def forward(self, crops):  # crops [B, 64, 64] in [0, 1]
        z = self.encoder((2.0 * crops - 1.0)[:, None]).float()
        codes = self.quantize(z)
        q = self.codebook[codes].reshape(z.shape[0], 4, 4, -1).permute(0, 3, 1, 2)
        commitment = F.mse_loss(z, q.detach())
        codebook_loss = F.mse_loss(q, z.detach())
        q = z + (q - z).detach()  # straight-through
        return self.decoder(q)[:, 0], codebook_loss + 0.25 * commitment, codes

    @classmethod
    def from_arrays(cls, arrays, args):
        """The inverse of arrays() (a vae.npz this script wrote, with the same --vae-* sizes)."""
        vae = cls(args.vae_dim, args.vae_channels, tuple(args.vae_upsample), args.vae_hidden)
        with torch.no_grad():
            vae.codebook.copy_(torch.from_numpy(arrays["_vq_vae._embedding"]))
        for prefix, module in (("decoder.", vae.decoder), ("encoder.", vae.encoder)):
            module.load_state_dict({k[len(prefix):]: torch.from_numpy(arrays[k])
                                    for k in arrays if k.startswith(prefix)}, strict=True)
        return vae

    def arrays(self):
        out = {"_vq_vae._embedding": self.codebook.detach().numpy().astype(np.float32)}
        for name, value in self.decoder.state_dict().items():
            out["decoder." + name] = value.numpy().astype(np.float32)
        for name, value in self.encoder.state_dict().items():
            out["encoder." + name] = value.numpy().astype(np.float32)
        return out


def mask_crops(seed, count):
    crops = []
    for i in range(count):
        scene = scenes.draw_scene(scenes.scene_rng(seed, i))
        crops += [scenes.mask_crop(s["mask"], s["box"]) for s in scene["shapes"]]
    return torch.from_numpy(np.stack(crops))


def train_vae(args, seed):
    torch.manual_seed(seed)
    crops = mask_crops(seed, args.vae_scenes)
    log(f"VAE: {len(crops)} mask crops")
    vae = MaskVAE(args.vae_dim, args.vae_channels, tuple(args.vae_upsample), args.vae_hidden)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for step in range(args.vae_steps):
        batch = crops[torch.randint(len(crops), (args.vae_batch,), generator=g)]
        with forward_precision(args):
            logits, vq_loss, _ = vae(batch)
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch) + vq_loss.float()
        opt.zero_grad()
        loss.backward()
        opt.step()
        for group in opt.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * (step + 1) / args.vae_steps))
        if step % 200 == 0 or step == args.vae_steps - 1:
            log(f"VAE step {step} loss {loss.item():.4f}")
    return vae


def vae_check(vae, crops):
    """Mean IoU of (decoded map > 0) against (crop > 0.5), encoding with the numpy encoder of scenes.py."""
    encoder = scenes.MaskEncoder(vae.arrays())
    codes = torch.from_numpy(encoder.codes(2.0 * crops.numpy() - 1.0))
    with torch.no_grad():
        decoded = vae.decode(codes) > 0
    truth = crops > 0.5
    iou = (decoded & truth).sum((1, 2)).float() / (decoded | truth).sum((1, 2)).clamp(min=1).float()
    return float(iou.mean()), len(torch.unique(codes))


# ------------------------------------------------------------------------------------------------------------------
# 3. Model
# ------------------------------------------------------------------------------------------------------------------
def build_config(args, vocab):
    vision = dict(model_type="siglip_vision_model", hidden_size=args.vision_hidden,
                  intermediate_size=args.vision_mlp, num_hidden_layers=args.vision_layers,
                  num_attention_heads=args.vision_heads, num_channels=3, image_size=args.image_size,
                  patch_size=args.patch_size, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
                  vision_use_head=False, projection_dim=args.text_hidden)
    head_dim = args.text_hidden // args.text_heads
    text = dict(model_type="gemma2", hidden_size=args.text_hidden, intermediate_size=args.text_mlp,
                num_hidden_layers=args.text_layers, num_attention_heads=args.text_heads,
                num_key_value_heads=args.text_kv_heads, head_dim=head_dim, query_pre_attn_scalar=head_dim,
                vocab_size=vocab, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                max_position_embeddings=512, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                attn_logit_softcapping=50.0, final_logit_softcapping=30.0, sliding_window=512,
                pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True,
                initializer_range=args.init_std or args.text_hidden ** -0.5)
    cfg = PaliGemmaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_ID, vocab_size=vocab,
                          projection_dim=args.text_hidden, hidden_size=args.text_hidden, pad_token_id=0,
                          eos_token_id=1, bos_token_id=2, tie_word_embeddings=True)
    cfg._attn_implementation = "eager"
    return cfg


@torch.no_grad()
def smooth_loc_embeddings(model, loc0, seed):
    """Loc rows start as a random projection of sinusoidal features of the bin (periods 8..4096 bins), at the norm of
    the other rows: neighbouring bins start similar in input and (tied) output, which spares the model learning the
    bins' order from scratch."""
    emb = model.get_input_embeddings().weight
    g = torch.Generator().manual_seed(seed)
    bins = torch.arange(1024, dtype=torch.float32)[:, None]
    periods = torch.logspace(math.log10(8), math.log10(4096), 32)[None]
    features = torch.cat([torch.sin(2 * math.pi * bins / periods), torch.cos(2 * math.pi * bins / periods)], 1)
    projection = torch.randn(features.shape[1], emb.shape[1], generator=g) / math.sqrt(features.shape[1])
    rows = features @ projection
    rows *= emb.norm(dim=1).mean() / rows.norm(dim=1, keepdim=True)
    emb[loc0:loc0 + 1024] = rows


def pixels(image, size):
    """What the engine does to a PNG: Pillow bicubic resize to the square size, x / 255, (x - 0.5) / 0.5."""
    resized = np.asarray(Image.fromarray(image, "RGB").resize((size, size), Image.BICUBIC), np.float32)
    return torch.from_numpy(((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1).copy())


N_AUX_CLASSES = 1 + len(scenes.COLORS) * len(scenes.KINDS)  # background, then colour x kind


def patch_targets(scene, grid):
    """Auxiliary targets of the grid x grid image patches (the square input squashes the canvas, so patch (r, c)
    covers canvas rows [r*H/grid, (r+1)*H/grid) and columns likewise): the share of the patch each colour x kind
    covers (a distribution over N_AUX_CLASSES, background first), and the box (ymin, xmin, ymax, xmax as canvas
    fractions) of the shape covering most of it, with that shape's share as the box target's weight."""
    h, w = scene["height"], scene["width"]
    patch = ((np.arange(h) * grid) // h)[:, None] * grid + ((np.arange(w) * grid) // w)[None, :]
    area = np.bincount(patch.ravel(), minlength=grid * grid).astype(np.float32)
    shares = np.zeros((grid * grid, N_AUX_CLASSES), np.float32)
    boxes = np.zeros((grid * grid, 4), np.float32)
    box_weight = np.zeros(grid * grid, np.float32)
    for s in scene["shapes"]:
        share = np.bincount(patch[s["mask"]], minlength=grid * grid) / area
        cls = 1 + list(scenes.COLORS).index(s["color"]) * len(scenes.KINDS) + scenes.KINDS.index(s["kind"])
        shares[:, cls] = share
        x0, y0, x1, y1 = s["box"]
        better = share > box_weight
        boxes[better] = [y0 / h, x0 / w, y1 / h, x1 / w]
        box_weight[better] = share[better]
    shares[:, 0] = 1.0 - shares[:, 1:].sum(1)
    return torch.from_numpy(shares), torch.from_numpy(boxes), torch.from_numpy(box_weight)


def aux_loss(head, features, targets, box_weight_scale):
    """Soft cross-entropy of each patch's content plus the L1 error of its shape's box (weighted by the shape's
    share of the patch), from the projected image features the decoder reads. A training-only signal that teaches
    the vision tower colours, kinds and places directly; the head is not part of the saved model."""
    shares, boxes, box_weight = targets
    out = head(features.float())
    content = -(shares * F.log_softmax(out[..., :N_AUX_CLASSES], -1)).sum(-1).mean()
    box_error = (out[..., N_AUX_CLASSES:] - boxes).abs().sum(-1)
    return content + box_weight_scale * (box_error * box_weight).sum() / box_weight.sum().clamp(min=1.0)


TASK_WEIGHTS = {"caption": 3.0, "count": 1.0, "color": 0.8, "shape": 0.8, "detect": 2.5, "segment": 2.0}


def task_weight(text):
    """--task-weight TASK=W"""
    task, _, weight = text.partition("=")
    if task not in TASK_WEIGHTS:
        raise argparse.ArgumentTypeError(f"unknown task {task!r} (one of {', '.join(TASK_WEIGHTS)})")
    try:
        return task, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the weight is not a number") from None


def share(text):
    """--near-tie-share P: a probability"""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


class Prefetched:
    """Calls draw() over and over in a second process, `depth` results ahead, while this process trains on the
    current one: drawing scenes, masks and pixels is numpy/Pillow work that one training thread would otherwise
    wait for, and the machine has a second core. The results and their order are the same as calling draw() in
    line (the worker is a fork of this process and is the only one that calls it). Use it as a context manager."""

    def __init__(self, draw, depth=4):
        context = multiprocessing.get_context("fork")
        self.results = context.Queue(depth)
        self.worker = context.Process(target=self._produce, args=(draw, self.results), daemon=True)

    @staticmethod
    def _produce(draw, results):
        torch.set_num_threads(1)
        while True:
            results.put(draw())

    def __enter__(self):
        self.worker.start()
        return self

    def __exit__(self, *exc):
        self.worker.terminate()
        self.worker.join()

    def next(self):
        while True:
            try:
                return self.results.get(timeout=5)
            except queue.Empty:
                if not self.worker.is_alive():
                    raise RuntimeError(f"the batch-drawing process ended (exit code {self.worker.exitcode})")


NEAR_TIE_GAP = 0.05


def training_scene(rng, near_tie_share):
    """A fresh scene; with probability near_tie_share one redrawn until two neighbouring shapes' centres are less than
    NEAR_TIE_GAP of the width apart (about 12 % of the distribution, and most of the captions the model gets wrong:
    it orders those shapes wrong). Same scenes as draw_scene when the share is 0."""
    if near_tie_share > 0 and rng.random() < near_tie_share:
        while True:
            scene = scenes.draw_scene(rng)
            gap = closest_gap(scene)
            if gap is not None and gap < NEAR_TIE_GAP:
                return scene
    return scenes.draw_scene(rng)


class Batches:
    """Training batches: --images-per-batch fresh scenes, --questions-per-image of each one's questions drawn by
    task weight (detection and segmentation oversampled); scene i of the run is scenes.scene_rng(seed, i). The
    per-patch targets (the last but one field) are None when `with_patch_targets` is off: a resumed model has no head
    to use them."""

    def __init__(self, sp, encoder, args, seed, with_patch_targets=True):
        self.sp, self.encoder, self.args, self.seed = sp, encoder, args, seed
        self.with_patch_targets = with_patch_targets
        self.task_weights = dict(TASK_WEIGHTS, **args.task_weight)
        self.next_scene = 0
        self.n_image_tokens = (args.image_size // args.patch_size) ** 2
        self.bos, self.eos = sp.piece_to_id("<bos>"), sp.piece_to_id("<eos>")

    def prefix_ids(self, prompt):
        return [IMAGE_ID] * self.n_image_tokens + [self.bos] + self.sp.encode(prompt + "\n")

    def next(self):
        args = self.args
        images, sequences, targets, tasks = [], [], [], []
        grid = args.image_size // args.patch_size
        for _ in range(args.images_per_batch):
            rng = scenes.scene_rng(self.seed, self.next_scene)
            self.next_scene += 1
            scene = training_scene(rng, args.near_tie_share)
            qs = scenes.questions(scene, rng, self.encoder)
            weights = np.array([self.task_weights[q["task"]] for q in qs])
            pick = rng.choice(len(qs), size=min(args.questions_per_image, len(qs)), replace=False,
                              p=weights / weights.sum())
            images.append(pixels(scene["image"], args.image_size))
            if self.with_patch_targets:
                targets.append(patch_targets(scene, grid))
            for i in pick:
                prefix = self.prefix_ids(qs[int(i)]["prompt"])
                suffix = self.sp.encode(qs[int(i)]["answer"]) + [self.eos]
                sequences.append((len(images) - 1, prefix, suffix))
                tasks.append(qs[int(i)]["task"])
        length = max(len(p) + len(s) for _, p, s in sequences)
        n = len(sequences)
        ids = torch.zeros(n, length, dtype=torch.long)
        types = torch.ones(n, length, dtype=torch.long)
        attention = torch.zeros(n, length, dtype=torch.long)
        labels = torch.full((n, length), -100, dtype=torch.long)
        image_index = torch.tensor([s[0] for s in sequences])
        for row, (_, prefix, suffix) in enumerate(sequences):
            seq = prefix + suffix
            ids[row, :len(seq)] = torch.tensor(seq)
            types[row, :len(prefix)] = 0
            attention[row, :len(seq)] = 1
            # labels[t] is the token predicted at position t (the next one)
            labels[row, len(prefix) - 1:len(seq) - 1] = torch.tensor(suffix)
        aux = tuple(torch.stack(parts) for parts in zip(*targets)) if self.with_patch_targets else None
        return torch.stack(images), image_index, ids, types, attention, labels, aux, tasks


@torch.no_grad()
def match_image_scale(model, batches):
    """Rescales the projector so that image rows start at the root-mean-square size of the text rows they sit
    beside (the projected features are divided by sqrt(hidden) in get_image_features, the text embeddings
    multiplied by it, so their sizes depend on the widths and initialisations; with the defaults the factor is
    about 0.65). Returns the factor."""
    pixel_values, _, ids, *_ = batches.next()
    image = model.model.get_image_features(pixel_values).pooler_output
    text = model.get_input_embeddings()(ids[ids != model.config.image_token_id])
    ratio = float(text.pow(2).mean().sqrt() / image.pow(2).mean().sqrt())
    projector = model.model.multi_modal_projector.linear
    projector.weight.mul_(ratio)
    projector.bias.mul_(ratio)
    return ratio


def embed(model, pixel_values, image_index, ids, image_features=None):
    """Input embeddings with each sequence's image features (computed once per image) in the <image> slots, as
    PaliGemmaModel.forward builds them: text rows scaled by sqrt(H) inside the embedding, image rows not."""
    if image_features is None:
        image_features = model.model.get_image_features(pixel_values).pooler_output
    features = image_features[image_index]
    text_ids = ids.masked_fill(ids == model.config.image_token_id, 0)
    embeds = model.get_input_embeddings()(text_ids)
    slots = (ids == model.config.image_token_id).unsqueeze(-1)
    return embeds.masked_scatter(slots, features.to(embeds.dtype))


def loss_fn(model, hidden, labels, loc0, sigma, caption_rows):
    """Cross-entropy on the suffix (logits of the tied head with Gemma 2's final soft-cap, computed only where there
    is a label); a loc target is a Gaussian over the loc bins (sigma in bins) instead of one bin, so near misses
    cost less than far ones. Also returns progress figures: non-loc token accuracy, mean loc error in bins, and the
    share of caption rows (a bool per row) whose every token is the arg-max (teacher-forced)."""
    keep = labels != -100
    logits = F.linear(hidden[keep], model.get_input_embeddings().weight)
    cap = model.config.text_config.final_logit_softcapping
    logp = F.log_softmax(torch.tanh(logits / cap) * cap, -1)
    target = labels[keep]
    is_loc = (target >= loc0) & (target < loc0 + 1024)
    hard = -logp[~is_loc].gather(1, target[~is_loc, None]).squeeze(1)
    bins = torch.arange(1024, dtype=torch.float32)
    centre = (target[is_loc] - loc0).float()[:, None]
    soft = torch.exp(-0.5 * ((bins[None] - centre) / sigma) ** 2)
    soft = soft / soft.sum(1, keepdim=True)
    soft_loss = -(soft * logp[is_loc][:, loc0:loc0 + 1024]).sum(1)
    with torch.no_grad():  # progress figures the loss hides (a loc target's soft cross-entropy floor is ~3.2)
        best = logp.argmax(-1)
        wrong_per_row = torch.zeros(len(labels)).index_add_(0, keep.nonzero()[:, 0], (best != target).float())
        captions_right = (wrong_per_row[caption_rows] == 0).float()
        progress = ((best[~is_loc] == target[~is_loc]).float().mean().item(),
                    (best[is_loc] - target[is_loc]).abs().float().mean().item(),
                    captions_right.mean().item() if len(captions_right) else float("nan"))
    return torch.cat([hard, soft_loss]).mean(), progress


class VisionBatches:
    """The vision pre-training's batches: `vision_images` fresh scenes' pixels and per-patch targets; scene numbers
    far above the decoder stage's, so the two stages see different scenes."""

    def __init__(self, args, seed):
        self.args, self.seed, self.next_scene = args, seed, 0

    def next(self):
        grid = self.args.image_size // self.args.patch_size
        images, targets = [], []
        for _ in range(self.args.vision_images):
            scene = scenes.draw_scene(scenes.scene_rng(self.seed, 10_000_000 + self.next_scene))
            self.next_scene += 1
            images.append(pixels(scene["image"], self.args.image_size))
            targets.append(patch_targets(scene, grid))
        return torch.stack(images), tuple(torch.stack(parts) for parts in zip(*targets))


def pretrain_vision(model, head, args, seed):
    """The vision tower and projector alone on the per-patch loss, with many images per step (the tower is cheap
    next to the decoder): from scratch, the decoder's loss alone teaches the tower little in the time we have."""
    if args.vision_steps <= 0:
        return
    tower = [model.model.vision_tower, model.model.multi_modal_projector, head]
    params = [p for m in tower for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    window = []
    with Prefetched(VisionBatches(args, seed).next) as batches:
        for step in range(args.vision_steps):
            warm = min(1.0, (step + 1) / args.warmup)
            for group in opt.param_groups:
                group["lr"] = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.vision_steps)))
            images, targets = batches.next()
            with forward_precision(args):
                features = model.model.get_image_features(images).pooler_output
            loss = aux_loss(head, features, targets, args.aux_box_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            window.append(loss.item())
            if (step + 1) % args.log_every == 0 or step == 0:
                log(f"vision step {step + 1}/{args.vision_steps} patch loss {np.mean(window):.4f}")
                window = []


def new_model(args, sp, encoder, seed):
    """A freshly initialised model whose tower and projector are pre-trained on the per-patch loss; returns the
    model and the training-only per-patch head."""
    torch.manual_seed(seed)
    vocab = sp.get_piece_size()
    model = PaliGemmaForConditionalGeneration(build_config(args, vocab))
    smooth_loc_embeddings(model, sp.piece_to_id("<loc0000>"), seed)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters, vocab {vocab}")
    log(f"projector scaled by {match_image_scale(model, Batches(sp, encoder, args, seed + 1)):.2f}")
    head = nn.Sequential(nn.LayerNorm(args.text_hidden), nn.Linear(args.text_hidden, N_AUX_CLASSES + 4))
    pretrain_vision(model, head, args, seed)
    return model, head


def resampled_position_embeddings(table, grid):
    """A tower's learnt position embeddings [old_grid**2, D] resized bicubically to grid x grid (what big_vision's
    resample_posemb does when PaliGemma moves from 224 to 448 px)."""
    old_grid = math.isqrt(table.shape[0])
    square = table.reshape(1, old_grid, old_grid, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)
    return resized.permute(0, 2, 3, 1).reshape(grid * grid, -1)


def resumed_model(args, sp, directory):
    """The model in `directory` (this script's output) rebuilt at --image-size: every weight kept, the position
    embeddings resampled to the new patch grid. The architecture flags must describe the saved model (a mismatch
    fails the strict load)."""
    saved = PaliGemmaForConditionalGeneration.from_pretrained(directory, attn_implementation="eager")
    state = saved.state_dict()
    key = "model.vision_tower.embeddings.position_embedding.weight"
    grid = args.image_size // args.patch_size
    if state[key].shape[0] != grid * grid:
        log(f"position embeddings resampled from {math.isqrt(state[key].shape[0])}^2 to {grid}^2 patches")
        state[key] = resampled_position_embeddings(state[key], grid)
    model = PaliGemmaForConditionalGeneration(build_config(args, sp.get_piece_size()))
    model.load_state_dict(state, strict=True)
    model.train()
    return model


def train_decoder(model, head, args, sp, encoder, seed):
    """The decoder stage: the whole model on the task mix, plus the per-patch loss through `head` when there is one
    (a resumed model has none: the head is not saved)."""
    loc0 = sp.piece_to_id("<loc0000>")
    heads = (head,) if head is not None else ()
    params = list(model.named_parameters()) + [named for h in heads for named in h.named_parameters()]
    # The pre-trained tower moves slower than the decoder (lr_scale), so the decoder's early, noisy gradients
    # do not undo what the per-patch loss taught it.
    tower = {id(p) for m in (model.model.vision_tower, model.model.multi_modal_projector, *heads)
             for p in m.parameters()}
    tower_trained = args.vision_steps > 0 or args.resume is not None
    groups = [{"params": [p for n, p in params if (p.dim() >= 2) == matrix and (id(p) in tower) == in_tower],
               "weight_decay": 0.01 if matrix else 0.0,
               "lr_scale": args.vision_lr_scale if in_tower and tower_trained else 1.0}
              for matrix in (True, False) for in_tower in (True, False)]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98))
    window = []
    with Prefetched(Batches(sp, encoder, args, seed, with_patch_targets=head is not None).next) as batches:
        for step in range(args.steps):
            warm = min(1.0, (step + 1) / args.warmup)
            progress = max(0.0, (step - args.warmup) / max(1, args.steps - args.warmup))
            lr = args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
            for group in opt.param_groups:
                group["lr"] = lr * group["lr_scale"]
            pixel_values, image_index, ids, types, attention, labels, aux_targets, tasks = batches.next()
            # In bfloat16 (--precision) the tied output head and the loss stay in float32, so neighbouring loc bins
            # stay distinct.
            with forward_precision(args):
                features = model.model.get_image_features(pixel_values).pooler_output
                hidden = model.model(inputs_embeds=embed(model, None, image_index, ids, features),
                                     attention_mask=attention, token_type_ids=types).last_hidden_state
            lm_loss, (token_accuracy, loc_error, captions_right) = loss_fn(
                model, hidden.float(), labels, loc0, args.loc_sigma, torch.tensor([t == "caption" for t in tasks]))
            patch_loss = (aux_loss(head, features, aux_targets, args.aux_box_weight) if head is not None
                          else torch.zeros(()))
            loss = lm_loss + args.aux_weight * patch_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
            opt.step()
            window.append((lm_loss.item(), patch_loss.item(), token_accuracy, loc_error, captions_right))
            if (step + 1) % args.log_every == 0 or step == 0:
                lm, patch, accuracy, error, caption = np.nanmean(window, 0)
                log(f"step {step + 1}/{args.steps} loss {lm:.4f} patch loss {patch:.4f} non-loc token accuracy "
                    f"{accuracy:.3f} loc error {error:.1f} bins captions right {caption:.3f} lr {lr:.2e}")
                window = []
    model.eval()
    return model


# ------------------------------------------------------------------------------------------------------------------
# 4. Files
# ------------------------------------------------------------------------------------------------------------------
def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def save_model(model, tok_path, out_dir, image_size, n_image_tokens):
    model.save_pretrained(out_dir)
    processor = PaliGemmaProcessor(
        image_processor=SiglipImageProcessorPil(
            do_resize=True, size={"height": image_size, "width": image_size}, resample=3, do_rescale=True,
            rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3,
            image_seq_length=n_image_tokens),
        # mask_token=None: GemmaTokenizer would otherwise add a "<mask>" piece the model does not have
        tokenizer=GemmaTokenizer(vocab_file=tok_path, mask_token=None))
    processor.save_pretrained(out_dir)
    for f in ("tokenizer.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json"):
        if os.path.exists(os.path.join(out_dir, f)):
            os.remove(os.path.join(out_dir, f))
    shutil.copyfile(tok_path, os.path.join(out_dir, "tokenizer.model"))
    tc_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(tc_path, encoding="utf-8") as f:
        tc = json.load(f)
    for k in ("vocab_file", "is_local", "local_files_only", "name_or_path"):
        tc.pop(k, None)
    tc["add_bos_token"] = False
    tc["add_eos_token"] = False
    write_json(tc_path, tc)
    cfg_path = os.path.join(out_dir, "config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.pop("_name_or_path", None)
    write_json(cfg_path, cfg)


# ------------------------------------------------------------------------------------------------------------------
# 5. Evaluation in transformers (greedy)
# ------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def greedy(model, sp, batches, pixel_values, image_index, prefixes, max_new):
    """Greedy continuations of same-length prefixes with the KV cache; stops at <eos> (returned without it)."""
    ids = torch.tensor(prefixes)
    types = torch.zeros_like(ids)
    out = model(inputs_embeds=embed(model, pixel_values, image_index, ids), token_type_ids=types, use_cache=True)
    cache = out.past_key_values
    next_ids = out.logits[:, -1].argmax(-1)
    tokens = [[] for _ in prefixes]
    done = torch.zeros(len(prefixes), dtype=torch.bool)
    for _ in range(max_new):
        for row, t in enumerate(next_ids.tolist()):
            if not done[row]:
                if t == batches.eos:
                    done[row] = True
                else:
                    tokens[row].append(t)
        if bool(done.all()):
            break
        out = model(input_ids=next_ids[:, None], past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        next_ids = out.logits[:, -1].argmax(-1)
    return [sp.decode(t) for t in tokens]


def parse_objects(text, width, height):
    objects = []
    for part in text.split(" ; "):
        locs = []
        rest = part
        while rest.startswith("<loc") and len(rest) >= 9:
            locs.append(int(rest[4:8]))
            rest = rest[9:]
        segs = []
        while rest.startswith("<seg") and len(rest) >= 8:
            segs.append(int(rest[4:7]))
            rest = rest[8:]
        if len(locs) == 4:
            y0, x0, y1, x1 = locs
            box = [round(x0 / 1024 * width), round(y0 / 1024 * height), round(x1 / 1024 * width),
                   round(y1 / 1024 * height)]
            objects.append({"box": box, "codes": segs if len(segs) == 16 else None, "label": rest.strip()})
    return objects


def box_iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def paste(vae, codes, box, width, height):
    """big_vision's evaluator: decoded 64x64 map, Pillow bilinear (mode F) to the box, > 0, pasted."""
    mask = np.zeros((height, width), bool)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return mask
    with torch.no_grad():
        m = vae.decode(torch.tensor([codes]))[0].numpy()
    resized = np.asarray(Image.fromarray(m, mode="F").resize((x1 - x0, y1 - y0), Image.BILINEAR))
    mask[y0:y1, x0:x1] = resized > 0
    return mask


def evaluate(model, sp, vae, encoder, args, seed, count):
    batches = Batches(sp, encoder, args, seed)
    stats = {t: [0, 0] for t in ("caption", "count", "color", "shape")}
    det = {"tp": 0, "pred": 0, "truth": 0}
    seg_ious = []
    examples = []
    for i in range(count):
        rng = scenes.scene_rng(seed, i)
        scene = scenes.draw_scene(rng)
        qs = scenes.questions(scene, rng, encoder)
        pv = pixels(scene["image"], args.image_size)[None]
        groups = {}
        for q in qs:
            groups.setdefault(len(batches.prefix_ids(q["prompt"])), []).append(q)
        for group in groups.values():
            answers = greedy(model, sp, batches, pv, torch.zeros(len(group), dtype=torch.long),
                             [batches.prefix_ids(q["prompt"]) for q in group], 72)
            for q, answer in zip(group, answers):
                if len(examples) < 12 and answer != q["answer"]:
                    examples.append((q["prompt"], q["answer"], answer))
                if q["task"] in stats:
                    stats[q["task"]][0] += answer == q["answer"]
                    stats[q["task"]][1] += 1
                    continue
                predicted = parse_objects(answer, scene["width"], scene["height"])
                truth = q["objects"]
                if q["task"] == "detect":
                    used = set()
                    for p in predicted:
                        best = max(((box_iou(p["box"], t["box"]), j) for j, t in enumerate(truth) if j not in used),
                                   default=(0.0, -1))
                        if best[0] >= 0.5:
                            used.add(best[1])
                            det["tp"] += 1
                    det["pred"] += len(predicted)
                    det["truth"] += len(truth)
                else:
                    t = truth[0]
                    p = predicted[0] if predicted else None
                    if p is None or p["codes"] is None:
                        seg_ious.append(0.0)
                        continue
                    m = paste(vae, p["codes"], p["box"], scene["width"], scene["height"])
                    inter = (m & t["mask"]).sum()
                    union = (m | t["mask"]).sum()
                    seg_ious.append(float(inter / union) if union else 0.0)
    figures = {t: s[0] / max(1, s[1]) for t, s in stats.items()}
    figures["detect_precision"] = det["tp"] / max(1, det["pred"])
    figures["detect_recall"] = det["tp"] / max(1, det["truth"])
    figures["segment_miou"] = float(np.mean(seg_ious)) if seg_ious else 0.0
    return figures, examples


def remove_folders(*paths):
    """Deletes each folder that exists, with its contents (the run's scratch folders and the output it replaces)."""
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="model directory to write (e.g. models/synthetic)")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=("auto", "bfloat16", "float32"), default="auto",
                    help="forward passes in bfloat16 autocast or float32 (auto: bfloat16 where the CPU has "
                         "bfloat16 instructions)")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--images-per-batch", type=int, default=16)
    ap.add_argument("--questions-per-image", type=int, default=2)
    ap.add_argument("--task-weight", type=task_weight, action="append", default=[], metavar="TASK=W",
                    help="draw weight of a task's questions (repeatable), replacing TASK_WEIGHTS' value")
    ap.add_argument("--aux-weight", type=float, default=1.0,
                    help="weight of the training-only per-patch content/box loss on the image features (0: off)")
    ap.add_argument("--vision-steps", type=int, default=2000, help="steps of the tower alone on the per-patch loss")
    ap.add_argument("--vision-images", type=int, default=32, help="images per vision pre-training step")
    ap.add_argument("--init-std", type=float, default=0.0,
                    help="standard deviation of the decoder's initial weights (0: 1/sqrt(text hidden); "
                         "transformers' 0.02 suits Gemma's 2304-wide layers, not 128-wide ones)")
    ap.add_argument("--aux-box-weight", type=float, default=0.5,
                    help="weight of the per-patch box error next to the per-patch content loss")
    ap.add_argument("--vision-lr-scale", type=float, default=0.3,
                    help="learning-rate factor of the pre-trained tower during the decoder stage")
    ap.add_argument("--near-tie-share", type=share, default=0.0,
                    help=f"share (0 to 1) of training scenes redrawn until two shapes' centres are less than "
                         f"{NEAR_TIE_GAP * 100:g} %% of the width apart")
    ap.add_argument("--loc-sigma", type=float, default=1.0, help="width of the loc targets, in bins")
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--patch-size", type=int, default=14)
    ap.add_argument("--vision-hidden", type=int, default=128)
    ap.add_argument("--vision-mlp", type=int, default=512)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--vision-heads", type=int, default=4)
    ap.add_argument("--text-hidden", type=int, default=128)
    ap.add_argument("--text-mlp", type=int, default=512)
    ap.add_argument("--text-layers", type=int, default=6)
    ap.add_argument("--text-heads", type=int, default=4)
    ap.add_argument("--text-kv-heads", type=int, default=2)
    ap.add_argument("--vae-scenes", type=int, default=3000)
    ap.add_argument("--vae-steps", type=int, default=500)
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--vae-dim", type=int, default=16)
    ap.add_argument("--vae-channels", type=int, default=32)
    ap.add_argument("--vae-upsample", type=int, nargs=4, default=[32, 16, 16, 8])
    ap.add_argument("--vae-hidden", type=int, default=64)
    ap.add_argument("--eval-scenes", type=int, default=100)
    ap.add_argument("--eval-seed", type=int, default=1006)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--bench", action="store_true", help="time 5 training steps and stop (no files)")
    ap.add_argument("--resume", metavar="DIR",
                    help="continue training the model DIR wrote (its tokenizer and VAE kept, no vision pre-training), "
                         "at --image-size (position embeddings resampled), e.g. PaliGemma's resolution increase")
    args = ap.parse_args()
    args.task_weight = dict(args.task_weight)
    torch.set_num_threads(args.threads)
    args.precision = compute_precision(args)
    log(f"forward passes in {args.precision}")
    torch.manual_seed(args.seed)

    tmp = args.out.rstrip("/") + ".tmp"
    tok_dir = tmp + "-tokenizer"
    remove_folders(tmp, tok_dir)  # left by an interrupted run
    os.makedirs(tmp)
    if args.resume:
        tok_path = os.path.join(tok_dir, "tokenizer.model")
        os.makedirs(os.path.dirname(tok_path))
        shutil.copyfile(os.path.join(args.resume, "tokenizer.model"), tok_path)
    else:
        tok_path = train_tokenizer(tok_dir, args.seed)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    assert sp.piece_to_id("<image>") == IMAGE_ID, f"the config's image_token_index assumes <image> is {IMAGE_ID}"
    log(f"tokenizer: {sp.get_piece_size()} pieces, <loc0000>={sp.piece_to_id('<loc0000>')}, "
        f"<seg000>={sp.piece_to_id('<seg000>')}")

    if args.resume:
        shutil.copyfile(os.path.join(args.resume, "vae.npz"), os.path.join(tmp, "vae.npz"))
        with np.load(os.path.join(tmp, "vae.npz")) as arrays:
            vae = MaskVAE.from_arrays(arrays, args)
    else:
        vae = train_vae(args, args.seed)
        np.savez_compressed(os.path.join(tmp, "vae.npz"), **vae.arrays())
    crops = mask_crops(args.eval_seed, 300)
    iou, used = vae_check(vae, crops)
    log(f"VAE: reconstruction mIoU {iou:.4f} on {len(crops)} fresh crops, {used} codes used")
    encoder = scenes.MaskEncoder.load(os.path.join(tmp, "vae.npz"))

    if args.bench:
        args.steps = 5
        args.log_every = 1
    if args.resume:
        model, head = resumed_model(args, sp, args.resume), None
        log(f"resumed {args.resume} at {args.image_size} px")
    else:
        model, head = new_model(args, sp, encoder, args.seed)
    train_decoder(model, head, args, sp, encoder, args.seed)
    if args.bench:
        remove_folders(tmp, tok_dir)
        return
    save_model(model, tok_path, tmp, args.image_size, (args.image_size // args.patch_size) ** 2)
    remove_folders(args.out)
    os.rename(tmp, args.out)
    remove_folders(tok_dir)
    log(f"wrote {args.out}: " + ", ".join(f"{f} {os.path.getsize(os.path.join(args.out, f)) / 1e6:.2f} MB"
                                           for f in sorted(os.listdir(args.out))))
    loaded = PaliGemmaForConditionalGeneration.from_pretrained(args.out, attn_implementation="eager").eval()
    figures, examples = evaluate(loaded, sp, vae, encoder, args, args.eval_seed, args.eval_scenes)
    log(f"transformers greedy on {args.eval_scenes} fresh scenes (seed {args.eval_seed}): " +
        json.dumps({k: round(v, 4) for k, v in figures.items()}))
    for prompt, expected, got in examples:
        log(f"  {prompt!r}: expected {expected!r}, got {got[:160]!r}")


if __name__ == "__main__":
    main()
