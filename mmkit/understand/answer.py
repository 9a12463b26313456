"""The typed answer of a vision-language model call, and the geometry it carries.

One coordinate convention everywhere in mmkit: boxes and points are absolute pixel coordinates on the
ORIGINAL image (the one the caller passed, before any resizing), with x1 < x2, y1 < y2, clamped to the
image. What the model literally emitted is kept in `raw` together with the convention it was in.

This module only defines data; parsing lives in `thinking.py`, `parsing.py` and `time_spans.py`,
conversion in `grounding.py`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RawConvention", "Box", "Point", "TimeSpan", "Usage", "Timings", "Answer"]

RawConvention = Literal["resized_pixels", "relative_1000", "relative_1", "original_pixels"]
"""How the model's raw numbers were meant: pixels on the smart-resized input (Qwen2.5-VL), 0-1000 relative
(Qwen2-VL, Qwen3-VL), 0-1 relative, or already pixels on the original image."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Box(_Frozen):
    """An axis-aligned box in absolute pixels of the original image."""

    x1: float = Field(description="left edge, pixels on the original image")
    y1: float = Field(description="top edge, pixels on the original image")
    x2: float = Field(description="right edge, pixels on the original image (x2 > x1)")
    y2: float = Field(description="bottom edge, pixels on the original image (y2 > y1)")
    label: str | None = Field(default=None, description="the label the model gave, if any")
    image_index: int = Field(default=0, description="which image of the request the box belongs to")
    raw: tuple[float, float, float, float] | None = Field(default=None, description="the numbers as emitted")
    raw_convention: RawConvention | None = Field(default=None, description="how `raw` was meant")

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


class Point(_Frozen):
    """A point in absolute pixels of the original image."""

    x: float
    y: float
    label: str | None = None
    image_index: int = 0
    raw: tuple[float, float] | None = None
    raw_convention: RawConvention | None = None


class TimeSpan(_Frozen):
    """A span of a video, in seconds from the start of the (un-trimmed) video."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    label: str | None = None
    raw: str | None = Field(default=None, description="the text the span was parsed from")

    @property
    def duration(self) -> float:
        return self.end - self.start


class Usage(_Frozen):
    """Token counts of one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    video_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Timings(_Frozen):
    """Wall-clock seconds spent in each stage of one call."""

    preprocess_s: float = 0.0
    generate_s: float = 0.0
    postprocess_s: float = 0.0
    first_token_s: float | None = None

    @property
    def total_s(self) -> float:
        return self.preprocess_s + self.generate_s + self.postprocess_s


class Answer(_Frozen):
    """What a vision-language model answered, parsed.

    Attributes:
        text: the final answer with any thinking removed.
        thinking: the text inside <think>...</think> (None when the model did not think).
        raw_text: everything the model generated, special tokens removed.
        boxes / points: grounding output converted to pixels on the original image(s).
        spans: time spans parsed from the answer (video questions).
        truncated: True when the output was cut (max_new_tokens reached or a JSON list cut short).
        finish_reason: "stop" (end-of-turn token) or "length" (max_new_tokens).
    """

    text: str
    thinking: str | None = None
    raw_text: str = ""
    boxes: tuple[Box, ...] = ()
    points: tuple[Point, ...] = ()
    spans: tuple[TimeSpan, ...] = ()
    truncated: bool = False
    finish_reason: Literal["stop", "length"] = "stop"
    model: str = ""
    family: str = ""
    usage: Usage = Usage()
    timings: Timings = Timings()
