"""Torchvision-free Qwen2-VL / Qwen3-VL video processors, registered under the upstream class names.

Owns: drop-in replacements for transformers' `Qwen2VLVideoProcessor` and `Qwen3VLVideoProcessor` (their defaults,
frame sampling and frame-size rules), and `register_video_processors()`, which makes
`AutoProcessor.from_pretrained(folder)` pick them for an unmodified checkpoint folder whose
`video_preprocessor_config.json` names the upstream class. The pixel work (decode, resize, normalize, patchify)
is `video_backend.TorchVideoProcessor`, in plain torch.

Why: in transformers 5.23 both upstream classes derive from `BaseVideoProcessor`, which requires torchvision
("Qwen2VLVideoProcessor requires the Torchvision library"), and torchvision cannot be installed beside a CPU
torch here. Everything except the pixel backend is the upstream rule: the two `smart_resize` functions are
imported from transformers itself, and frame sampling, per-frame pixel caps and patch counts are copied from
`models/qwen2_vl/video_processing_qwen2_vl.py` and `models/qwen3_vl/video_processing_qwen3_vl.py` (5.23).
These are transformers' rules, not qwen-vl-utils' (`mmkit.media.resize`): the two differ in integers (see
`Qwen2VLVideoProcessor.sample_frames`), so neither calls the other. `tests/test_video_processors.py` keeps the
parity. If torchvision imports and works, nothing is replaced.

It knows nothing about mmkit's models, messages or media loading.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from transformers.image_utils import (
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    PILImageResampling,
    SizeDict,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as qwen2_smart_resize
from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
    Qwen3VLVideoProcessorInitKwargs,
)
from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as qwen3_smart_resize
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata

from .. import _torchvision_guard
from .video_backend import TorchVideoProcessor

__all__ = ["Qwen2VLVideoProcessor", "Qwen3VLVideoProcessor", "register_video_processors"]


class Qwen2VLVideoProcessorInitKwargs(VideosKwargs, total=False):
    """The upstream `Qwen2VLVideoProcessorInitKwargs` (its module imports torchvision, so it is restated here)."""

    min_pixels: int
    max_pixels: int
    patch_size: int
    temporal_patch_size: int
    merge_size: int
    min_frames: int
    max_frames: int
    cap_pixels_per_frame: bool
    max_video_tokens: int



class _QwenVideoProcessor(TorchVideoProcessor):
    """The class defaults upstream's two Qwen video processors share (each upstream class restates them)."""

    resample = PILImageResampling.BICUBIC
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    temporal_patch_size = 2
    merge_size = 2
    min_frames = 4
    max_frames = 768
    cap_pixels_per_frame = None
    model_input_names = ["pixel_values_videos", "video_grid_thw"]


class Qwen2VLVideoProcessor(_QwenVideoProcessor):
    """Torch-only `Qwen2VLVideoProcessor` (Qwen2-VL, Qwen2.5-VL): same config, sampling, sizes and patches."""

    size = {"shortest_edge": 128 * 28 * 28, "longest_edge": 28 * 28 * 768}
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    patch_size = 14
    do_sample_frames = False  # upstream: "Set to False for BC"
    max_video_tokens = 128000
    valid_kwargs = Qwen2VLVideoProcessorInitKwargs
    # Upstream quirk kept for parity: Qwen2VL's `get_num_of_video_patches` ignores `cap_pixels_per_frame` (its
    # `resize` applies it), so with the cap on, that count overstates the processed grid. Prompts are unaffected:
    # they are expanded from the processed `video_grid_thw`.
    _count_applies_cap = False

    def __init__(self, **kwargs: Unpack[Qwen2VLVideoProcessorInitKwargs]) -> None:
        # upstream: min_pixels / max_pixels override size["shortest_edge"] / size["longest_edge"]
        size = kwargs.pop("size", None)
        size = dict(self.size) if size is None else dict(size)
        if (min_pixels := kwargs.pop("min_pixels", None)) is not None:
            size["shortest_edge"] = min_pixels
            size.pop("min_pixels", None)
        if (max_pixels := kwargs.pop("max_pixels", None)) is not None:
            size["longest_edge"] = max_pixels
            size.pop("max_pixels", None)
        super().__init__(size=size, **kwargs)

    def _standardize_kwargs(self, size=None, min_pixels=None, max_pixels=None, **kwargs):  # type: ignore[override]
        if min_pixels is not None or max_pixels is not None:  # upstream's deprecated call-time override
            size_dict = dict(size) if isinstance(size, (dict, SizeDict)) else {}
            if min_pixels is not None:
                size_dict["shortest_edge"] = min_pixels
            if max_pixels is not None:
                size_dict["longest_edge"] = max_pixels
            size = SizeDict(**size_dict)
        return super()._standardize_kwargs(size=size, **kwargs)

    def sample_frames(
        self,
        metadata: VideoMetadata,
        temporal_patch_size: int | None = None,
        min_frames: int | None = None,
        max_frames: int | None = None,
        num_frames: int | None = None,
        fps: int | float | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Upstream Qwen2VLVideoProcessor.sample_frames, verbatim in logic.

        Not `mmkit.media.resize.smart_nframes` (qwen-vl-utils): that rule rounds `min_frames` up to even, does
        not cap an explicit `max_frames` at the frame count and refuses fewer than 2 frames; e.g. 100 frames at
        25 fps, fps=1, min_frames=5 -> 4 frames here, 6 there.
        """
        if fps is not None and num_frames is not None:
            raise ValueError("`num_frames` and `fps` are mutually exclusive arguments, please use only one!")
        num_frames = num_frames if num_frames is not None else self.num_frames
        fps = fps if fps is not None else self.fps
        temporal_patch_size = temporal_patch_size if temporal_patch_size is not None else self.temporal_patch_size
        min_frames = min_frames if min_frames is not None else self.min_frames
        max_frames = max_frames if max_frames is not None else self.max_frames
        total_num_frames = metadata.total_num_frames
        if num_frames is not None:
            # upstream: num_frames = round(num_frames / temporal_patch_size) * temporal_patch_size
            num_frames = round(num_frames / temporal_patch_size) * temporal_patch_size
        elif fps is not None:
            if metadata is None or metadata.fps is None:
                raise ValueError(
                    "Asked to sample `fps` frames per second but no video metadata was provided which is required "
                    "when sampling with `fps`. Pass a `VideoMetadata` with `fps` or use a fixed `num_frames`."
                )
            # upstream:
            #   max_frames = math.floor(min(max_frames, total_num_frames) / temporal_patch_size) * temporal_patch_size
            #   num_frames = total_num_frames / metadata.fps * fps
            #   num_frames = min(max(num_frames, min_frames), max_frames, total_num_frames)
            #   num_frames = math.floor(num_frames / temporal_patch_size) * temporal_patch_size
            max_frames = math.floor(min(max_frames, total_num_frames) / temporal_patch_size) * temporal_patch_size
            num_frames = total_num_frames / metadata.fps * fps
            num_frames = min(max(num_frames, min_frames), max_frames, total_num_frames)
            num_frames = math.floor(num_frames / temporal_patch_size) * temporal_patch_size
        if num_frames is not None and num_frames > total_num_frames:
            raise ValueError(
                f"Video can't be sampled. The inferred `num_frames={num_frames}` exceeds "
                f"`total_num_frames={total_num_frames}`. Decrease `num_frames` or `fps` for sampling."
            )
        if num_frames is not None:
            # upstream: torch.arange(0, total_num_frames, total_num_frames / num_frames).int()
            return torch.arange(0, total_num_frames, total_num_frames / num_frames).int()
        return torch.arange(0, total_num_frames).int()

    def target_size(self, num_frames, height, width, *, size, factor, temporal_factor, cap_pixels_per_frame):
        """Upstream Qwen2VLVideoProcessor.resize's size rule (the qwen-vl-utils total-budget cap when asked)."""
        max_pixels = size.longest_edge
        if cap_pixels_per_frame:
            # upstream: total_pixels = int(self.max_video_tokens * factor * factor * 0.9)
            #           max_pixels = max(min(max_pixels, total_pixels * temporal_factor // num_frames),
            #                            int(size.shortest_edge * 1.05))
            total_pixels = int(self.max_video_tokens * factor * factor * 0.9)
            max_pixels = max(
                min(max_pixels, total_pixels * temporal_factor // num_frames), int(size.shortest_edge * 1.05)
            )
        return qwen2_smart_resize(height, width, factor=factor, min_pixels=size.shortest_edge, max_pixels=max_pixels)


class Qwen3VLVideoProcessor(_QwenVideoProcessor):
    """Torch-only `Qwen3VLVideoProcessor`: fps=2 sampling by default, 24 fps assumed without metadata."""

    size = {"shortest_edge": 128 * 32 * 32, "longest_edge": 32 * 32 * 768}
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD
    patch_size = 16
    do_sample_frames = True
    max_video_tokens = 768
    valid_kwargs = Qwen3VLVideoProcessorInitKwargs
    max_image_size = {"longest_edge": 28 * 28 * 2 * 30000}
    max_duration = None
    num_frames = None
    fps = 2

    def __init__(self, **kwargs: Unpack[Qwen3VLVideoProcessorInitKwargs]) -> None:
        super().__init__(**kwargs)

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: int | float | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Upstream Qwen3VLVideoProcessor.sample_frames, verbatim in logic."""
        if fps is not None and num_frames is not None:
            raise ValueError("`num_frames` and `fps` are mutually exclusive arguments, please use only one!")
        total_num_frames = metadata.total_num_frames
        fps = fps if fps is not None else self.fps
        if num_frames is None and fps is not None:
            if metadata.fps is None:
                metadata.fps = 24  # upstream: "Defaulting to `fps=24`"
            # upstream: num_frames = int(total_num_frames / metadata.fps * fps)
            #           num_frames = min(max(num_frames, self.min_frames), self.max_frames, total_num_frames)
            num_frames = int(total_num_frames / metadata.fps * fps)
            num_frames = min(max(num_frames, self.min_frames), self.max_frames, total_num_frames)
        if num_frames is None:
            num_frames = min(max(total_num_frames, self.min_frames), self.max_frames)
        # upstream: np.linspace(0, total_num_frames - 1, num_frames).round().astype(int)
        return np.linspace(0, total_num_frames - 1, num_frames).round().astype(int)

    def target_size(self, num_frames, height, width, *, size, factor, temporal_factor, cap_pixels_per_frame):
        """Upstream Qwen3VLVideoProcessor.resize's size rule (budget over all frames; per-frame cap when asked)."""
        max_pixels = size.longest_edge
        if cap_pixels_per_frame:
            # upstream: frame_cap = self.max_video_tokens * factor * factor
            #           pixels_per_frame = max(min(frame_cap, size.longest_edge // num_frames),
            #                                  int(size.shortest_edge * 1.05))
            #           max_pixels = pixels_per_frame * num_frames
            frame_cap = self.max_video_tokens * factor * factor
            pixels_per_frame = max(min(frame_cap, size.longest_edge // num_frames), int(size.shortest_edge * 1.05))
            max_pixels = pixels_per_frame * num_frames
        return qwen3_smart_resize(
            num_frames, height, width, temporal_factor=temporal_factor, factor=factor,
            min_pixels=size.shortest_edge, max_pixels=max_pixels,
        )  # fmt: skip


_REGISTERED = False


def _torchvision_works() -> bool:
    from transformers.utils import is_torchvision_available

    return _torchvision_guard.TORCHVISION_USABLE and is_torchvision_available()


def _expose_real_video_classes() -> None:
    """Without torchvision, `transformers.VideoProcessorMixin` is missing and `transformers.AutoVideoProcessor` /
    `VIDEO_PROCESSOR_MAPPING` are import dummies. `ProcessorMixin.__init__` checks a video processor with
    `isinstance(arg, transformers.VideoProcessorMixin)` (via `get_possibly_dynamic_module`), so the real classes
    (which import fine without torchvision) are put back on the top-level module; nothing else changes."""
    import transformers
    from transformers.models.auto import video_processing_auto
    from transformers.utils.import_utils import DummyObject

    real = {
        "VideoProcessorMixin": VideoProcessorMixin,
        "AutoVideoProcessor": video_processing_auto.AutoVideoProcessor,
        "VIDEO_PROCESSOR_MAPPING": video_processing_auto.VIDEO_PROCESSOR_MAPPING,
    }
    for name, obj in real.items():
        current = transformers.__dict__.get(name)
        if current is None or isinstance(current, DummyObject) or type(current) is DummyObject:
            setattr(transformers, name, obj)


def register_video_processors(*, force: bool = False) -> bool:
    """Make `AutoProcessor` / `AutoVideoProcessor` use the torch-only Qwen video processors.

    Registers `Qwen2VLVideoProcessor` for Qwen2-VL / Qwen2.5-VL configs and `Qwen3VLVideoProcessor` for Qwen3-VL
    configs with `AutoVideoProcessor`. transformers resolves a folder's `"video_processor_type"` by class name,
    registered classes first, so unmodified checkpoint folders load these classes. Idempotent.

    Args:
        force: register even when a working torchvision is installed (so is setting the environment variable
            `MMKIT_FORCE_TORCH_VIDEO_PROCESSORS=1`); by default upstream's torchvision classes are left alone then.

    Returns:
        True when the torch-only classes are registered, False when upstream was left alone.
    """
    global _REGISTERED
    if _REGISTERED:
        return True
    if _torchvision_works() and not force and not os.environ.get("MMKIT_FORCE_TORCH_VIDEO_PROCESSORS"):
        return False
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig
    # the real class: without torchvision, `transformers.AutoVideoProcessor` is an import dummy
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    _expose_real_video_classes()
    for config_class, processor_class in (
        (Qwen2VLConfig, Qwen2VLVideoProcessor),
        (Qwen2_5_VLConfig, Qwen2VLVideoProcessor),
        (Qwen3VLConfig, Qwen3VLVideoProcessor),
    ):
        AutoVideoProcessor.register(
            config_class, video_processor_classes={"torchvision": processor_class}, exist_ok=True
        )
    _REGISTERED = True
    return True
