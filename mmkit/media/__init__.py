"""Bytes to pixels: fetch images and videos safely, sample and resize them the qwen-vl-utils way.

Knows nothing about models: callers pass the patch size (`image_patch_size`) where a rule depends on it.
Each submodule lists its public names once, in its own `__all__`; this package re-exports exactly those.
Importing it does not import torch (the functions that need torch import it when called).
"""
from . import fetch, images, resize, video, vision_info
from .fetch import *  # noqa: F403  (names: fetch.__all__)
from .images import *  # noqa: F403
from .resize import *  # noqa: F403
from .video import *  # noqa: F403
from .vision_info import *  # noqa: F403

__all__ = [*fetch.__all__, *images.__all__, *video.__all__, *resize.__all__, *vision_info.__all__]
