"""The shapes-world VLM's architecture and folder: a real `Qwen2_5_VLForConditionalGeneration`, small enough to
train on a CPU, saved beside a real `Qwen2_5_VLProcessor` in the upstream `save_pretrained` layout.

Resolution: the world's 64 px images are smart-resized to 112 x 112 (min_pixels 10 000, max_pixels 112^2 =
12 544; any square image lands on 112): 8 x 8 patches of 14 px, 16 visual tokens after the 2 x 2 merge. A shape
(14-20 px in the 64 px image) spans 24-36 input pixels, two to three patches, enough for boxes at IoU >= 0.5,
while the sequence stays short (~16 image + ~40 text tokens). min_pixels is set below 112^2 on purpose: the
upscale path ceils `64 * sqrt(min_pixels) / 64` to a multiple of 28, and 10 000 keeps it clear of float ties.

This module knows the model and processor classes; it knows nothing about the data or the training loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["VlmArch", "DEFAULT_ARCH", "TINY_ARCH", "build_model", "build_processor", "save_folder",
           "count_parameters"]


@dataclass(frozen=True)
class VlmArch:
    """Sizes of the shapes VLM (Qwen2.5-VL layout: ViT with 2x2 patch merger, M-RoPE decoder)."""

    text_hidden: int = 256  # decoder width
    text_layers: int = 4
    text_heads: int = 4  # head_dim = text_hidden / text_heads
    text_kv_heads: int = 2  # grouped-query attention, as Qwen2.5
    text_intermediate: int = 768  # SwiGLU width
    vision_depth: int = 4
    vision_hidden: int = 128
    vision_heads: int = 4
    vision_intermediate: int = 256
    min_pixels: int = 10_000  # 64 px images -> 112 x 112 (see the module docstring)
    max_pixels: int = 112 * 112

    def mrope_section(self) -> list[int]:
        """(t, h, w) rotary split of head_dim / 2, in Qwen2.5-VL's proportions (16, 24, 24 of 64)."""
        half = self.text_hidden // self.text_heads // 2
        side = (half - half // 4) // 2
        return [half - 2 * side, side, side]


DEFAULT_ARCH = VlmArch()
TINY_ARCH = VlmArch(text_hidden=64, text_layers=1, text_heads=4, text_kv_heads=2, text_intermediate=128,
                    vision_depth=1, vision_hidden=32, vision_heads=2, vision_intermediate=64)
"""For tests: the same code paths in well under a second per step."""


def _ids(tokenizer: Any) -> dict[str, int]:
    names = {"pad": "<|endoftext|>", "im_end": "<|im_end|>", "image": "<|image_pad|>", "video": "<|video_pad|>",
             "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>"}
    return {key: int(tokenizer.convert_tokens_to_ids(tok)) for key, tok in names.items()}


def build_model(arch: VlmArch, tokenizer: Any, *, seed: int = 0):
    """A freshly initialised `Qwen2_5_VLForConditionalGeneration` (seeded) for `tokenizer`'s vocabulary."""
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = _ids(tokenizer)
    vocab = -(-len(tokenizer) // 64) * 64  # rounded up like the real 151936 > 151665
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab, hidden_size=arch.text_hidden, intermediate_size=arch.text_intermediate,
            num_hidden_layers=arch.text_layers, num_attention_heads=arch.text_heads,
            num_key_value_heads=arch.text_kv_heads, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": arch.mrope_section()},
            bos_token_id=ids["pad"], eos_token_id=ids["im_end"], pad_token_id=ids["pad"], tie_word_embeddings=False,
        ),
        vision_config=dict(
            depth=arch.vision_depth, hidden_size=arch.vision_hidden, intermediate_size=arch.vision_intermediate,
            num_heads=arch.vision_heads, out_hidden_size=arch.text_hidden, patch_size=14, spatial_merge_size=2,
            temporal_patch_size=2, window_size=112, fullatt_block_indexes=[arch.vision_depth - 1],
            tokens_per_second=2,
        ),
        image_token_id=ids["image"], video_token_id=ids["video"],
        vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    # Greedy by default (the published Qwen2.5-VL config samples at temperature 1e-6 with repetition_penalty
    # 1.05; a penalty on repeated digits would only blur this model's coordinates).
    model.generation_config = GenerationConfig(bos_token_id=ids["pad"], pad_token_id=ids["pad"],
                                               eos_token_id=[ids["im_end"], ids["pad"]], do_sample=False)
    return model


def build_processor(arch: VlmArch, tokenizer: Any):
    """A `Qwen2_5_VLProcessor` (PIL image processor, torch-only video processor) with the arch's pixel budget."""
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from ...understand.video_processors import Qwen2VLVideoProcessor, register_video_processors

    register_video_processors()  # without torchvision the processor cannot be built otherwise
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessorPil(min_pixels=arch.min_pixels, max_pixels=arch.max_pixels),
        video_processor=Qwen2VLVideoProcessor(min_pixels=arch.min_pixels, max_pixels=arch.max_pixels),
        tokenizer=tokenizer, chat_template=tokenizer.chat_template,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_folder(model: Any, processor: Any, folder: str | Path, *, dtype: torch.dtype = torch.float32,
                card: str | None = None, meta: dict | None = None) -> Path:
    """Save model (in `dtype`, safetensors), processor and an optional README.md model card / training.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    original = next(model.parameters()).dtype
    # a model loaded with dtype=float32 (train_vlm --init-from) carries that dtype in its sub-configs, which
    # save_pretrained writes as is: name the dtype of the saved weights instead
    subs = [c for c in (getattr(model.config, n, None) for n in ("text_config", "vision_config")) if c is not None]
    before = [getattr(c, "dtype", None) for c in subs]
    model.to(dtype)
    try:
        for c in subs:
            c.dtype = dtype
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        model.to(original)
        for c, was in zip(subs, before):
            c.dtype = was
    for key in ("is_local", "local_files_only"):  # load-time facts from_pretrained leaves in init_kwargs
        processor.tokenizer.init_kwargs.pop(key, None)
    processor.save_pretrained(folder)
    if card is not None:
        (folder / "README.md").write_text(card)
    if meta is not None:
        (folder / "training.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=_jsonable))
    return folder


def _jsonable(value: Any) -> Any:
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)
