"""Torchvision-free Qwen2-VL / Qwen3-VL video processors, registered under the upstream class names.

Owns: drop-in replacements for transformers' `Qwen2VLVideoProcessor` and `Qwen3VLVideoProcessor` that need only
torch (resizing with `F.interpolate(mode="bicubic", antialias=True)`, decoding files with PyAV), and
`register_video_processors()`, which makes `AutoProcessor.from_pretrained(folder)` pick them for an unmodified
checkpoint folder whose `video_preprocessor_config.json` names the upstream class.

Why: in transformers 5.23 both upstream classes derive from `BaseVideoProcessor`, which requires torchvision
("Qwen2VLVideoProcessor requires the Torchvision library"), and torchvision cannot be installed beside a CPU
torch here. Everything except the pixel backend is the upstream rule: the two `smart_resize` functions are
imported from transformers itself, and frame sampling, per-frame pixel caps, patchify and patch counts are
copied from `models/qwen2_vl/video_processing_qwen2_vl.py` and `models/qwen3_vl/video_processing_qwen3_vl.py`
(5.23). `tests/test_video_processors.py` keeps the parity. If torchvision imports and works, nothing is replaced.

It knows nothing about mmkit's models, messages or media loading.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    ChannelDimension,
    PILImageResampling,
    SizeDict,
    infer_channel_dimension_format,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as qwen2_smart_resize
from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
    Qwen3VLVideoProcessorInitKwargs,
)
from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as qwen3_smart_resize
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import (
    VideoMetadata,
    group_videos_by_shape,
    is_valid_video,
    load_video,
    make_batched_metadata,
    make_batched_videos,
    reorder_videos,
)

from .. import _torchvision_guard

__all__ = ["Qwen2VLVideoProcessor", "Qwen3VLVideoProcessor", "register_video_processors"]


# PIL resampling codes -> F.interpolate modes (the ones torchvision maps them to; LANCZOS/BOX/HAMMING have none)
_INTERPOLATION = {
    int(PILImageResampling.BICUBIC): "bicubic",
    int(PILImageResampling.BILINEAR): "bilinear",
    int(PILImageResampling.NEAREST): "nearest-exact",
}


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


class _TorchVideoProcessor(VideoProcessorMixin):
    """The parts of `BaseVideoProcessor` + `TorchvisionBackend` the Qwen video processors use, in plain torch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_attributes(**kwargs)  # what TorchvisionBackend.__init__ does

    @property
    def backend(self) -> str:
        return "torch"

    # -- decoding and frame sampling (upstream BaseVideoProcessor._decode_and_sample_videos) -------------------
    def _decode_and_sample_videos(
        self,
        videos: Any,
        video_metadata: Any,
        do_sample_frames: bool | None = None,
        sample_indices_fn: Callable | None = None,
    ) -> tuple[list, list[VideoMetadata]]:
        videos = make_batched_videos(videos)
        video_metadata = make_batched_metadata(videos, video_metadata=video_metadata)
        # Only sample frames if an array video is passed, otherwise first decode -> then sample (upstream rule)
        if is_valid_video(videos[0]) and do_sample_frames:
            sampled_videos, sampled_metadata = [], []
            for video, metadata in zip(videos, video_metadata):
                indices = sample_indices_fn(metadata=metadata)
                metadata.frames_indices = indices
                sampled_videos.append(video[indices])
                sampled_metadata.append(metadata)
            return sampled_videos, sampled_metadata
        if not is_valid_video(videos[0]):
            if isinstance(videos[0], list):
                if do_sample_frames:
                    raise ValueError(
                        "Sampling frames from a list of images is not supported! Set `do_sample_frames=False`."
                    )
                videos = [torch.stack([_frame_to_tensor(frame) for frame in frames]) for frames in videos]
            else:  # paths / URLs: PyAV instead of upstream's torchcodec-or-torchvision decoder
                decoded = [load_video(str(v), backend="pyav", sample_indices_fn=sample_indices_fn) for v in videos]
                videos = [video for video, _ in decoded]
                video_metadata = [metadata for _, metadata in decoded]
        return videos, video_metadata

    def _prepare_input_videos(
        self,
        videos: list,
        do_convert_rgb: bool | None = None,
        input_data_format: str | ChannelDimension | None = None,
        device: str | None = None,
    ) -> list[torch.Tensor]:
        processed = []
        for video in videos:
            if isinstance(video, np.ndarray):
                video = torch.from_numpy(video).contiguous()
            if input_data_format is None:
                input_data_format = infer_channel_dimension_format(video)
            if input_data_format == ChannelDimension.LAST:
                video = video.permute(0, 3, 1, 2).contiguous()
            if do_convert_rgb:
                video = self.convert_to_rgb(video)
            if device is not None:
                video = video.to(device)
            processed.append(video)
        return processed

    def convert_to_rgb(self, video: torch.Tensor) -> torch.Tensor:
        """Grey (1 channel) -> RGB by repetition; RGBA -> RGB over white, as torchvision's backend does."""
        if video.shape[-3] == 1:
            return video.expand(*video.shape[:-3], 3, *video.shape[-2:])
        if video.shape[-3] == 4:
            was_uint8 = video.dtype == torch.uint8
            x = video.float() / 255.0 if was_uint8 else video.float()
            rgb = x[..., :3, :, :] * x[..., 3:, :, :] + (1 - x[..., 3:, :, :])
            return (rgb * 255.0).round().clamp(0, 255).to(torch.uint8) if was_uint8 else rgb.to(video.dtype)
        return video

    # -- pixels --------------------------------------------------------------------------------------------
    def resize_frames(self, videos: torch.Tensor, height: int, width: int, resample: Any = None) -> torch.Tensor:
        """Resize (..., C, H, W) with `F.interpolate` (bicubic + antialias by default, as torchvision's
        `resize(..., antialias=True)`); uint8 input is rounded and clamped back to integer levels as torchvision's
        uint8 path does, but kept as float (rescale/normalize follow)."""
        if tuple(videos.shape[-2:]) == (height, width):
            return videos
        mode = _INTERPOLATION.get(int(resample) if resample is not None else int(PILImageResampling.BICUBIC))
        if mode is None:
            raise ValueError(f"resample={resample!r} is not supported without torchvision; use bicubic or bilinear.")
        lead = videos.shape[:-3]
        flat = videos.reshape(-1, *videos.shape[-3:]).float()
        if mode == "nearest-exact":
            out = F.interpolate(flat, size=(height, width), mode=mode)
        else:
            out = F.interpolate(flat, size=(height, width), mode=mode, align_corners=False, antialias=True)
        if videos.dtype == torch.uint8:
            out = out.round().clamp(0, 255)
        return out.reshape(*lead, *out.shape[-3:])

    def rescale_and_normalize(
        self,
        images: torch.Tensor,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | list[float] | tuple[float, ...],
        image_std: float | list[float] | tuple[float, ...],
    ) -> torch.Tensor:
        """Fused rescale + normalize over the channel axis (-3), as TorchvisionBackend.rescale_and_normalize."""
        images = images.to(torch.float32)
        if do_rescale:
            images = images * rescale_factor
        if do_normalize:
            shape = (-1, 1, 1)
            mean = torch.as_tensor(image_mean, dtype=torch.float32, device=images.device).reshape(shape)
            std = torch.as_tensor(image_std, dtype=torch.float32, device=images.device).reshape(shape)
            images = (images - mean) / std
        return images

    @staticmethod
    def patchify(
        videos: torch.Tensor, patch_size: int, merge_size: int, temporal_patch_size: int
    ) -> tuple[torch.Tensor, int, int, int]:
        """Upstream `patchify` (identical in both families): (B, T, C, H, W) -> (B, grid_t*grid_h*grid_w, dim)."""
        batch_size, num_frames, channel, resized_height, resized_width = videos.shape
        if pad := -num_frames % temporal_patch_size:  # repeat the last frame up to a whole temporal patch
            repeats = videos[:, -1:].expand(-1, pad, -1, -1, -1)
            videos = torch.cat((videos, repeats), dim=1)
            num_frames += pad
        grid_t = num_frames // temporal_patch_size
        grid_h, grid_w = resized_height // patch_size, resized_width // patch_size
        patches = videos.reshape(
            batch_size, grid_t, temporal_patch_size, channel,
            grid_h // merge_size, merge_size, patch_size,
            grid_w // merge_size, merge_size, patch_size,
        )  # fmt: skip
        patches = patches.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
        flat = patches.reshape(batch_size, grid_t * grid_h * grid_w, channel * temporal_patch_size * patch_size**2)
        return flat, grid_t, grid_h, grid_w

    def target_size(
        self,
        num_frames: int,
        height: int,
        width: int,
        *,
        size: SizeDict,
        factor: int,
        temporal_factor: int,
        cap_pixels_per_frame: bool,
    ) -> tuple[int, int]:
        """(height, width) every frame of a video of this size is resized to: the family's upstream rule."""
        raise NotImplementedError

    def _preprocess(
        self,
        videos: list[torch.Tensor],
        do_resize: bool,
        size: SizeDict,
        resample: Any,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: Any,
        image_std: Any,
        patch_size: int | None = None,
        temporal_patch_size: int | None = None,
        merge_size: int | None = None,
        cap_pixels_per_frame: bool | None = None,
        return_tensors: Any = None,
        **kwargs: Any,
    ) -> BatchFeature:
        # Upstream `_preprocess` of both families, with the deprecation warning's default (False) made explicit.
        cap = bool(cap_pixels_per_frame)
        grouped, grouped_index = group_videos_by_shape(videos)
        resized_grouped = {}
        for shape, stacked in grouped.items():
            if do_resize:
                if not size.shortest_edge or not size.longest_edge:
                    raise ValueError(f"`size` must contain 'shortest_edge' and 'longest_edge' keys but got {size}.")
                num_frames, (height, width) = stacked.shape[1], stacked.shape[-2:]
                new_h, new_w = self.target_size(
                    num_frames, height, width, size=size, factor=patch_size * merge_size,
                    temporal_factor=temporal_patch_size, cap_pixels_per_frame=cap,
                )  # fmt: skip
                stacked = self.resize_frames(stacked, new_h, new_w, resample)
            resized_grouped[shape] = stacked
        resized = reorder_videos(resized_grouped, grouped_index)

        grouped, grouped_index = group_videos_by_shape(resized)
        patches_grouped, grids_grouped = {}, {}
        for shape, stacked in grouped.items():
            stacked = self.rescale_and_normalize(
                stacked, do_rescale, rescale_factor, do_normalize, image_mean, image_std
            )
            patches, grid_t, grid_h, grid_w = self.patchify(stacked, patch_size, merge_size, temporal_patch_size)
            patches_grouped[shape] = patches
            grids_grouped[shape] = [[grid_t, grid_h, grid_w]] * len(stacked)
        processed = reorder_videos(patches_grouped, grouped_index)
        grids = reorder_videos(grids_grouped, grouped_index)
        return BatchFeature(
            data={"pixel_values_videos": torch.cat(processed, dim=0), "video_grid_thw": torch.tensor(grids)},
            tensor_type=return_tensors,
        )

    _count_applies_cap = True

    def get_num_of_video_patches(
        self, num_frames: int, height: int, width: int, videos_kwargs: dict | None = None
    ) -> int:
        """Number of vision patches for a video of this size (upstream `get_num_of_video_patches`)."""
        videos_kwargs = videos_kwargs or {}
        size = videos_kwargs.get("size", None) or self.size
        size = size if isinstance(size, SizeDict) else SizeDict(**dict(size))
        patch_size = videos_kwargs.get("patch_size", None) or self.patch_size
        merge_size = videos_kwargs.get("merge_size", None) or self.merge_size
        temporal_patch_size = videos_kwargs.get("temporal_patch_size", None) or self.temporal_patch_size
        cap = self._count_applies_cap and (videos_kwargs.get("cap_pixels_per_frame", None) or self.cap_pixels_per_frame)
        resized_height, resized_width = self.target_size(
            num_frames, height, width, size=size, factor=patch_size * merge_size,
            temporal_factor=temporal_patch_size, cap_pixels_per_frame=bool(cap),
        )  # fmt: skip
        grid_h, grid_w = resized_height // patch_size, resized_width // patch_size
        grid_t = (num_frames + -num_frames % temporal_patch_size) // temporal_patch_size
        return grid_t * grid_h * grid_w


def _frame_to_tensor(frame: Any) -> torch.Tensor:
    """One PIL image / HWC or CHW array or tensor -> CHW tensor (list-of-frames videos)."""
    if hasattr(frame, "convert"):  # PIL
        frame = np.asarray(frame.convert("RGB"))
    tensor = torch.from_numpy(np.ascontiguousarray(frame)) if isinstance(frame, np.ndarray) else frame
    if tensor.ndim == 3 and tensor.shape[-1] in (1, 3, 4) and tensor.shape[0] not in (1, 3, 4):
        tensor = tensor.permute(2, 0, 1)
    return tensor.contiguous()


class Qwen2VLVideoProcessor(_TorchVideoProcessor):
    """Torch-only `Qwen2VLVideoProcessor` (Qwen2-VL, Qwen2.5-VL): same config, sampling, sizes and patches."""

    resample = PILImageResampling.BICUBIC
    size = {"shortest_edge": 128 * 28 * 28, "longest_edge": 28 * 28 * 768}
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    patch_size = 14
    temporal_patch_size = 2
    merge_size = 2
    min_frames = 4
    max_frames = 768
    do_sample_frames = False  # upstream: "Set to False for BC"
    cap_pixels_per_frame = None
    max_video_tokens = 128000
    valid_kwargs = Qwen2VLVideoProcessorInitKwargs
    model_input_names = ["pixel_values_videos", "video_grid_thw"]
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
        """Upstream Qwen2VLVideoProcessor.sample_frames, verbatim in logic."""
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


class Qwen3VLVideoProcessor(_TorchVideoProcessor):
    """Torch-only `Qwen3VLVideoProcessor`: fps=2 sampling by default, 24 fps assumed without metadata."""

    resample = PILImageResampling.BICUBIC
    size = {"shortest_edge": 128 * 32 * 32, "longest_edge": 32 * 32 * 768}
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    patch_size = 16
    temporal_patch_size = 2
    merge_size = 2
    min_frames = 4
    max_frames = 768
    do_sample_frames = True
    cap_pixels_per_frame = None
    max_video_tokens = 768
    valid_kwargs = Qwen3VLVideoProcessorInitKwargs
    model_input_names = ["pixel_values_videos", "video_grid_thw"]
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
