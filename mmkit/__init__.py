"""mmkit: understand images and videos with Qwen-VL, generate and edit them with Stable Diffusion.

    >>> import mmkit
    >>> vlm = mmkit.VisionLanguageModel.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")
    >>> vlm.ground("photo.jpg", "the red cup").boxes      # pixels on the original photo
    >>> gen = mmkit.ImageGenerator.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
    >>> gen.text_to_image("a red cup on a table", seed=0).save("out/")

Importing mmkit is cheap: the names below load their modules (torch models, diffusers) on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _torchvision_guard  # noqa: F401  (must run before transformers is imported anywhere)
from .exceptions import (
    DeviceError,
    MediaError,
    MmkitError,
    ModelLoadError,
    ModelOutputError,
    ServerError,
    UnsafeSourceError,
    UsageError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # understanding
    "VisionLanguageModel": "mmkit.understand.model",
    "ChatStream": "mmkit.understand.streaming",
    "Answer": "mmkit.understand.answer",
    "Box": "mmkit.understand.answer",
    "Point": "mmkit.understand.answer",
    "TimeSpan": "mmkit.understand.answer",
    "draw_grounding": "mmkit.understand.draw",
    # generation
    "ImageGenerator": "mmkit.generate.generator",
    "GenerationResult": "mmkit.generate.result",
    "GenerationParams": "mmkit.generate.result",
    "read_generation_params": "mmkit.generate.result",
    "Control": "mmkit.generate.controlnet",
    "TrainLoraConfig": "mmkit.generate.train_lora",
    "train_lora": "mmkit.generate.train_lora",
    # media and devices
    "MediaPolicy": "mmkit.media",
    "load_image": "mmkit.media",
    "load_video": "mmkit.media",
    "plan_device": "mmkit.devices",
    "DevicePlan": "mmkit.devices",
}

__all__ = [
    "__version__",
    "MmkitError",
    "UsageError",
    "ModelLoadError",
    "UnsafeSourceError",
    "MediaError",
    "DeviceError",
    "ModelOutputError",
    "ServerError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .devices import DevicePlan, plan_device
    from .generate.controlnet import Control
    from .generate.generator import ImageGenerator
    from .generate.result import GenerationParams, GenerationResult, read_generation_params
    from .generate.train_lora import TrainLoraConfig, train_lora
    from .media import MediaPolicy, load_image, load_video
    from .understand.answer import Answer, Box, Point, TimeSpan
    from .understand.draw import draw_grounding
    from .understand.model import VisionLanguageModel
    from .understand.streaming import ChatStream
