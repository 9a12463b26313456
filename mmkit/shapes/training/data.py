"""Training data for the bundled shapes generator: endless seeded scenes from the train split, captions
(English, some Chinese), pixel tensors, and the CLIP tokenizer whose vocabulary is the world's words.

Scenes come from `mmkit.shapes.sample_scene` and are kept only when `split_of(scene) == "train"`, so the
held-out prompts the evaluation draws from the val / test splits are never trained on as scenes.
This module knows the shapes world and tensors; it knows nothing about the models being trained.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import torch

from ..datasets import split_of
from ..language import caption
from ..render import render
from ..scene import Scene, sample_scene
from ..vocab import BACKGROUNDS, BASE_KINDS, COLOURS, POSITIONS, SHAPES

__all__ = ["train_scenes", "to_tensor", "scene_caption", "build_shapes_tokenizer", "tokenize"]


def train_scenes(rng: np.random.Generator, n: int, *, kinds: Sequence[str] = BASE_KINDS,
                 backgrounds: Sequence[str] = ("white",), n_shapes: int | tuple[int, int] = (1, 3),
                 size: int = 64) -> list[Scene]:
    """`n` fresh scenes of the train split (content-hash split, as `make_dataset` uses)."""
    out: list[Scene] = []
    while len(out) < n:
        scene = sample_scene(rng, n_shapes=n_shapes, kinds=kinds, backgrounds=backgrounds, size=size)
        if split_of(scene) == "train":
            out.append(scene)
    return out


def to_tensor(scenes: Sequence[Scene]) -> torch.Tensor:
    """Render scenes to a float batch (N, 3, H, W) in [-1, 1], the VAE's input range."""
    pixels = np.stack([np.asarray(render(s), dtype=np.float32) for s in scenes])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2) / 127.5 - 1.0


def scene_caption(scene: Scene, rng: np.random.Generator, *, zh_share: float = 0.2,
                  single_position_share: float = 0.5) -> str:
    """The prompt a scene is trained with: `caption(scene)`, in Chinese for `zh_share` of draws; a single
    shape also names its position for `single_position_share` of draws (so "a red circle at the top"
    works, while "a red circle" stays the plain default caption)."""
    lang = "zh" if rng.random() < zh_share else "en"
    positions = None
    if len(scene.shapes) == 1 and rng.random() < single_position_share:
        positions = True
    return caption(scene, lang, positions=positions)


def _corpus() -> list[str]:
    """Every word the world can say, many times over, in both languages (the BPE training text)."""
    lines = []
    for colour in COLOURS.values():
        for kind in SHAPES.values():
            for where in POSITIONS.values():
                lines.append(f"a {colour.name} {kind.name} {where.en_phrase} and an {colour.name} {kind.plural}")
                lines.append(f"{where.zh}一个{colour.zh}的{kind.zh}，{colour.zh}的{kind.zh}")
    lines += [f"on a {b.name} background {b.zh}" for b in BACKGROUNDS.values()]
    return lines * 3


def build_shapes_tokenizer(vocab_size: int = 700):
    """A CLIP BPE tokenizer (`transformers.CLIPTokenizer`, CLIP's vocabulary layout: 256 byte symbols, the
    same with `</w>`, learned merges, then `<|startoftext|>`, `<|endoftext|>`) trained on the shapes
    world's words, so every colour, shape and position word is one token. Same recipe as
    `mmkit.testing.tiny_diffusion.build_tiny_clip_tokenizer`, another corpus."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    bpe.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, initial_alphabet=alphabet,
                                  end_of_word_suffix="</w>", show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
              for m in json.loads(bpe.to_str())["model"]["merges"]]
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for symbol in sorted(alphabet, key=ord):
            vocab[symbol + suffix] = len(vocab)
    kept = []
    for left, right in merges:
        if len(vocab) >= vocab_size - 2:
            break
        if left in vocab and right in vocab and left + right not in vocab:
            vocab[left + right] = len(vocab)
            kept.append((left, right))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=kept, pad_token="<|endoftext|>", model_max_length=77)


def tokenize(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """Token ids exactly as the SD pipeline makes them: padded to 77 with the pad token, truncated."""
    return tokenizer(list(texts), padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids
