"""Prompt embeddings without CLIP's 77-token limit, for SD 1.5 and SDXL.

diffusers truncates prompts to CLIP's window (77 tokens including BOS/EOS). Here a prompt is tokenized
without truncation, cut into windows of 75 tokens, each window is wrapped as `[BOS] tokens [EOS] pad...`
(77 ids) and encoded on its own, and the windows' hidden states are concatenated along the sequence axis
(the approach of A1111 and compel). The UNet's cross-attention accepts any sequence length. Prompt and
negative prompt are padded with empty windows to the same number of windows, as classifier-free guidance
stacks them in one batch.

For a prompt of at most 75 tokens the result is exactly what the diffusers pipeline computes itself
(one window, same padding, same hidden-state layer; SDXL's all-zero negative when no negative prompt is
given and the checkpoint sets `force_zeros_for_empty_prompt`), so short prompts give diffusers' pixels.

- SD 1.5: the text encoder's last hidden state, or with `clip_skip=n` the hidden state n layers earlier
  passed through the final layer norm (diffusers' rule).
- SDXL: both encoders' penultimate hidden states (with `clip_skip=n`, n layers earlier), concatenated on
  the feature axis; the pooled embedding is encoder 2's projected EOS state of the first window.

This module knows nothing about schedulers, images or results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PromptEmbeddings", "encode_prompts", "count_tokens", "WINDOW_TOKENS"]

WINDOW_TOKENS = 75  # CLIP's 77 positions minus BOS and EOS


@dataclass(frozen=True)
class PromptEmbeddings:
    """Embeddings for one prompt (batch 1) to pass to a diffusers SD / SDXL pipeline call.

    Attributes:
        prompt_embeds: (1, 77 * windows, dim).
        negative_prompt_embeds: same shape as `prompt_embeds`.
        pooled_prompt_embeds: SDXL only, (1, projection_dim).
        negative_pooled_prompt_embeds: SDXL only.
        windows: how many 77-token windows each side uses.
    """

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor | None = None
    negative_pooled_prompt_embeds: torch.Tensor | None = None
    windows: int = 1

    def call_kwargs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments for the pipeline call."""
        kwargs = {"prompt_embeds": self.prompt_embeds, "negative_prompt_embeds": self.negative_prompt_embeds}
        if self.pooled_prompt_embeds is not None:
            kwargs["pooled_prompt_embeds"] = self.pooled_prompt_embeds
            kwargs["negative_pooled_prompt_embeds"] = self.negative_pooled_prompt_embeds
        return kwargs


def count_tokens(tokenizer: Any, text: str) -> int:
    """How many CLIP tokens `text` has, without BOS/EOS."""
    return len(tokenizer(text, add_special_tokens=False, truncation=False).input_ids)


def _windows(tokenizer: Any, text: str, count: int | None = None) -> torch.Tensor:
    """(windows, 77) input ids: `[BOS] <=75 tokens [EOS] pad...`, at least `count` windows."""
    ids = tokenizer(text, add_special_tokens=False, truncation=False).input_ids
    chunks = [ids[i : i + WINDOW_TOKENS] for i in range(0, len(ids), WINDOW_TOKENS)] or [[]]
    chunks += [[] for _ in range(max(0, (count or 0) - len(chunks)))]
    length = WINDOW_TOKENS + 2
    rows = []
    for chunk in chunks:
        row = [tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]
        rows.append(row + [tokenizer.pad_token_id] * (length - len(row)))
    return torch.tensor(rows, dtype=torch.long)


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _encode_sd15(pipe: Any, ids: torch.Tensor, clip_skip: int | None) -> torch.Tensor:
    encoder = pipe.text_encoder
    out = encoder(ids.to(_device_of(encoder)), output_hidden_states=clip_skip is not None)
    if clip_skip is None:
        hidden = out[0]
    else:
        norm = encoder.text_model.final_layer_norm if hasattr(encoder, "text_model") else encoder.final_layer_norm
        hidden = norm(out.hidden_states[-(clip_skip + 1)])
    return hidden.reshape(1, -1, hidden.shape[-1])  # windows -> one long sequence


def _encode_sdxl(pipe: Any, text: str, count: int, clip_skip: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    layer = -2 if clip_skip is None else -(clip_skip + 2)  # SDXL always reads the penultimate layer
    states, pooled = [], None
    for tokenizer, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids = _windows(tokenizer, text, count)
        out = encoder(ids.to(_device_of(encoder)), output_hidden_states=True)
        if out[0].ndim == 2:  # CLIPTextModelWithProjection: projected pooled output per window
            pooled = out[0][:1]
        hidden = out.hidden_states[layer]
        states.append(hidden.reshape(1, -1, hidden.shape[-1]))
    return torch.cat(states, dim=-1), pooled


def encode_prompts(
    pipe: Any,
    family: str,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    clip_skip: int | None = None,
) -> PromptEmbeddings:
    """Encode a prompt and its negative, each of any length, for `pipe`.

    Args:
        pipe: a loaded diffusers SD 1.5 / SDXL pipeline (its tokenizers and text encoders are used).
        family: "sd15" or "sdxl".
        prompt: the prompt text.
        negative_prompt: the negative prompt; None means "" for SD 1.5 and, for SDXL checkpoints with
            `force_zeros_for_empty_prompt`, all-zero negative embeddings (diffusers' behaviour).
        clip_skip: skip this many final CLIP layers (None: the family's default layer).
    """
    tokenizer = pipe.tokenizer if pipe.tokenizer is not None else pipe.tokenizer_2
    count = max(
        1,
        -(-count_tokens(tokenizer, prompt) // WINDOW_TOKENS),
        -(-count_tokens(tokenizer, negative_prompt or "") // WINDOW_TOKENS),
    )
    with torch.no_grad():
        if family == "sd15":
            pos = _encode_sd15(pipe, _windows(pipe.tokenizer, prompt, count), clip_skip)
            neg = _encode_sd15(pipe, _windows(pipe.tokenizer, negative_prompt or "", count), clip_skip)
            return PromptEmbeddings(pos, neg, windows=count)
        pos, pooled = _encode_sdxl(pipe, prompt, count, clip_skip)
        if negative_prompt is None and getattr(pipe.config, "force_zeros_for_empty_prompt", False):
            neg, neg_pooled = torch.zeros_like(pos), torch.zeros_like(pooled)
        else:
            neg, neg_pooled = _encode_sdxl(pipe, negative_prompt or "", count, clip_skip)
    return PromptEmbeddings(pos, neg, pooled, neg_pooled, windows=count)
