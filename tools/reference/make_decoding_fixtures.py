"""Writes tests/fixtures/decoding/: transformers' beam search on the committed tiny float32 fixture models.

Runs INSIDE the Debian sid reference root of tools/reference/reference-root.sh (transformers 5.x, torch, Pillow,
numpy), from the repository root:

    sudo tools/reference/reference-root.sh run -- \
        python3 tools/reference/make_decoding_fixtures.py

It reads tests/fixtures/models/{pg1_f32,pg2_f32} (never writes them), draws its own small images, and records for
every case the sequence and score `PaliGemmaForConditionalGeneration.generate(num_beams=K, do_sample=False,
output_scores=True, return_dict_in_generate=True)` returns (eager attention, float32, the generation defaults:
length_penalty 1.0 unless the case says otherwise, early_stopping False, num_return_sequences 1).

Cases with a made-up `eos_token_id` (a token the model does produce) make hypotheses finish at different lengths,
so the finished-hypothesis bookkeeping, the length penalty and transformers' stop heuristic are all exercised;
the real `<eos>` is never produced by these random models. PaliGemma 2 cases are recorded twice: as transformers
computes them (no final logit soft-cap) and with the config's soft-cap applied to the lm_head output by a forward
hook (what the engine does by default).
"""

import json
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from transformers import GemmaTokenizer, PaliGemmaForConditionalGeneration, PaliGemmaProcessor  # noqa: E402
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil  # noqa: E402

transformers.logging.set_verbosity_error()

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
OUT = os.path.join(ROOT, "tests", "fixtures", "decoding")
MAX_NEW = 10


def draw_image(path, w, h, seed):
    """A few random filled shapes on a random background, saved as PNG (lossless, so pixels are exact)."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        x1, y1 = x0 + int(rng.integers(6, w // 2)), y0 + int(rng.integers(6, h // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (d.ellipse if rng.integers(0, 2) else d.rectangle)([x0, y0, x1, y1], fill=colour)
    img.save(path, optimize=True)


def make_processor(model_dir, config):
    """The processor the hub files describe (as tests/fixtures/README.md documents for the parity cases)."""
    with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
        pre = json.load(f)
    size = config.vision_config.image_size
    image_processor = SiglipImageProcessorPil(
        do_resize=True, size={"height": size, "width": size}, resample=3, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True, image_mean=pre["image_mean"], image_std=pre["image_std"],
        image_seq_length=config.text_config.num_image_tokens)
    # mask_token=None: GemmaTokenizer would otherwise add a "<mask>" piece the SentencePiece model lacks.
    tokenizer = GemmaTokenizer.from_pretrained(model_dir, mask_token=None)
    return PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)


def expand_images_per_sequence(model):
    """generate(num_beams=K) expands every input tensor with repeat_interleave(K, dim=0)
    (GenerationMixin._expand_inputs_for_generation). pixel_values is [images, 3, S, S], so with several images per
    prompt the K beams of [a, c] get [a, a], [a, c], [c, c] (transformers 5.12 bug): here every beam gets all the
    prompt's images, as the engine computes it."""
    original = model._expand_inputs_for_generation

    def expand(expand_size=1, is_encoder_decoder=False, input_ids=None, **kwargs):
        pixel_values = kwargs.pop("pixel_values", None)
        input_ids, kwargs = original(expand_size=expand_size, is_encoder_decoder=is_encoder_decoder,
                                     input_ids=input_ids, **kwargs)
        if pixel_values is not None:
            kwargs["pixel_values"] = pixel_values.repeat(expand_size, 1, 1, 1)  # one prompt: [a, c, a, c, ...]
        return input_ids, kwargs

    model._expand_inputs_for_generation = expand
    return original


@torch.no_grad()
def run(model, processor, images, prompt, **generate_kwargs):
    pil = [Image.open(os.path.join(OUT, p)).convert("RGB") for p in images]
    inputs = processor(text=prompt, images=pil[0] if len(pil) == 1 else [pil], return_tensors="pt")
    inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids", "pixel_values")}
    out = model.generate(**inputs, max_new_tokens=MAX_NEW, output_scores=True, output_logits=True,
                         return_dict_in_generate=True, **generate_kwargs)
    n = inputs["input_ids"].shape[1]
    score = None if out.get("sequences_scores") is None else float(out.sequences_scores[0])
    return inputs["input_ids"][0].tolist(), out.sequences[0, n:].tolist(), score, out.logits[0][0]


def main():
    os.makedirs(OUT, exist_ok=True)
    image_specs = [("shapes_a.png", 48, 40, 11), ("shapes_b.png", 37, 53, 12), ("shapes_c.png", 60, 30, 13)]
    for name, w, h, seed in image_specs:
        draw_image(os.path.join(OUT, name), w, h, seed)

    # (model, images, prompt, beams, length_penalty, eos choice): eos None = the model's <eos> (1);
    # ("greedy", i) = the i-th token greedy decoding produces; ("greedy+", i, j) = two eos ids; ("rank", r) = the
    # token ranked r (0 = best) at the first step: ranked below K, its one-token hypothesis may not be kept.
    plan = [
        ("pg1_f32", ["shapes_a.png"], "caption en", 2, 1.0, None),
        ("pg1_f32", ["shapes_b.png"], "answer en what is this?", 3, 1.0, None),
        ("pg1_f32", ["shapes_a.png"], "caption en", 2, 1.0, ("greedy", 2)),
        ("pg1_f32", ["shapes_c.png"], "detect cat ; dog", 3, 1.0, ("greedy", 1)),
        ("pg1_f32", ["shapes_c.png"], "detect cat ; dog", 3, 0.0, ("greedy", 1)),
        ("pg1_f32", ["shapes_b.png"], "answer en what is this?", 3, 2.5, ("greedy", 3)),
        ("pg1_f32", ["shapes_a.png"], "caption en", 3, 1.0, ("greedy", 5)),
        ("pg1_f32", ["shapes_b.png"], "caption en", 4, 2.0, ("greedy", 6)),
        ("pg1_f32", ["shapes_a.png"], "caption en", 2, 0.0, ("rank", 2)),
        ("pg2_f32", ["shapes_b.png"], "caption en", 2, 1.0, None),
        ("pg2_f32", ["shapes_a.png", "shapes_c.png"], "answer en which one has more shapes", 3, 1.0, None),
        ("pg2_f32", ["shapes_c.png"], "caption en", 2, 1.0, ("greedy", 2)),
        ("pg2_f32", ["shapes_a.png"], "detect cat", 3, 1.0, ("greedy", 1)),
        ("pg2_f32", ["shapes_b.png"], "caption es", 3, -0.5, ("greedy+", 1, 4)),
        ("pg2_f32", ["shapes_c.png"], "answer en what is this?", 3, 1.0, ("greedy", 5)),
        ("pg2_f32", ["shapes_a.png"], "caption en", 4, 1.5, ("greedy+", 4, 7)),
        ("pg2_f32", ["shapes_a.png"], "caption en", 3, -1.0, ("rank", 4)),
    ]
    cases = []
    for model_name, images, prompt, beams, length_penalty, eos_choice in plan:
        model_dir = os.path.join(MODELS, model_name)
        model = PaliGemmaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32,
                                                                  attn_implementation="eager").eval()
        assert model.config.text_config._attn_implementation == "eager"
        processor = make_processor(model_dir, model.config)
        cap = getattr(model.config.text_config, "final_logit_softcapping", None)
        for softcap in ([False, True] if cap else [False]):
            hook = None
            if softcap:
                hook = model.lm_head.register_forward_hook(lambda mod, inp, out: cap * torch.tanh(out / cap))
            ids, greedy, _, first_logits = run(model, processor, images, prompt, do_sample=False)
            if eos_choice is None:
                eos = [model.generation_config.eos_token_id]
            elif eos_choice[0] == "rank":
                eos = [int(first_logits.argsort(descending=True)[eos_choice[1]])]
            else:
                eos = [greedy[i] for i in eos_choice[1:]]
            steps = []  # one lm_head call per decoding step: shows where the stop heuristic ended the search
            counter = model.lm_head.register_forward_hook(lambda mod, inp, out: steps.append(1))
            beam_kwargs = dict(do_sample=False, num_beams=beams, length_penalty=length_penalty, eos_token_id=eos)
            if len(images) > 1:
                # The diagnosis of expand_images_per_sequence: unpatched, transformers searches over images [a, a].
                _, buggy, _, _ = run(model, processor, images, prompt, **beam_kwargs)
                original = expand_images_per_sequence(model)
                _, first_twice, _, _ = run(model, processor, [images[0]] * len(images), prompt, **beam_kwargs)
                assert buggy == first_twice, (buggy, first_twice)
                steps.clear()
            _, seq, score, _ = run(model, processor, images, prompt, **beam_kwargs)
            if len(images) > 1:
                model._expand_inputs_for_generation = original
            counter.remove()
            if hook:
                hook.remove()
            cases.append({
                "model": model_name, "images": images, "prompt": prompt, "input_ids": ids,
                "final_softcap": softcap, "num_beams": beams, "length_penalty": length_penalty,
                "eos_token_id": eos, "max_new_tokens": MAX_NEW, "greedy": greedy, "sequence": seq,
                "sequence_score": score, "steps": len(steps),
            })
            print(f"{model_name} softcap={softcap} K={beams} lp={length_penalty} eos={eos}: {len(seq)} tokens, "
                  f"{len(steps)} steps, score {score:.6f}, differs from greedy: {seq != greedy[:len(seq)]}", file=sys.stderr)

    # The cases must exercise what they are meant to: early finishes, beams that beat greedy.
    assert any(len(c["sequence"]) < MAX_NEW for c in cases), "no case finished before max_new_tokens"
    assert any(len(c["sequence"]) < c["steps"] < MAX_NEW for c in cases), "the stop heuristic never ended a search"
    assert any(c["sequence"] != c["greedy"][:len(c["sequence"])] for c in cases), "beam search == greedy everywhere"
    with open(os.path.join(OUT, "beam_cases.json"), "w") as f:
        json.dump({"how": f"tools/reference/make_decoding_fixtures.py: transformers {transformers.__version__}, "
                          f"torch {torch.__version__}, float32, eager attention, generate(num_beams=K, "
                          f"do_sample=False, max_new_tokens={MAX_NEW}, length_penalty, eos_token_id, "
                          f"output_scores=True, return_dict_in_generate=True)",
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
