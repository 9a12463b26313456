"""Generated text -> `Answer`: the post-processing every `VisionLanguageModel` call runs.

In order: split thinking from the answer (`thinking.py`), convert boxes and points from the family's
convention to pixels of the original images (`grounding.py`), read time spans (`time_spans.py`) and put
them on the un-trimmed video's clock, and say whether the output was cut.

Time spans: `TimeSpan` is seconds from the start of the un-trimmed video, for every family. Qwen3-VL's
prompt carries `<t seconds>` computed from each sampled frame's index in the whole video, so what it
writes is already on that clock. Qwen2.5-VL only sees time through its position ids, which start at 0 on
the first sampled frame, so what it writes is relative to the clip: `time_offset` gives the seconds to add.

This module knows nothing about how the text was generated or how media were decoded.
"""

from __future__ import annotations

from typing import Any, Sequence

from .answer import Answer, TimeSpan, Timings, Usage
from .families import Family
from .grounding import GroundingResult, boxes_from_text
from .thinking import split_thinking
from .time_spans import parse_time_spans

__all__ = ["build_answer", "time_offset"]


def time_offset(family: Family, video_metadata: Sequence[dict[str, Any]]) -> float:
    """Seconds to add to the times a model writes about a conversation's videos to get un-trimmed-video time.

    Args:
        family: the checkpoint's family.
        video_metadata: per video of the conversation, the metadata `process_vision_info` returns (`fps` and
            `frames_indices`, indices in the whole video).

    Returns:
        0.0 for families whose prompt carries absolute timestamps (Qwen3-VL), and for frame lists and
        untrimmed videos; for Qwen2.5-VL the time of the first sampled frame. With several videos trimmed
        differently a span cannot be attributed to one video, so nothing is added.
    """
    if family.timestamps_in_prompt or not video_metadata:
        return 0.0
    starts = {meta["frames_indices"][0] / float(meta["fps"]) for meta in video_metadata}
    return starts.pop() if len(starts) == 1 else 0.0


def _shift(span: TimeSpan, seconds: float) -> TimeSpan:
    if not seconds:
        return span
    return span.model_copy(update={"start": span.start + seconds, "end": span.end + seconds})


def build_answer(
    raw_text: str,
    *,
    family: Family,
    prompt_opened_think: bool = False,
    original_sizes: Sequence[tuple[int, int]] = (),
    input_sizes: Sequence[tuple[int, int]] = (),
    bare_lists: bool = False,
    has_video: bool = False,
    time_offset_s: float = 0.0,
    finish_reason: str = "stop",
    usage: Usage | None = None,
    timings: Timings | None = None,
    model: str = "",
) -> Answer:
    """Turn generated text into an `Answer`: the post-processing every `VisionLanguageModel` call runs.

    Args:
        raw_text: the generated text, special tokens removed.
        family: the checkpoint's family (decides the coordinate convention).
        prompt_opened_think: the generation prompt ended with `<think>` (Thinking checkpoints).
        original_sizes: (width, height) of each image as the caller passed it, in prompt order.
        input_sizes: (width, height) each image had when the model saw it (`grid_thw * patch_size`).
        bare_lists: also read number lists in prose as boxes / points (the caller asked for a location).
        has_video: parse time spans from the answer (only for video questions).
        time_offset_s: seconds added to every span (see `time_offset`); `TimeSpan.raw` keeps the text.
        finish_reason: "stop" or "length".
        usage / timings / model: copied onto the `Answer`.
    """
    split = split_thinking(raw_text, prompt_opened_think=prompt_opened_think)
    geometry = GroundingResult([], [], False)
    if original_sizes:  # boxes and points only mean something relative to an image of the request
        geometry = boxes_from_text(
            split.answer, family=family.name, original_sizes=list(original_sizes), input_sizes=list(input_sizes),
            bare_lists=bare_lists,
        )
    spans = tuple(_shift(s, time_offset_s) for s in parse_time_spans(split.answer)) if has_video else ()
    cut = finish_reason == "length" or not split.closed or geometry.truncated
    return Answer(
        text=split.answer,
        thinking=split.thinking,
        raw_text=raw_text,
        boxes=tuple(geometry.boxes),
        points=tuple(geometry.points),
        spans=spans,
        truncated=cut,
        finish_reason="length" if finish_reason == "length" else "stop",
        model=model,
        family=family.name,
        usage=usage or Usage(),
        timings=timings or Timings(),
    )
