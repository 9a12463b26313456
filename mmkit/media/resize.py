"""The qwen-vl-utils 0.0.14 pre-processing rules: how big an image or video frame gets, how many frames.

This module re-implements, integer for integer, `smart_resize`, `smart_nframes`, the video frame range and
the per-frame pixel budgets of `qwen_vl_utils/vision_process.py` (0.0.14), because that package imports
torchvision at module top and cannot be imported where torchvision is missing or broken.
`tests/test_media_resize.py` keeps a parity test against the real source over a large grid.

Subtleties kept on purpose (they change integers):
- Python `round` (ties to even) in `round_by_factor`.
- No `max(factor, .)` in the branch that floors to fit `max_pixels` (transformers' copy has one).
- `total_pixels / nframes * FRAME_FACTOR` is float arithmetic, compared with an `int`.

Pure arithmetic: knows nothing about pixels, files or models.
"""
from __future__ import annotations

import math
import os

from ..exceptions import UsageError

__all__ = [
    "MAX_RATIO",
    "SPATIAL_MERGE_SIZE",
    "IMAGE_MIN_TOKEN_NUM",
    "IMAGE_MAX_TOKEN_NUM",
    "VIDEO_MIN_TOKEN_NUM",
    "VIDEO_MAX_TOKEN_NUM",
    "FPS",
    "FRAME_FACTOR",
    "FPS_MIN_FRAMES",
    "FPS_MAX_FRAMES",
    "MODEL_SEQ_LEN",
    "factor_for",
    "round_by_factor",
    "ceil_by_factor",
    "floor_by_factor",
    "smart_resize",
    "smart_nframes",
    "video_frame_range",
    "video_pixel_budget",
    "image_target_size",
    "video_target_size",
]

MAX_RATIO = 200  # longest side / shortest side above this is refused
SPATIAL_MERGE_SIZE = 2  # 2x2 patches merge into one token
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
FPS = 2.0  # default sampling rate, frames per second
FRAME_FACTOR = 2  # frame counts are multiples of 2 (temporal patch size)
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
# Read once at import, like upstream; the whole video (all frames) must fit in this many tokens.
MODEL_SEQ_LEN = int(float(os.environ.get("MODEL_SEQ_LEN", 128000)))


def factor_for(image_patch_size: int) -> int:
    """Side lengths are multiples of this: 28 for Qwen2/2.5-VL (patch 14), 32 for Qwen3-VL (patch 16).

    Args:
        image_patch_size: the vision encoder's patch size (`vision_config.patch_size`).
    """
    if isinstance(image_patch_size, bool) or not isinstance(image_patch_size, int) or image_patch_size <= 0:
        raise UsageError(
            "image_patch_size must be a positive int", received=image_patch_size,
            fix="Use 14 for Qwen2/2.5-VL and 16 for Qwen3-VL",
        )
    return image_patch_size * SPATIAL_MERGE_SIZE


def round_by_factor(number: float, factor: int) -> int:
    """The multiple of `factor` closest to `number` (Python `round`: ties go to the even multiple)."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    """The smallest multiple of `factor` that is >= `number`."""
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    """The largest multiple of `factor` that is <= `number`."""
    return math.floor(number / factor) * factor


def smart_resize(
    height: int, width: int, factor: int, min_pixels: int | None = None, max_pixels: int | None = None
) -> tuple[int, int]:
    """(height, width) rounded to multiples of `factor` with the pixel count inside [min_pixels, max_pixels].

    Same integers as qwen-vl-utils 0.0.14 `smart_resize`.

    Args:
        height: the source height in pixels.
        width: the source width in pixels.
        factor: side lengths become multiples of this (see `factor_for`).
        min_pixels: lower bound on height*width; default `IMAGE_MIN_TOKEN_NUM * factor**2`.
        max_pixels: upper bound on height*width; default `IMAGE_MAX_TOKEN_NUM * factor**2`.

    Returns:
        `(resized_height, resized_width)`.
    """
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKEN_NUM * factor**2
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_TOKEN_NUM * factor**2
    if max_pixels < min_pixels:
        raise UsageError(
            "max_pixels must be >= min_pixels", received={"min_pixels": min_pixels, "max_pixels": max_pixels},
            fix="Raise max_pixels or lower min_pixels",
        )
    if height <= 0 or width <= 0:
        raise UsageError("height and width must be positive", received=(height, width), fix="Pass the real size")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise UsageError(
            f"absolute aspect ratio must be at most {MAX_RATIO}", received=(height, width),
            fix="Crop or pad the image to a less extreme aspect ratio",
        )
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)  # no max(factor, .) here: upstream has none
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def smart_nframes(
    total_frames: int,
    video_fps: float,
    *,
    fps: float | None = None,
    nframes: int | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
) -> int:
    """How many frames to sample from `total_frames` frames at `video_fps` (qwen-vl-utils 0.0.14 rule).

    Args:
        total_frames: frames in the selected range of the video.
        video_fps: the video's frame rate.
        fps: sampling rate in frames per second (default `FPS` = 2.0); excludes `nframes`.
        nframes: an exact frame count, rounded to a multiple of `FRAME_FACTOR`; excludes `fps`.
        min_frames: lower bound when sampling by fps (default `FPS_MIN_FRAMES`).
        max_frames: upper bound when sampling by fps (default `min(FPS_MAX_FRAMES, total_frames)`).

    Returns:
        An even frame count in `[FRAME_FACTOR, total_frames]`; `UsageError` where none exists.
    """
    if fps is not None and nframes is not None:
        raise UsageError("pass either fps or nframes, not both", received={"fps": fps, "nframes": nframes},
                         fix="Drop one of them")
    if nframes is not None:
        count = round_by_factor(nframes, FRAME_FACTOR)
    else:
        fps = FPS if fps is None else fps
        low = ceil_by_factor(FPS_MIN_FRAMES if min_frames is None else min_frames, FRAME_FACTOR)
        high = floor_by_factor(min(FPS_MAX_FRAMES, total_frames) if max_frames is None else max_frames,
                               FRAME_FACTOR)
        count = total_frames / video_fps * fps
        count = min(min(max(count, low), high), total_frames)
        count = floor_by_factor(count, FRAME_FACTOR)
    if not FRAME_FACTOR <= count <= total_frames:
        raise UsageError(
            f"the number of sampled frames must lie in [{FRAME_FACTOR}, {total_frames}]",
            received={"nframes": count, "total_frames": total_frames, "video_fps": video_fps},
            fix="Ask for fewer frames (nframes/max_frames) or use a longer video range",
        )
    return count


def video_frame_range(
    total_frames: int, video_fps: float, video_start: float | None = None, video_end: float | None = None
) -> tuple[int, int, int]:
    """(start_frame, end_frame, frame_count) of the `[video_start, video_end]` seconds range, both ends inclusive.

    Same rule as qwen-vl-utils 0.0.14 `calculate_video_frame_range` (decord/torchcodec readers).
    """
    if video_fps <= 0:
        raise UsageError("video_fps must be positive", received=video_fps, fix="Pass the video's frame rate")
    if total_frames <= 0:
        raise UsageError("total_frames must be positive", received=total_frames, fix="Check the video has frames")
    if video_start is None and video_end is None:
        return 0, total_frames - 1, total_frames
    max_duration = total_frames / video_fps
    start_frame = 0
    if video_start is not None:
        start_frame = math.ceil(max(0.0, min(video_start, max_duration)) * video_fps)
    end_frame = total_frames - 1
    if video_end is not None:
        end_frame = min(math.floor(max(0.0, min(video_end, max_duration)) * video_fps), total_frames - 1)
    if start_frame >= end_frame:
        raise UsageError(
            f"the time range selects no frames (start frame {start_frame} >= end frame {end_frame}; "
            f"video is {max_duration:.2f}s, {total_frames} frames at {video_fps} fps)",
            received={"video_start": video_start, "video_end": video_end},
            fix="Pass video_start < video_end inside the video's duration",
        )
    return start_frame, end_frame, end_frame - start_frame + 1


def video_pixel_budget(
    nframes: int,
    factor: int,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    total_pixels: float | None = None,
) -> tuple[int, float]:
    """(min_pixels, max_pixels) per frame for a video of `nframes` frames (qwen-vl-utils 0.0.14 `fetch_video`).

    Args:
        nframes: frames in the (padded) video.
        factor: see `factor_for`.
        min_pixels: element's min_pixels; default `VIDEO_MIN_TOKEN_NUM * factor**2`.
        max_pixels: element's max_pixels; only ever lowers the computed bound.
        total_pixels: pixel budget of the whole video; default `MODEL_SEQ_LEN * factor**2 * 0.9`.

    Returns:
        `(min_pixels, max_pixels)`; max may be a float, exactly as upstream computes it.
    """
    low = VIDEO_MIN_TOKEN_NUM * factor * factor if min_pixels is None else min_pixels
    total = MODEL_SEQ_LEN * factor * factor * 0.9 if total_pixels is None else total_pixels
    high = max(min(VIDEO_MAX_TOKEN_NUM * factor * factor, total / nframes * FRAME_FACTOR), int(low * 1.05))
    if max_pixels is not None:
        high = min(max_pixels, high)
    return low, high


def image_target_size(height: int, width: int, element: dict, factor: int) -> tuple[int, int]:
    """The size `fetch_image` resizes to: `resized_height`/`resized_width` if both given, else min/max_pixels."""
    if "resized_height" in element and "resized_width" in element:
        return smart_resize(element["resized_height"], element["resized_width"], factor=factor)
    return smart_resize(
        height, width, factor=factor,
        min_pixels=element.get("min_pixels", IMAGE_MIN_TOKEN_NUM * factor**2),
        max_pixels=element.get("max_pixels", IMAGE_MAX_TOKEN_NUM * factor**2),
    )


def video_target_size(height: int, width: int, nframes: int, element: dict, factor: int) -> tuple[int, int]:
    """The frame size `fetch_video` resizes to, from the element's keys and the per-frame pixel budget."""
    if "resized_height" in element and "resized_width" in element:
        return smart_resize(element["resized_height"], element["resized_width"], factor=factor)
    low, high = video_pixel_budget(
        nframes, factor, min_pixels=element.get("min_pixels"), max_pixels=element.get("max_pixels"),
        total_pixels=element.get("total_pixels"),
    )
    return smart_resize(height, width, factor=factor, min_pixels=low, max_pixels=high)
