"""ControlNet conditioning for Stable Diffusion 1.5 / XL: what a control is, loading nets, building the pipeline.

Owns: the `Control` spec (image, which net, scale, guidance window, preprocessing), `load_controlnet` (hub id,
diffusers folder, single file; safetensors only unless `allow_pickle=True`), `controlnet_pipeline` (the matching
diffusers ControlNet pipeline built with `from_pipe`, so the UNet, VAE, text encoders, scheduler and LoRA
adapters are shared, not copied; `MultiControlNetModel` for several nets) and `control_call_kwargs` (the
pipeline call arguments for a list of controls).

diffusers does the rest: resizing control images (`control_image_processor`), classifier-free-guidance
duplication, per-step keep masks from `control_guidance_start/end` (a net acts at step i of N when
`start <= i/N` and `(i+1)/N <= end`), scaling residuals by `controlnet_conditioning_scale`. This module knows
nothing about prompts, schedulers, LoRA or result files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..exceptions import UsageError
from .preprocessors import PREPROCESSORS, prepare_control_image
from .quiet_logs import without_empty_fp32_warning
from .sources import resolve_source, unavailable, use_safetensors, weight_files

__all__ = ["Control", "ControlTask", "load_controlnet", "controlnet_pipeline", "control_call_kwargs"]

ControlTask = Literal["text_to_image", "image_to_image", "inpaint"]
_TASKS = ("text_to_image", "image_to_image", "inpaint")


@dataclass(frozen=True)
class Control:
    """One ControlNet condition for a generation call.

    Attributes:
        image: the control input: a finished map (depth, pose, scribble, edges) or, with `preprocess`, a photo.
            PIL image, uint8 array, path, URL or bytes (read with `mmkit.media.load_image`).
        model: which loaded ControlNet: its name or its index in load order.
        scale: `controlnet_conditioning_scale`, the weight of this net's residuals (0 = no effect).
        start: fraction of the denoising steps after which the net starts acting (0..1).
        end: fraction of the steps after which it stops (start < end <= 1).
        preprocess: `"none"` (use `image` as the map) or `"canny"` (OpenCV Canny edges of `image`).
        canny_low: lower Canny threshold.
        canny_high: upper Canny threshold.
    """

    image: Any
    model: str | int = 0
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    preprocess: Literal["none", "canny"] = "none"
    canny_low: int = 100
    canny_high: int = 200

    def __post_init__(self) -> None:
        if self.image is None:
            raise UsageError("Control needs an image", received=None, fix="Pass Control(image=..., ...)")
        if isinstance(self.model, bool) or not isinstance(self.model, (str, int)) or (
            isinstance(self.model, int) and self.model < 0
        ):
            raise UsageError("Control.model must be a ControlNet name or a non-negative index", received=self.model,
                             fix="Pass the name given at load time, or 0 for the first ControlNet")
        for field in ("scale", "start", "end"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"Control.{field} must be a finite number", received=value,
                                 fix="Use e.g. scale=1.0, start=0.0, end=1.0")
        if not 0.0 <= self.start < self.end <= 1.0:
            raise UsageError("Control guidance window needs 0 <= start < end <= 1", received=(self.start, self.end),
                             fix="Use e.g. start=0.0, end=0.6 to let the net act on the first 60% of the steps")
        if self.preprocess not in PREPROCESSORS:
            raise UsageError(f"Unknown control preprocess {self.preprocess!r}", received=self.preprocess,
                             fix=f"Use one of {sorted(PREPROCESSORS)}")
        if self.preprocess == "canny" and not 0 <= self.canny_low < self.canny_high:
            raise UsageError("Canny thresholds need 0 <= canny_low < canny_high",
                             received=(self.canny_low, self.canny_high), fix="Use e.g. canny_low=100, canny_high=200")

    def preprocessor_options(self) -> dict[str, Any]:
        """Keyword options for this control's preprocessor."""
        return {"low": self.canny_low, "high": self.canny_high} if self.preprocess == "canny" else {}


# 1. loading a net


def _from_single_file(path: Path, dtype: Any) -> Any:
    from diffusers import ControlNetModel

    # A config.json beside the file (a diffusers folder) is used as the config; otherwise diffusers guesses the
    # original repo from the keys and needs its config from the hub (or the local hub cache).
    config = str(path.parent) if (path.parent / "config.json").is_file() else None
    return ControlNetModel.from_single_file(str(path), config=config, dtype=dtype)


def load_controlnet(source: str | Path, *, device: Any, dtype: Any, allow_pickle: bool = False) -> Any:
    """Load a `diffusers.ControlNetModel`.

    Args:
        source: hub id (`"lllyasviel/sd-controlnet-canny"`), diffusers folder (`config.json` + weights), or a
            single `.safetensors` file (original or diffusers layout).
        device: device to move the net to (`"cpu"`, `"cuda"`, a `torch.device`).
        dtype: torch dtype of the weights (use the base pipeline's).
        allow_pickle: also accept `.bin`/`.ckpt`/`.pth` pickle weights (they can run code when loaded).

    Returns:
        The ControlNet in eval mode on `device`.
    """
    from diffusers import ControlNetModel

    found = resolve_source(source, allow_pickle=allow_pickle, what="ControlNet")
    if found.kind == "folder":
        weight_files(found.path, allow_pickle=allow_pickle, what="ControlNet folder")  # the pickle rule
    try:
        if found.kind == "file":
            net = _from_single_file(found.path, dtype)
        else:
            net = ControlNetModel.from_pretrained(found.text if found.kind == "hub" else str(found.path), dtype=dtype,
                                                  use_safetensors=use_safetensors(allow_pickle))
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise unavailable(error, source=found, what="ControlNet",
                          fix="Pass a diffusers ControlNet folder (config.json + safetensors) or a single file "
                          "whose config is available offline") from error
    return net.to(device).eval()


# 2. building the pipeline


def _pipeline_class(base_pipe: Any, task: str) -> type:
    import diffusers

    if task not in _TASKS:
        raise UsageError(f"Unknown ControlNet task {task!r}", received=task, fix=f"Use one of {list(_TASKS)}")
    xl = "text_encoder_2" in base_pipe.components
    names = {
        "text_to_image": "StableDiffusion{}ControlNetPipeline",
        "image_to_image": "StableDiffusion{}ControlNetImg2ImgPipeline",
        "inpaint": "StableDiffusion{}ControlNetInpaintPipeline",
    }
    return getattr(diffusers, names[task].format("XL" if xl else ""))


def controlnet_pipeline(base_pipe: Any, controlnets: list, task: ControlTask) -> Any:
    """The diffusers ControlNet pipeline for `task` over `base_pipe`'s components (shared, not copied).

    Args:
        base_pipe: a loaded Stable Diffusion 1.5 / XL pipeline (any task; its components are reused).
        controlnets: one or more `ControlNetModel`s, in the order the controls will name them.
        task: `"text_to_image"`, `"image_to_image"` or `"inpaint"`.

    Returns:
        A `StableDiffusion[XL]ControlNet[Img2Img|Inpaint]Pipeline`; several nets are wrapped in a
        `MultiControlNetModel`.
    """
    from diffusers import ControlNetModel
    from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

    pipeline_class = _pipeline_class(base_pipe, task)
    if not controlnets or not all(isinstance(net, ControlNetModel) for net in controlnets):
        raise UsageError("controlnet_pipeline needs a non-empty list of ControlNetModel",
                         received=[type(net).__name__ for net in controlnets] if controlnets else controlnets,
                         fix="Load nets with load_controlnet(...) first")
    controlnet = controlnets[0] if len(controlnets) == 1 else MultiControlNetModel(list(controlnets))
    # from_pipe casts the new pipeline to `dtype` (float32 when not given), which would also cast the shared
    # components of base_pipe: pass the base dtype explicitly.
    with without_empty_fp32_warning():
        return pipeline_class.from_pipe(base_pipe, controlnet=controlnet, dtype=base_pipe.dtype)


# 3. call arguments


def _net_index(model: str | int, names: list[str]) -> int:
    if isinstance(model, int):
        if model >= len(names):
            raise UsageError(f"Control.model index {model} is out of range: {len(names)} ControlNet(s) loaded",
                             received=model, fix=f"Loaded ControlNets: {names}")
        return model
    if model not in names:
        raise UsageError(f"No ControlNet named {model!r} is loaded", received=model,
                         fix=f"Loaded ControlNets: {names}")
    return names.index(model)


def control_call_kwargs(
    controls: list[Control], names: list[str], width: int, height: int, task: str
) -> tuple[list[int], dict[str, Any]]:
    """Which nets the controls use, and the ControlNet keyword arguments for the pipeline call.

    Args:
        controls: the controls of one call, in order.
        names: names of the loaded ControlNets, in load order.
        width: generation width in pixels (detectors run at this size; the pipeline resizes other maps).
        height: generation height in pixels.
        task: `"text_to_image"` (control images go to `image=`) or `"image_to_image"` / `"inpaint"`
            (`control_image=`, since `image=` is the init image there).

    Returns:
        `(indices into names, in control order; kwargs with the control image(s),
        controlnet_conditioning_scale, control_guidance_start, control_guidance_end)`. With one control the
        values are scalars, with several they are lists (one entry per net).
    """
    if task not in _TASKS:
        raise UsageError(f"Unknown ControlNet task {task!r}", received=task, fix=f"Use one of {list(_TASKS)}")
    if not controls or not all(isinstance(c, Control) for c in controls):
        raise UsageError("controls must be a non-empty list of Control", received=controls,
                         fix="Pass [Control(image=..., model='canny')]")
    if not names:
        raise UsageError("No ControlNet is loaded", received=names, fix="Load one before passing controls")
    for value, label in ((width, "width"), (height, "height")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"{label} must be a positive int", received=value, fix="Use e.g. 512")
    indices = [_net_index(control.model, names) for control in controls]
    images = [
        prepare_control_image(c.image, c.preprocess, width=width, height=height, **c.preprocessor_options())
        for c in controls
    ]

    def one_or_list(values: list) -> Any:
        return values[0] if len(values) == 1 else values

    kwargs = {
        ("image" if task == "text_to_image" else "control_image"): one_or_list(images),
        "controlnet_conditioning_scale": one_or_list([float(c.scale) for c in controls]),
        "control_guidance_start": one_or_list([float(c.start) for c in controls]),
        "control_guidance_end": one_or_list([float(c.end) for c in controls]),
    }
    return indices, kwargs
