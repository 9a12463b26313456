"""Understand images and videos with Qwen-VL: pixels + text -> a typed `Answer`.

    from mmkit.understand import VisionLanguageModel
    vlm = VisionLanguageModel.from_pretrained("Qwen/Qwen2.5-VL-3B-Instruct")
    answer = vlm.ground("street.jpg", "car")      # answer.boxes: pixels of street.jpg

Importing this package is cheap: the answer types load with it, everything that pulls in torch or
transformers loads on first attribute access. The torchvision-free video processors are registered with
`AutoVideoProcessor` by `VisionLanguageModel.from_pretrained`; call `register_video_processors()` yourself
only when you build a Qwen-VL processor with transformers directly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .answer import Answer, Box, Point, RawConvention, Timings, TimeSpan, Usage

__all__ = [
    # the model
    "VisionLanguageModel",
    "ChatStream",
    "build_answer",
    # what it returns
    "Answer",
    "Box",
    "Point",
    "TimeSpan",
    "Usage",
    "Timings",
    "RawConvention",
    # families and input
    "Family",
    "detect_family",
    "SUPPORTED_MODEL_TYPES",
    "Conversation",
    "to_conversation",
    # reading answers
    "split_thinking",
    "parse_grounding",
    "parse_time_spans",
    "boxes_from_text",
    "convention_for",
    "to_original_box",
    "to_original_point",
    "to_relative",
    "from_relative",
    "iou",
    "draw_grounding",
    # transformers without torchvision
    "register_video_processors",
]

_LAZY: dict[str, str] = {
    "VisionLanguageModel": "model",
    "ChatStream": "streaming",
    "build_answer": "postprocess",
    "Family": "families",
    "detect_family": "families",
    "SUPPORTED_MODEL_TYPES": "families",
    "Conversation": "messages",
    "to_conversation": "messages",
    "split_thinking": "thinking",
    "parse_grounding": "parsing",
    "parse_time_spans": "time_spans",
    "boxes_from_text": "grounding",
    "convention_for": "grounding",
    "to_original_box": "grounding",
    "to_original_point": "grounding",
    "to_relative": "grounding",
    "from_relative": "grounding",
    "iou": "grounding",
    "draw_grounding": "draw",
    "register_video_processors": "video_processors",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .draw import draw_grounding
    from .families import SUPPORTED_MODEL_TYPES, Family, detect_family
    from .grounding import (
        boxes_from_text,
        convention_for,
        from_relative,
        iou,
        to_original_box,
        to_original_point,
        to_relative,
    )
    from .messages import Conversation, to_conversation
    from .model import VisionLanguageModel
    from .parsing import parse_grounding
    from .postprocess import build_answer
    from .streaming import ChatStream
    from .thinking import split_thinking
    from .time_spans import parse_time_spans
    from .video_processors import register_video_processors


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
