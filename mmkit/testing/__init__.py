"""Tiny, seeded, architecture-faithful checkpoints built offline, for tests and demos.

Names load lazily (importing `mmkit.testing` imports neither torch nor transformers). To add a builder, add its
name and module to `_EXPORTS`.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "build_qwen_tokenizer": ".tokenizer",
    "build_tiny_qwen2_5_vl": ".tiny_qwen",
    "build_tiny_qwen3_vl": ".tiny_qwen",
    "tiny_checkpoint": ".tiny_qwen",
    "build_tiny_clip_tokenizer": ".tiny_diffusion",
    "build_tiny_sd15": ".tiny_diffusion",
    "build_tiny_sd15_inpaint": ".tiny_diffusion",
    "build_tiny_sdxl": ".tiny_diffusion",
    "tiny_diffusion_checkpoint": ".tiny_diffusion",
    "save_single_file_checkpoint": ".single_file",
    "build_tiny_controlnet": ".tiny_controlnet",
    "build_tiny_lora": ".tiny_lora",
    "build_broken_lora": ".tiny_lora",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmkit.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
