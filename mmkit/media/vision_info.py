"""`process_vision_info` with qwen-vl-utils 0.0.14's signature, return shapes and integers, without torchvision.

Owns the message-level glue Qwen cookbook code calls: `extract_vision_info`, `fetch_image`, `fetch_video`,
`process_vision_info`. Re-implemented (qwen-vl-utils imports torchvision at module top); parity is tested
in `tests/test_media_vision_info.py` and `tests/test_media_resize.py`. Deliberate differences:
- every source goes through `MediaPolicy` (bounded, private addresses refused by default);
- images are EXIF-transposed, and any alpha (not only RGBA) is composited on white (see `images.to_rgb`);
- videos are decoded with PyAV, seeking to the sampled frames (`video_backend="pyav"` in the metadata),
  always with the decord/torchcodec frame-range rule for `video_start`/`video_end`;
- video frames are resized with `torch.nn.functional.interpolate(bicubic, antialias=True)`, then clamped and
  rounded like torchvision's uint8 resize, which is what upstream calls.
Knows nothing about models beyond the patch size it is given.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from PIL import Image

from ..exceptions import UsageError
from .fetch import DEFAULT_MEDIA_POLICY, MediaPolicy
from .images import load_image
from .resize import (
    FPS,
    FPS_MIN_FRAMES,
    FRAME_FACTOR,
    ceil_by_factor,
    factor_for,
    image_target_size,
    video_pixel_budget,
    video_target_size,
)
from .video import load_video

if TYPE_CHECKING:  # torch is imported inside the functions that use it: `import mmkit.media` stays light
    import torch

__all__ = ["extract_vision_info", "fetch_image", "fetch_video", "process_vision_info"]

logger = logging.getLogger(__name__)
Conversations = Union[list[dict[str, Any]], list[list[dict[str, Any]]]]
_RESIZE_CHUNK = 32  # frames resized at once: bounds the float32 copy for long videos


def fetch_image(
    ele: dict[str, Any], image_patch_size: int = 14, *, policy: MediaPolicy = DEFAULT_MEDIA_POLICY
) -> Image.Image:
    """Load the element's image and resize it the qwen-vl-utils way.

    Args:
        ele: a content element with `"image"` (or `"image_url"`: a string, or `{"url": ...}`), and optionally
            `min_pixels`, `max_pixels`, or both `resized_height` and `resized_width`.
        image_patch_size: the vision encoder's patch size (14 Qwen2/2.5-VL, 16 Qwen3-VL).
        policy: safety bounds for fetching and decoding.

    Returns:
        An RGB `PIL.Image` whose sides are multiples of `image_patch_size * 2`, resized with PIL BICUBIC.
    """
    factor = factor_for(image_patch_size)
    source = ele["image"] if "image" in ele else ele.get("image_url")
    if isinstance(source, dict) and "url" in source:  # OpenAI-style {"image_url": {"url": ...}}
        source = source["url"]
    if source is None:
        raise UsageError("the element has no image", received=ele, fix='Put the source under "image"')
    image = load_image(source, policy=policy)
    height, width = image_target_size(image.height, image.width, ele, factor)
    return image.resize((width, height))  # Pillow's default for RGB is BICUBIC, as upstream relies on


def fetch_video(
    ele: dict[str, Any],
    image_patch_size: int = 14,
    return_video_sample_fps: bool = False,
    return_video_metadata: bool = False,
    *,
    policy: MediaPolicy = DEFAULT_MEDIA_POLICY,
) -> Any:
    """Load and sample the element's video, resized to the qwen-vl-utils per-frame pixel budget.

    Args:
        ele: a content element with `"video"` (a path/URL/bytes, or a list of frames) and optionally `fps` or
            `nframes`, `min_frames`, `max_frames`, `video_start`, `video_end`, `min_pixels`, `max_pixels`,
            `total_pixels`, `resized_height` + `resized_width`; for frame lists `sample_fps` and `raw_fps`.
        image_patch_size: the vision encoder's patch size (14 Qwen2/2.5-VL, 16 Qwen3-VL).
        return_video_sample_fps: also return the effective sampling rate.
        return_video_metadata: return `(video, metadata)` with metadata keys `fps`, `frames_indices`,
            `total_num_frames` (and `video_backend` for files).
        policy: safety bounds for fetching and decoding.

    Returns:
        A float32 (T, C, H, W) tensor with integer values 0..255 (as upstream), or `(video, metadata)`;
        followed by `sample_fps` when `return_video_sample_fps`.
    """
    factor = factor_for(image_patch_size)
    source = ele.get("video")
    if isinstance(source, np.ndarray) and source.ndim == 4:
        source = list(source)  # mmkit extension: a THWC array is a frame list
    if isinstance(source, (list, tuple)):
        video, metadata, sample_fps = _frame_list(ele, source, factor, policy)
    elif isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        video, metadata, sample_fps = _video_file(ele, source, policy)
    else:
        raise UsageError('"video" must be a path, URL, bytes or a list of frames', received=type(source).__name__,
                         fix='Pass {"type": "video", "video": "file:///path.mp4"} or a list of images')
    nframes, _, height, width = video.shape
    _warn_if_max_pixels_lowered(ele, nframes, factor)
    video = _resize_frames(video, video_target_size(height, width, nframes, ele, factor))
    result = (video, metadata) if return_video_metadata else video
    return (result, sample_fps) if return_video_sample_fps else result


def _video_file(ele: dict, source: Any, policy: MediaPolicy) -> tuple[torch.Tensor, dict, float]:
    if "fps" in ele and "nframes" in ele:
        raise UsageError("only one of fps and nframes may be given",
                         received={"fps": ele["fps"], "nframes": ele["nframes"]}, fix="Drop one of them")
    import torch

    clip = load_video(
        source, fps=ele.get("fps", FPS), nframes=ele.get("nframes"),
        min_frames=ele.get("min_frames", FPS_MIN_FRAMES), max_frames=ele.get("max_frames", 768),
        video_start=ele.get("video_start"), video_end=ele.get("video_end"), policy=policy,
    )
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)  # THWC -> TCHW, uint8
    metadata = dict(fps=clip.source_fps, frames_indices=clip.indices.tolist(), total_num_frames=clip.total_frames,
                    video_backend="pyav")
    return video, metadata, clip.sample_fps


def _frame_list(ele: dict, frames: list | tuple, factor: int, policy: MediaPolicy) -> tuple[torch.Tensor, dict, float]:
    import torch

    if not frames:
        raise UsageError("the frame list is empty", received=frames, fix="Pass at least one frame")
    info = {k: v for k, v in ele.items() if k not in ("type", "video")}
    # Upstream quirk, kept for parity: each frame goes through fetch_image with image_patch_size=factor,
    # so frames are first resized to multiples of 2*factor (56 for Qwen2.5-VL, 64 for Qwen3-VL).
    images = [fetch_image({"image": frame, **info}, factor, policy=policy) for frame in frames]
    if len({image.size for image in images}) > 1:
        raise UsageError("all frames of a video must resize to the same size",
                         received=sorted({image.size for image in images}), fix="Pass frames of one size")
    nframes = ceil_by_factor(len(images), FRAME_FACTOR)
    images += [images[-1]] * (nframes - len(images))  # pad to an even count with the last frame
    sample_fps = ele.get("sample_fps", 2.0)
    video = torch.stack([torch.from_numpy(np.array(image).transpose(2, 0, 1)) for image in images])
    raw_fps = info.get("raw_fps", sample_fps)
    metadata = dict(fps=raw_fps, frames_indices=list(range(len(video))),
                    total_num_frames=(nframes / sample_fps) * raw_fps)
    return video, metadata, sample_fps


def _warn_if_max_pixels_lowered(ele: dict, nframes: int, factor: int) -> None:
    if "max_pixels" in ele and "resized_height" not in ele:
        _, limit = video_pixel_budget(nframes, factor, min_pixels=ele.get("min_pixels"),
                                      total_pixels=ele.get("total_pixels"))
        if ele["max_pixels"] > limit:
            logger.warning("The given max_pixels[%s] exceeds limit[%s].", ele["max_pixels"], limit)


def _resize_frames(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 TCHW -> float32 TCHW at `size`, matching torchvision's BICUBIC antialiased uint8 resize."""
    import torch
    import torch.nn.functional as F

    if tuple(video.shape[-2:]) == tuple(size):
        return video.float()  # torchvision returns the input unchanged when the size already matches
    out = torch.empty((video.shape[0], video.shape[1], *size), dtype=torch.float32)
    for begin in range(0, video.shape[0], _RESIZE_CHUNK):
        chunk = video[begin:begin + _RESIZE_CHUNK].float()
        resized = F.interpolate(chunk, size=list(size), mode="bicubic", align_corners=False, antialias=True)
        out[begin:begin + _RESIZE_CHUNK] = resized.clamp_(0, 255).round_()  # torchvision rounds back to uint8
    return out


def extract_vision_info(conversations: Conversations) -> list[dict[str, Any]]:
    """Every image/video content element of one conversation or a batch of conversations, in order."""
    if not isinstance(conversations, (list, tuple)) or not conversations:
        raise UsageError("conversations must be a non-empty list of messages (or of conversations)",
                         received=conversations, fix='Pass [{"role": "user", "content": [...]}]')
    batch = [conversations] if isinstance(conversations[0], dict) else conversations
    infos = []
    for conversation in batch:
        for message in conversation:
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            for ele in content:
                if not isinstance(ele, dict):
                    continue
                if ("image" in ele or "image_url" in ele or "video" in ele
                        or ele.get("type", "text") in ("image", "image_url", "video")):
                    infos.append(ele)
    return infos


def process_vision_info(
    conversations: Conversations,
    return_video_kwargs: bool = False,
    return_video_metadata: bool = False,
    image_patch_size: int = 14,
    *,
    policy: MediaPolicy = DEFAULT_MEDIA_POLICY,
) -> tuple:
    """Images and videos of chat messages, prepared like qwen-vl-utils 0.0.14 `process_vision_info`.

    Args:
        conversations: one conversation (list of message dicts) or a batch (list of conversations); content
            elements look like `{"type": "image", "image": ...}` / `{"type": "video", "video": ...}`.
        return_video_kwargs: also return the kwargs for the processor (`do_sample_frames=False`, and
            `fps` = per-video sample rates unless metadata is returned).
        return_video_metadata: each video becomes `(tensor, metadata)` (Qwen3-VL processors want it).
        image_patch_size: 14 for Qwen2/2.5-VL, 16 for Qwen3-VL.
        policy: safety bounds for fetching and decoding.

    Returns:
        `(images, videos)` or `(images, videos, video_kwargs)`; `images` / `videos` are `None` when empty.
    """
    images, videos, sample_fps = [], [], []
    for ele in extract_vision_info(conversations):
        if "image" in ele or "image_url" in ele:
            images.append(fetch_image(ele, image_patch_size=image_patch_size, policy=policy))
        elif "video" in ele:
            video, fps = fetch_video(ele, image_patch_size=image_patch_size, return_video_sample_fps=True,
                                     return_video_metadata=return_video_metadata, policy=policy)
            videos.append(video)
            sample_fps.append(fps)
        else:
            raise UsageError("a vision element needs an image, image_url or video key", received=ele,
                             fix='Use {"type": "image", "image": ...} or {"type": "video", "video": ...}')
    video_kwargs: dict[str, Any] = {"do_sample_frames": False}
    if not return_video_metadata:  # qwen-vl-utils keeps fps only here, for Qwen2.5-VL
        video_kwargs["fps"] = sample_fps
    result = (images or None, videos or None)
    return (*result, video_kwargs) if return_video_kwargs else result
