"""The torch pixel backend of the torchvision-free Qwen video processors (`video_processors.py`).

Owns: `TorchVideoProcessor`, the parts of transformers' `BaseVideoProcessor` + `TorchvisionBackend` that the Qwen
video processors use, in plain torch: decoding (PyAV) and frame sampling, channel layout and RGB conversion,
resizing with `F.interpolate(mode="bicubic", antialias=True)`, fused rescale + normalize, `patchify`, the
`_preprocess` loop and the patch count. Subclasses supply the family rules: `sample_frames` and `target_size`.

Copied in logic from transformers 5.23 (`video_processing_utils.py`, `image_processing_backends.py`,
`models/qwen3_vl/video_processing_qwen3_vl.py`); `tests/test_video_processors.py` keeps the parity.
It knows nothing about a model family's defaults, about registration with `AutoVideoProcessor`, or about mmkit's
models, messages and media loading.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ChannelDimension, PILImageResampling, SizeDict, infer_channel_dimension_format
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

__all__ = ["TorchVideoProcessor"]

# PIL resampling codes -> F.interpolate modes (the ones torchvision maps them to; LANCZOS/BOX/HAMMING have none)
_INTERPOLATION = {
    int(PILImageResampling.BICUBIC): "bicubic",
    int(PILImageResampling.BILINEAR): "bilinear",
    int(PILImageResampling.NEAREST): "nearest-exact",
}


class TorchVideoProcessor(VideoProcessorMixin):
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
