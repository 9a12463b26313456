"""Text (+ image, mask, control) -> images with Stable Diffusion 1.5 and SDXL through diffusers.

Data flows: `loading` (checkpoint -> pipeline, family read from the weights) -> `generator.ImageGenerator`
(validation, seeds, `schedulers` by name, long `prompts`) -> `result` (images + params, PNG metadata).
ControlNet (`controlnet`) and LoRA (`lora`) plug into the generator. Importing this package is cheap:
torch and diffusers load on first use of a generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ImageGenerator",
    "GenerationParams",
    "GenerationResult",
    "GenerationTimings",
    "ControlSummary",
    "read_generation_params",
    "list_schedulers",
    "encode_prompts",
    "PromptEmbeddings",
    "load_checkpoint",
    "LoadedCheckpoint",
    "CheckpointInfo",
    "Control",
    "LoraSet",
    "LoraInfo",
    "TrainLoraConfig",
    "TrainResult",
    "train_lora",
]

_EXPORTS = {
    "ImageGenerator": ".generator",
    "GenerationParams": ".result",
    "GenerationResult": ".result",
    "GenerationTimings": ".result",
    "ControlSummary": ".result",
    "read_generation_params": ".result",
    "list_schedulers": ".schedulers",
    "encode_prompts": ".prompts",
    "PromptEmbeddings": ".prompts",
    "load_checkpoint": ".loading",
    "LoadedCheckpoint": ".loading",
    "CheckpointInfo": ".loading",
    "Control": ".controlnet",
    "LoraSet": ".lora",
    "LoraInfo": ".lora",
    "TrainLoraConfig": ".train_lora",
    "TrainResult": ".train_lora",
    "train_lora": ".train_lora",
}

if TYPE_CHECKING:
    from .generator import ImageGenerator
    from .loading import CheckpointInfo, LoadedCheckpoint, load_checkpoint
    from .prompts import PromptEmbeddings, encode_prompts
    from .result import ControlSummary, GenerationParams, GenerationResult, GenerationTimings, read_generation_params
    from .schedulers import list_schedulers


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
