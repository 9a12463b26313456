"""Bytes to pixels: fetch images and videos safely, sample and resize them the qwen-vl-utils way.

Knows nothing about models: callers pass the patch size (`image_patch_size`) where a rule depends on it.
"""
from .fetch import DEFAULT_MEDIA_POLICY, FetchedSource, MediaPolicy, MediaSource, is_public_address, read_source
from .images import ImageSource, image_from_array, load_image, to_rgb
from .resize import (
    FPS,
    FPS_MAX_FRAMES,
    FPS_MIN_FRAMES,
    FRAME_FACTOR,
    IMAGE_MAX_TOKEN_NUM,
    IMAGE_MIN_TOKEN_NUM,
    MAX_RATIO,
    MODEL_SEQ_LEN,
    SPATIAL_MERGE_SIZE,
    VIDEO_MAX_TOKEN_NUM,
    VIDEO_MIN_TOKEN_NUM,
    factor_for,
    image_target_size,
    smart_nframes,
    smart_resize,
    video_frame_range,
    video_pixel_budget,
    video_target_size,
)
from .video import VideoClip, VideoSource, load_video, sample_indices
from .vision_info import extract_vision_info, fetch_image, fetch_video, process_vision_info

__all__ = [
    # fetch.py
    "MediaPolicy",
    "DEFAULT_MEDIA_POLICY",
    "FetchedSource",
    "MediaSource",
    "read_source",
    "is_public_address",
    # images.py
    "ImageSource",
    "load_image",
    "to_rgb",
    "image_from_array",
    # video.py
    "VideoClip",
    "VideoSource",
    "load_video",
    "sample_indices",
    # resize.py
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
    "smart_resize",
    "smart_nframes",
    "video_frame_range",
    "video_pixel_budget",
    "image_target_size",
    "video_target_size",
    # vision_info.py
    "extract_vision_info",
    "fetch_image",
    "fetch_video",
    "process_vision_info",
]
