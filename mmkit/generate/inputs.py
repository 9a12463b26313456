"""The inputs of one generation call, checked at the entry point: images, masks, sizes, seeds, the request.

Owns: `load_rgb` (any image source -> RGB PIL through `mmkit.media.load_image`, so paths, URLs, `data:`,
bytes and uint8 arrays work under the default `MediaPolicy` and failures are `MediaError`s), `prepare_mask`,
`check_size`, `resolve_seeds` (one seed per image), the family defaults, `Request` with its checks
(`check_request`) and SDXL micro-conditioning, and `replay_options` (a recorded call's options, for
`regenerate`). Used by `generator`, and by `preprocessors` for control images.
Knows nothing about pipelines beyond the mask blur it borrows from one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Sequence

from ..exceptions import UsageError

if TYPE_CHECKING:
    from PIL import Image

    from .result import GenerationParams

__all__ = [
    "FAMILY_DEFAULTS",
    "Request",
    "check_request",
    "check_size",
    "input_image",
    "load_rgb",
    "micro_conditioning",
    "prepare_mask",
    "replay_options",
    "resolve_seeds",
]

# Size and guidance used when the caller gives none: each family's training resolution and usual CFG scale.
FAMILY_DEFAULTS = {"sd15": {"size": 512, "guidance": 7.5}, "sdxl": {"size": 1024, "guidance": 5.0}}


@dataclass(frozen=True)
class Request:
    """One call, as the public method received it (checked by `check_request` before anything runs)."""

    task: Literal["text_to_image", "image_to_image", "inpaint"]
    prompt: str
    negative_prompt: str | None
    steps: int
    guidance_scale: float | None
    guidance_rescale: float
    scheduler: str | None
    width: int
    height: int
    seed: int | Sequence[int] | None
    num_images: int
    clip_skip: int | None
    original_size: tuple[int, int] | None
    target_size: tuple[int, int] | None
    crops_coords_top_left: tuple[int, int]
    control: Sequence[Any] | None
    strength: float | None = None
    mask_blur: int = 0
    mask_dilate: int = 0


def load_rgb(image: Any, what: str) -> Image.Image:
    """An RGB PIL image from a PIL image, a uint8 array, a path, a `file://` / `http(s)://` / `data:` URL or bytes.

    Raises:
        UsageError: another type (the message names `what`), or an array that is not uint8 HWC.
        MediaError: the source cannot be read or decoded.
    """
    import numpy as np
    from PIL import Image

    from ..media.images import load_image

    if not isinstance(image, (Image.Image, np.ndarray, str, os.PathLike, bytes, bytearray, memoryview)):
        raise UsageError(f"{what} must be a PIL image, a uint8 array, a path, a URL or bytes",
                         received=type(image).__name__, fix="Pass e.g. PIL.Image.open(path) or the path itself")
    return load_image(image)


def check_size(name: str, value: Any) -> int:
    """`value` if it is a positive multiple of 8 (what the VAE's 8x down-sampling needs), else `UsageError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value % 8:
        nearest = max(8, int(value) // 8 * 8) if isinstance(value, (int, float)) and not isinstance(value, bool) else 512
        raise UsageError(f"{name} must be a positive multiple of 8", received=value, fix=f"Use e.g. {nearest}")
    return value


def input_image(image: Any) -> tuple[Image.Image, int, int]:
    """(RGB image, width, height) of an image-to-image / inpainting input; both sides multiples of 8."""
    rgb = load_rgb(image, "image")
    return rgb, check_size("image width", rgb.width), check_size("image height", rgb.height)


def prepare_mask(mask: Any, size: tuple[int, int], *, resize: bool, dilate: int, blur: int, pipe: Any) -> Image.Image:
    """The inpainting mask as mode "L" at `size` (white = repaint), grown by `dilate` and blurred by `blur` pixels.

    A PIL mask is converted as it is (`convert("L")`); other sources go through `load_rgb`. The blur is the
    pipeline's own (`mask_processor.blur`, a Gaussian blur).
    """
    from PIL import Image, ImageFilter

    if not isinstance(mask, Image.Image):
        mask = load_rgb(mask, "mask (white = repaint)")
    mask = mask.convert("L")
    if mask.size != size:
        if not resize:
            raise UsageError(
                "The mask must have the image's size", received={"mask": mask.size, "image": size},
                fix="Resize the mask, or pass resize_mask=True",
            )
        mask = mask.resize(size, Image.Resampling.NEAREST)
    for name, value in (("mask_dilate", dilate), ("mask_blur", blur)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{name} must be a non-negative integer (pixels)", received=value)
    if dilate:
        mask = mask.filter(ImageFilter.MaxFilter(2 * dilate + 1))
    if blur:
        mask = pipe.mask_processor.blur(mask, blur_factor=blur)
    return mask


def resolve_seeds(seed: int | Sequence[int] | None, num_images: int) -> tuple[int, ...]:
    """One seed per image: `seed + i` for an int, the list as given, or random (and recorded) for None."""
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise UsageError("num_images must be a positive integer", received=num_images)
    if seed is None:
        first = secrets.randbelow(2**32)
        return tuple(first + i for i in range(num_images))
    if isinstance(seed, int) and not isinstance(seed, bool):
        seeds = tuple(seed + i for i in range(num_images))
    elif isinstance(seed, (list, tuple)) and all(isinstance(s, int) and not isinstance(s, bool) for s in seed):
        if num_images not in (1, len(seed)) or not seed:
            raise UsageError(
                "A list of seeds needs one seed per image", received={"seed": list(seed), "num_images": num_images},
                fix="Pass len(seed) == num_images, or leave num_images at 1",
            )
        seeds = tuple(seed)
    else:
        raise UsageError("seed must be None, an int, or a list of ints", received=seed)
    if any(s < 0 or s >= 2**63 for s in seeds):
        raise UsageError("Seeds must be in [0, 2**63)", received=seeds)
    return seeds


def check_request(r: Request, family: str) -> tuple[float, tuple[int, ...]]:
    """Check the scalar options of `r`; return (guidance scale with the family default applied, seeds)."""
    if not isinstance(r.prompt, str) or not (r.negative_prompt is None or isinstance(r.negative_prompt, str)):
        raise UsageError("prompt and negative_prompt must be strings", received=(r.prompt, r.negative_prompt))
    if isinstance(r.steps, bool) or not isinstance(r.steps, int) or r.steps < 1:
        raise UsageError("steps must be a positive integer", received=r.steps)
    guidance = FAMILY_DEFAULTS[family]["guidance"] if r.guidance_scale is None else float(r.guidance_scale)
    if guidance < 0 or not 0 <= r.guidance_rescale <= 1:
        raise UsageError("guidance_scale must be >= 0 and guidance_rescale in [0, 1]",
                         received={"guidance_scale": guidance, "guidance_rescale": r.guidance_rescale})
    if r.strength is not None and not 0.0 < float(r.strength) <= 1.0:
        raise UsageError("strength must be in (0, 1]", received=r.strength)
    if r.clip_skip is not None and (isinstance(r.clip_skip, bool) or not isinstance(r.clip_skip, int) or r.clip_skip < 0):
        raise UsageError("clip_skip must be None or a non-negative integer", received=r.clip_skip)
    return guidance, resolve_seeds(r.seed, r.num_images)


def micro_conditioning(r: Request, family: str) -> dict[str, tuple[int, int]]:
    """SDXL's size / crop conditioning (empty for SD 1.5); sizes default to (height, width) as in diffusers."""
    if family != "sdxl":
        return {}
    size = (r.height, r.width)
    return {"original_size": tuple(r.original_size or size), "target_size": tuple(r.target_size or size),
            "crops_coords_top_left": tuple(r.crops_coords_top_left)}


def replay_options(params: GenerationParams, family: str, control: Sequence[Any] | None) -> dict[str, Any]:
    """The keyword arguments shared by the three tasks that replay a recorded call (`ImageGenerator.regenerate`)."""
    options: dict[str, Any] = dict(
        negative_prompt=params.negative_prompt, steps=params.steps, guidance_scale=params.guidance_scale,
        guidance_rescale=params.guidance_rescale, scheduler=params.scheduler, seed=list(params.seeds),
        num_images=len(params.seeds), clip_skip=params.clip_skip, control=control,
    )
    if family == "sdxl":
        options.update(original_size=params.original_size, target_size=params.target_size,
                       crops_coords_top_left=params.crops_coords_top_left or (0, 0))
    return options
