"""The shapes-world VLM's tokenizer: a Qwen2.5-VL-style byte-level BPE trained on the world's own text.

`mmkit.testing.tokenizer.build_qwen_tokenizer` is trained on a small generic corpus: the world's Chinese words
fall apart into bytes (a 10-character phrase is 18 tokens) and the SDK's grounding prompt is 56 tokens. This
builder trains the same kind of tokenizer (Qwen's pre-tokenizer regex, so digits are one token each as in real
Qwen; Qwen's special tokens in Qwen's order; the official Qwen2.5-VL-Instruct chat template) on every text the
training data can produce, in English and Chinese, so prompts and answers are short.

This module knows the tokenizer and the world's words; it knows nothing about models or images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

import torch

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

from ...testing.tokenizer import (_PRETOKENIZE_REGEX, QWEN2_5_VL_CHAT_TEMPLATE, QWEN_ADDED_TOKENS,
                                  QWEN_SPECIAL_TOKENS)

__all__ = ["build_world_tokenizer", "WORLD_BPE_SIZE", "DigitTokens"]

WORLD_BPE_SIZE = 900
"""Byte-level BPE size before the special tokens (256 bytes + merges); the whole vocabulary is ~926 tokens."""

# Qwen2.5-VL's vocabulary stops at <|file_sep|> (no tool_response / think tokens).
_QWEN2_5_ADDED = QWEN_ADDED_TOKENS[: [t for t, _ in QWEN_ADDED_TOKENS].index("<|file_sep|>") + 1]


def _train_bpe(lines: list[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tokenizer = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    # max_token_length 9 (byte-level symbols): at most 3 Chinese characters or 9 bytes of English per token, so
    # "左边一个红色的圆" stays compositional (左边 / 一个 / 红色 / 的 / 圆) instead of one memorised phrase.
    trainer = BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, max_token_length=9,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tokenizer.train_from_iterator(lines, trainer=trainer)
    raw_merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in raw_merges]
    vocab = dict(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))
    return vocab, merges  # type: ignore[return-value]


def build_world_tokenizer(corpus: Iterable[str], *, vocab_size: int = WORLD_BPE_SIZE):
    """Train a Qwen2.5-VL-style tokenizer on `corpus` (deterministic for a fixed corpus).

    Args:
        corpus: training lines, e.g. `vlm_data.world_corpus()`: every prompt and answer of the training mix.
        vocab_size: byte-level BPE size before Qwen's special and added tokens.

    Returns:
        A `transformers.Qwen2Tokenizer` with `eos_token="<|im_end|>"`, `pad_token="<|endoftext|>"` and the
        official Qwen2.5-VL-Instruct chat template, as `build_qwen_tokenizer("qwen2_5_vl")` gives.
    """
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_bpe(list(corpus), vocab_size)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|endoftext|>",
        pad_token="<|endoftext|>", errors="replace", model_max_length=131072, split_special_tokens=False,
        clean_up_tokenization_spaces=False,
    )
    # Same order as Qwen's ids 151643..: special tokens, then the added ones up to <|file_sep|> (Qwen2.5-VL).
    tokens = [AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS]
    tokens += [AddedToken(t, special=special, normalized=False) for t, special in _QWEN2_5_ADDED]
    tokenizer.add_tokens(tokens)
    tokenizer.add_special_tokens({"extra_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])},
                                 replace_extra_special_tokens=True)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = QWEN2_5_VL_CHAT_TEMPLATE
    return tokenizer


@dataclass(frozen=True)
class DigitTokens:
    """Which tokens of a world tokenizer are digits, and which tokens make a following digit part of a word
    ("bbox_2d", "point_2d": the token before the "2" ends in a letter or "_"), so that number digits (coordinates,
    counts, seconds) can be told apart from digits inside words."""

    digits: tuple[int, ...]
    word_ends: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer) -> "DigitTokens":
        digits = tuple(tokenizer.convert_tokens_to_ids(list("0123456789")))
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in digits:
            raise ValueError("the tokenizer has no token for every digit")
        ends = tuple(i for i in range(len(tokenizer))
                     if (text := tokenizer.decode([i])) and (text[-1] == "_" or text[-1].isascii() and text[-1].isalpha()))
        return cls(digits, ends)

    def is_digit(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., seq) bool: which of `ids` are digits."""
        return torch.isin(ids, torch.tensor(self.digits, dtype=ids.dtype, device=ids.device))

    def leading(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., seq) bool: the first digit of each number in `ids` (a digit after neither a digit nor a word)."""
        digit = self.is_digit(ids)
        before = torch.nn.functional.pad(ids[..., :-1], (1, 0), value=-1)
        after_word = torch.isin(before, torch.tensor(self.word_ends, dtype=ids.dtype, device=ids.device))
        after_digit = torch.nn.functional.pad(digit[..., :-1], (1, 0), value=False)
        return digit & ~after_digit & ~after_word
