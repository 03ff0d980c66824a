"""Pieces the reference-root scripts share (make_fixtures.py, make_vae_fixtures.py, synthetic/train.py), so that
the fixtures' tokenizer and mask decoder and the shipped model's are built the same way.
Needs sentencepiece and torch (the Debian sid reference root, tools/reference/reference-root.sh)."""
import io
import os

import sentencepiece as spm
from torch import nn


def train_bpe_tokenizer(sentences, vocab_size, user_defined_symbols, seed, hard_vocab_limit=True):
    """A SentencePiece BPE model (serialized bytes) with Gemma's special ids (<pad> 0, <eos> 1, <bos> 2, <unk> 3),
    the given user-defined pieces next (one id each), byte fallback so any text still encodes, split digits and
    no normalization, as Gemma's tokenizer."""
    options = dict(
        model_type="bpe",
        vocab_size=vocab_size,
        user_defined_symbols=user_defined_symbols,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=False,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    # Only when off: the model file records every option given, so an explicit default would change its bytes.
    if not hard_vocab_limit:
        options["hard_vocab_limit"] = False
    spm.set_random_generator_seed(seed)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf, **options)
    return buf.getvalue()


def write_tokenizer(model, out_dir):
    """Writes train_bpe_tokenizer's bytes as out_dir/tokenizer.model (creating out_dir); returns the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(model)
    return path


class ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        return x + self.net(x)


def mask_decoder(codebook_dim, channels, upsample_channels):
    """big_vision's vae-oid mask decoder (big_vision/evaluators/proj/paligemma/transfers/segmentation.py): 1x1
    conv, two residual blocks, four ConvTranspose(4, stride 2, padding 1) upsamplings, 1x1 conv to one logit map.
    As a module named `decoder`, its indices give vae-oid.npz's state_dict names (decoder.0, decoder.2.net.0, ...)."""
    layers = [nn.Conv2d(codebook_dim, channels, 1), nn.ReLU(), ResBlock(channels), ResBlock(channels)]
    cin = channels
    for cout in upsample_channels:
        layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.ReLU()]
        cin = cout
    layers.append(nn.Conv2d(cin, 1, 1))
    return nn.Sequential(*layers)
