"""`ImageGenerator`: text-to-image, image-to-image and inpainting with SD 1.5 / SDXL through diffusers.

One loaded checkpoint serves every task: the image-to-image, inpainting and ControlNet pipelines are made
from the loaded one with `from_pipe`, so they share its modules (no second copy in memory), and LoRAs loaded
once apply to all. Every call validates its arguments once, encodes the prompt without the 77-token limit
(`prompts.py`), runs each image with its own `torch.Generator("cpu").manual_seed(seed)` (so image i of a
batch is exactly the single run with its seed, on any device), and returns a
`GenerationResult` whose params reproduce it (`regenerate`).

This module orchestrates; loading, scheduler names, prompt encoding and metadata live in their modules.
ControlNet and LoRA support is imported lazily from `controlnet.py` and `lora.py`.
"""

from __future__ import annotations

import inspect
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from .. import __version__
from ..exceptions import DeviceError, UsageError
from .loading import LoadedCheckpoint, load_checkpoint, weights_sha256
from .prompts import encode_prompts
from .result import ControlSummary, GenerationParams, GenerationResult, GenerationTimings, Task, read_generation_params
from .schedulers import a1111_sampler_name, make_scheduler

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["ImageGenerator"]

_DEFAULTS = {"sd15": {"size": 512, "guidance": 7.5}, "sdxl": {"size": 1024, "guidance": 5.0}}
_TASK_PIPELINES = {
    ("sd15", "image_to_image"): "StableDiffusionImg2ImgPipeline",
    ("sd15", "inpaint"): "StableDiffusionInpaintPipeline",
    ("sdxl", "image_to_image"): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "inpaint"): "StableDiffusionXLInpaintPipeline",
}


@dataclass(frozen=True)
class _Request:
    """One validated-at-entry call, as the public methods received it."""

    task: Task
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


@contextmanager
def _quiet_dtype_cast_warning():
    """diffusers warns on every `module.to(dtype)` of a model declaring fp32 modules (even an empty list);
    from_pipe and the SDXL VAE upcast trigger it on every call without anything being wrong."""
    from diffusers.utils import logging as diffusers_logging

    log = diffusers_logging.get_logger("diffusers.models.modeling_utils")
    level = log.level
    log.setLevel(diffusers_logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _resolve_seeds(seed: int | Sequence[int] | None, num_images: int) -> tuple[int, ...]:
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


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value % 8:
        nearest = max(8, int(value) // 8 * 8) if isinstance(value, (int, float)) and not isinstance(value, bool) else 512
        raise UsageError(f"{name} must be a positive multiple of 8", received=value, fix=f"Use e.g. {nearest}")
    return value


def _as_rgb(image: Any, what: str) -> Image.Image:
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        from ..media.images import load_image  # the media layer owns decoding and its limits

        image = load_image(image)
    if not isinstance(image, Image.Image):
        raise UsageError(f"{what} must be a PIL image or a path", received=type(image).__name__)
    return image.convert("RGB")


def _prepare_mask(mask: Any, size: tuple[int, int], *, resize: bool, dilate: int, blur: int, pipe: Any):
    from PIL import Image, ImageFilter

    if isinstance(mask, (str, os.PathLike)):
        mask = _as_rgb(mask, "mask")
    if not isinstance(mask, Image.Image):
        raise UsageError("mask must be a PIL image or a path (white = repaint)", received=type(mask).__name__)
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


class ImageGenerator:
    """Generate and edit images with one SD 1.5 or SDXL checkpoint. Build it with `from_pretrained`."""

    def __init__(self, loaded: LoadedCheckpoint, *, allow_pickle: bool = False, progress: bool = True) -> None:
        self._loaded = loaded
        self._pipe = loaded.pipe
        self._scheduler_config = dict(loaded.pipe.scheduler.config)
        self._scheduler_cls = type(loaded.pipe.scheduler)
        self._allow_pickle = allow_pickle
        self._progress = progress
        self._task_pipes: dict[Any, Any] = {}
        self._controlnets: dict[str, Any] = {}
        self._loras: Any = None
        self._model_hash: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike,
        *,
        device: str = "auto",
        dtype: str = "auto",
        allow_pickle: bool = False,
        progress: bool = True,
        controlnets: Sequence[str | os.PathLike] | dict[str, str | os.PathLike] | None = None,
        revision: str | None = None,
        config: str | os.PathLike | None = None,
    ) -> ImageGenerator:
        """Load a checkpoint.

        Args:
            source: hub id, local diffusers folder, or single original-layout `.safetensors` file. The
                family (SD 1.5 / SDXL) and inpainting are read from the weights.
            device: "auto" (CUDA -> NPU -> MPS -> CPU), or an explicit device.
            dtype: "auto" (bf16 / fp16 on accelerators, fp32 on CPU) or a dtype name.
            allow_pickle: accept pickle weights (`.ckpt/.bin/.pt/.pth`); off by default.
            progress: show progress bars while generating.
            controlnets: ControlNets to add now (sources, or {name: source}).
            revision: hub revision.
            config: single files only: a local diffusers folder with the family's configs and tokenizers
                (needed offline; see `mmkit.generate.loading`).
        """
        loaded = load_checkpoint(
            source, device=device, dtype=dtype, allow_pickle=allow_pickle, revision=revision, config=config,
            progress=progress,
        )
        generator = cls(loaded, allow_pickle=allow_pickle, progress=progress)
        items = controlnets.items() if isinstance(controlnets, dict) else [(None, s) for s in controlnets or []]
        for name, src in items:
            generator.add_controlnet(src, name=name)
        return generator

    # -- what is loaded ------------------------------------------------------------------------------
    @property
    def family(self) -> str:
        """"sd15" or "sdxl"."""
        return self._loaded.info.family

    @property
    def is_inpainting(self) -> bool:
        """True for inpainting checkpoints (UNet with 9 input channels)."""
        return self._loaded.info.is_inpainting

    @property
    def model_id(self) -> str:
        """The hub id, or the resolved local path."""
        return self._loaded.model_id

    @property
    def pipeline(self) -> Any:
        """The loaded diffusers pipeline (shared by every task)."""
        return self._pipe

    @property
    def device(self) -> torch.device:
        return self._loaded.plan.device

    @property
    def model_hash(self) -> str:
        """sha256 of the weights, computed on first use (reads every weight file once)."""
        if self._model_hash is None:
            self._model_hash = weights_sha256(self._loaded.info.weight_files)
        return self._model_hash

    @property
    def controlnets(self) -> list[str]:
        """Names of the added ControlNets, in the order added."""
        return list(self._controlnets)

    @property
    def loras(self) -> Any:
        """The `LoraSet` of this generator (created on first access)."""
        if self._loras is None:
            from .lora import LoraSet

            self._loras = LoraSet(self._pipe)
        return self._loras

    def add_controlnet(self, source: str | os.PathLike, *, name: str | None = None) -> str:
        """Load a ControlNet for this checkpoint's family and return its name (default: the source's name)."""
        from .controlnet import load_controlnet

        model = load_controlnet(source, device=self.device, dtype=self._loaded.plan.dtype, allow_pickle=self._allow_pickle)
        name = name or Path(os.fspath(source)).name or os.fspath(source)
        if name in self._controlnets:
            raise UsageError("A ControlNet with this name is already added", received=name, fix="Pass name=...")
        self._controlnets[name] = model
        self._task_pipes = {k: v for k, v in self._task_pipes.items() if not (isinstance(k, tuple) and k[0] == "control")}
        return name

    # -- memory controls -------------------------------------------------------------------------------
    def enable_attention_slicing(self, slice_size: str | int = "auto") -> None:
        """Compute attention in slices: less memory, a little slower."""
        self._pipe.enable_attention_slicing(slice_size)

    def enable_vae_tiling(self) -> None:
        """Decode (and encode) large images tile by tile."""
        self._pipe.vae.enable_tiling()

    def enable_vae_slicing(self) -> None:
        """Decode a batch one image at a time."""
        self._pipe.vae.enable_slicing()

    def enable_model_cpu_offload(self) -> None:
        """Keep modules on the CPU and move each to the accelerator only while it runs.

        Raises:
            DeviceError: the generator runs on the CPU (there is nothing to offload to).
        """
        if self.device.type == "cpu":
            raise DeviceError(
                "Model CPU offload needs an accelerator; this generator runs on the CPU", received=str(self.device),
                fix="Load with device='cuda' / 'npu', or skip offloading on CPU",
            )
        self._pipe.enable_model_cpu_offload(device=self.device)
        self._task_pipes.clear()

    # -- tasks -----------------------------------------------------------------------------------------
    def text_to_image(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        steps: int = 30,
        guidance_scale: float | None = None,
        guidance_rescale: float = 0.0,
        scheduler: str | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int | Sequence[int] | None = None,
        num_images: int = 1,
        clip_skip: int | None = None,
        original_size: tuple[int, int] | None = None,
        target_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        control: Sequence[Any] | None = None,
    ) -> GenerationResult:
        """Generate images from a prompt.

        Args:
            prompt: the prompt; any length (windows of 75 CLIP tokens are encoded and concatenated).
            negative_prompt: what to steer away from.
            steps: denoising steps.
            guidance_scale: classifier-free guidance; default 7.5 (SD 1.5) / 5.0 (SDXL).
            guidance_rescale: CFG rescale (arXiv 2305.08891), 0 disables.
            scheduler: a name from `list_schedulers()`; None keeps the checkpoint's own scheduler.
            width, height: multiples of 8; default 512 (SD 1.5) / 1024 (SDXL).
            seed: an int (image i gets seed + i), a list with one seed per image, or None (random, recorded).
            num_images: how many images.
            clip_skip: skip this many final CLIP layers.
            original_size, target_size, crops_coords_top_left: SDXL micro-conditioning; sizes default to
                (height, width).
            control: `Control` specs for added ControlNets.
        """
        if self.is_inpainting:
            raise UsageError(
                "This is an inpainting checkpoint; it generates through inpaint()", received=self.model_id,
                fix="Call inpaint(image, mask, prompt), or load a non-inpainting checkpoint",
            )
        size = _DEFAULTS[self.family]["size"]
        width = _check_size("width", size if width is None else width)
        height = _check_size("height", size if height is None else height)
        request = _Request(
            "text_to_image", prompt, negative_prompt, steps, guidance_scale, guidance_rescale, scheduler, width,
            height, seed, num_images, clip_skip, original_size, target_size, crops_coords_top_left, control,
        )
        return self._generate(request, self._pipe, {"width": width, "height": height})

    def image_to_image(
        self,
        image: Any,
        prompt: str,
        *,
        strength: float = 0.8,
        negative_prompt: str | None = None,
        steps: int = 30,
        guidance_scale: float | None = None,
        guidance_rescale: float = 0.0,
        scheduler: str | None = None,
        seed: int | Sequence[int] | None = None,
        num_images: int = 1,
        clip_skip: int | None = None,
        original_size: tuple[int, int] | None = None,
        target_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        control: Sequence[Any] | None = None,
    ) -> GenerationResult:
        """Redraw an image guided by a prompt.

        Args:
            image: a PIL image or path; its width and height must be multiples of 8.
            strength: in (0, 1]: how much noise is added before denoising; about `strength * steps` steps
                run. Near 0 returns the input (after a VAE round trip); 1 ignores it.
            (other arguments as in `text_to_image`)
        """
        if self.is_inpainting:
            raise UsageError("This is an inpainting checkpoint; use inpaint()", received=self.model_id)
        image = _as_rgb(image, "image")
        width, height = _check_size("image width", image.width), _check_size("image height", image.height)
        request = _Request(
            "image_to_image", prompt, negative_prompt, steps, guidance_scale, guidance_rescale, scheduler, width,
            height, seed, num_images, clip_skip, original_size, target_size, crops_coords_top_left, control, strength,
        )
        return self._generate(request, self._task_pipe("image_to_image"), {"image": image, "strength": strength})

    def inpaint(
        self,
        image: Any,
        mask: Any,
        prompt: str,
        *,
        strength: float = 1.0,
        mask_blur: int = 0,
        mask_dilate: int = 0,
        resize_mask: bool = False,
        negative_prompt: str | None = None,
        steps: int = 30,
        guidance_scale: float | None = None,
        guidance_rescale: float = 0.0,
        scheduler: str | None = None,
        seed: int | Sequence[int] | None = None,
        num_images: int = 1,
        clip_skip: int | None = None,
        original_size: tuple[int, int] | None = None,
        target_size: tuple[int, int] | None = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        control: Sequence[Any] | None = None,
    ) -> GenerationResult:
        """Repaint the white part of `mask` in `image`.

        Args:
            image: a PIL image or path; width and height multiples of 8.
            mask: a PIL image or path, white = repaint, black = keep; same size as `image`.
            strength: 1.0 repaints from pure noise; lower keeps more of the masked content.
            mask_blur: Gaussian blur radius for the mask edge (pixels).
            mask_dilate: grow the white area by this many pixels first.
            resize_mask: resize a mask of another size instead of raising.
            (other arguments as in `text_to_image`)
        """
        image = _as_rgb(image, "image")
        width, height = _check_size("image width", image.width), _check_size("image height", image.height)
        pipe = self._pipe if self.is_inpainting else self._task_pipe("inpaint")
        mask_image = _prepare_mask(mask, image.size, resize=resize_mask, dilate=mask_dilate, blur=mask_blur, pipe=pipe)
        request = _Request(
            "inpaint", prompt, negative_prompt, steps, guidance_scale, guidance_rescale, scheduler, width, height,
            seed, num_images, clip_skip, original_size, target_size, crops_coords_top_left, control, strength,
            mask_blur, mask_dilate,
        )
        call = {"image": image, "mask_image": mask_image, "strength": strength, "width": width, "height": height}
        return self._generate(request, pipe, call)

    def regenerate(
        self,
        params: GenerationParams | str | os.PathLike,
        *,
        image: Any = None,
        mask: Any = None,
        control: Sequence[Any] | None = None,
    ) -> GenerationResult:
        """Run a recorded generation again; with the same checkpoint (and LoRAs) the pixels are identical.

        Args:
            params: `GenerationParams`, or a PNG written by `GenerationResult.save` (or by A1111).
            image, mask: the input image (and mask) for image-to-image / inpainting records.
            control: the `Control` specs, for records that used ControlNets (images are not stored).

        Raises:
            UsageError: the record was made with another family / model / LoRA set, or an input is missing.
        """
        if not isinstance(params, GenerationParams):
            params = read_generation_params(params)
        self._check_same_setup(params)
        if params.controls and not control:
            raise UsageError("This record used ControlNets; pass control=[Control(...)] again", received=params.controls)
        common = dict(
            negative_prompt=params.negative_prompt, steps=params.steps, guidance_scale=params.guidance_scale,
            guidance_rescale=params.guidance_rescale, scheduler=params.scheduler, seed=list(params.seeds),
            num_images=len(params.seeds), clip_skip=params.clip_skip, control=control,
        )
        if self.family == "sdxl":
            common.update(original_size=params.original_size, target_size=params.target_size,
                          crops_coords_top_left=params.crops_coords_top_left or (0, 0))
        if params.task == "text_to_image":
            return self.text_to_image(params.prompt, width=params.width, height=params.height, **common)
        if image is None or (params.task == "inpaint" and mask is None):
            raise UsageError(f"Regenerating a {params.task} record needs its input image" +
                             (" and mask" if params.task == "inpaint" else ""), received=params.task)
        if params.task == "image_to_image":
            return self.image_to_image(image, params.prompt, strength=params.strength or 0.8, **common)
        return self.inpaint(image, mask, params.prompt, strength=params.strength or 1.0,
                            mask_blur=params.mask_blur, mask_dilate=params.mask_dilate, **common)

    # -- internals -------------------------------------------------------------------------------------
    def _check_same_setup(self, params: GenerationParams) -> None:
        if params.family and params.family != self.family:
            raise UsageError("The record was made with another model family", received=params.family,
                             fix=f"Load a {params.family} checkpoint")
        if params.model_hash and len(params.model_hash) == 64 and params.model_hash != self.model_hash:
            raise UsageError("The record was made with other weights (model hash differs)",
                             received=params.model_hash[:10], fix=f"Load the checkpoint {params.model!r}")
        if tuple(params.loras) != self._lora_summary():
            raise UsageError("The record used another LoRA set", received=params.loras,
                             fix="Load the same LoRAs with the same weights (generator.loras.load(...))")

    def _lora_summary(self) -> tuple[tuple[str, float], ...]:
        if self._loras is None or not getattr(self._loras, "enabled", True):
            return ()
        return tuple((info.name, float(info.weight)) for info in self._loras.list())

    def _task_pipe(self, task: Task, controls: tuple[int, ...] = ()) -> Any:
        key: Any = ("control", task, controls) if controls else task
        if key not in self._task_pipes:
            if controls:
                from .controlnet import controlnet_pipeline

                models = [list(self._controlnets.values())[i] for i in controls]
                pipe = controlnet_pipeline(self._pipe, models, task)
            elif task == "text_to_image":
                return self._pipe
            else:
                import diffusers

                # from_pipe casts the shared modules to `dtype`; without it, to float32 (upcasting a half base).
                with _quiet_dtype_cast_warning():
                    cls = getattr(diffusers, _TASK_PIPELINES[(self.family, task)])
                    pipe = cls.from_pipe(self._pipe, dtype=self._loaded.plan.dtype)
            pipe.set_progress_bar_config(disable=not self._progress)
            self._task_pipes[key] = pipe
        return self._task_pipes[key]

    def _controls(self, task: Task, control: Sequence[Any], width: int, height: int) -> tuple[Any, dict, tuple]:
        from .controlnet import control_call_kwargs

        if not self._controlnets:
            raise UsageError("control= was given but no ControlNet is added", fix="Call add_controlnet(source) first")
        names = self.controlnets
        indices, kwargs = control_call_kwargs(list(control), names, width, height, task)
        summaries = tuple(
            ControlSummary(model=c.model if isinstance(c.model, str) else names[c.model], scale=c.scale,
                           start=c.start, end=c.end, preprocess=c.preprocess)
            for c in control
        )
        return self._task_pipe(task, tuple(indices)), kwargs, summaries

    def _validate(self, r: _Request) -> tuple[float, tuple[int, ...]]:
        if not isinstance(r.prompt, str) or not (r.negative_prompt is None or isinstance(r.negative_prompt, str)):
            raise UsageError("prompt and negative_prompt must be strings", received=(r.prompt, r.negative_prompt))
        if isinstance(r.steps, bool) or not isinstance(r.steps, int) or r.steps < 1:
            raise UsageError("steps must be a positive integer", received=r.steps)
        guidance = _DEFAULTS[self.family]["guidance"] if r.guidance_scale is None else float(r.guidance_scale)
        if guidance < 0 or not 0 <= r.guidance_rescale <= 1:
            raise UsageError("guidance_scale must be >= 0 and guidance_rescale in [0, 1]",
                             received={"guidance_scale": guidance, "guidance_rescale": r.guidance_rescale})
        if r.strength is not None and not 0.0 < float(r.strength) <= 1.0:
            raise UsageError("strength must be in (0, 1]", received=r.strength)
        if r.clip_skip is not None and (isinstance(r.clip_skip, bool) or not isinstance(r.clip_skip, int) or r.clip_skip < 0):
            raise UsageError("clip_skip must be None or a non-negative integer", received=r.clip_skip)
        return guidance, _resolve_seeds(r.seed, r.num_images)

    def _generate(self, r: _Request, pipe: Any, call: dict) -> GenerationResult:
        started = time.perf_counter()
        guidance, seeds = self._validate(r)
        summaries: tuple = ()
        if r.control:
            pipe, control_kwargs, summaries = self._controls(r.task, r.control, r.width, r.height)
            call = {**call, **control_kwargs}
        if r.guidance_rescale:
            if "guidance_rescale" not in inspect.signature(pipe.__call__).parameters:
                raise UsageError(f"guidance_rescale is not supported by {type(pipe).__name__}", received=r.guidance_rescale)
            call["guidance_rescale"] = r.guidance_rescale
        micro = {}
        if self.family == "sdxl":  # SDXL micro-conditioning; diffusers' defaults are (height, width) and (0, 0)
            size = (r.height, r.width)
            micro = {"original_size": tuple(r.original_size or size), "target_size": tuple(r.target_size or size),
                     "crops_coords_top_left": tuple(r.crops_coords_top_left)}
        pipe.scheduler = (make_scheduler(r.scheduler, self._scheduler_config) if r.scheduler is not None
                          else self._scheduler_cls.from_config(self._scheduler_config))
        embeds = encode_prompts(pipe, self.family, r.prompt, r.negative_prompt, clip_skip=r.clip_skip)
        prompt_s = time.perf_counter() - started
        # One pipeline call per image, each with its own CPU generator: a batched call draws the same noise but
        # sums some convolutions in another order (off by one uint8 level here and there), and image i must
        # be exactly the single run with seeds[i], which is what regenerate() from its PNG replays.
        images = []
        with _quiet_dtype_cast_warning():
            for seed in seeds:
                images += pipe(**embeds.call_kwargs(), **call, **micro, num_inference_steps=r.steps,
                               guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed),
                               output_type="pil").images
        pipeline_s = time.perf_counter() - started - prompt_s
        params = GenerationParams(
            task=r.task, prompt=r.prompt, negative_prompt=r.negative_prompt, steps=r.steps, guidance_scale=guidance,
            guidance_rescale=r.guidance_rescale, scheduler=r.scheduler, width=r.width, height=r.height, seeds=seeds,
            strength=r.strength, num_images=len(seeds), clip_skip=r.clip_skip, model=self.model_id,
            model_hash=self.model_hash, family=self.family, loras=self._lora_summary(), controls=summaries,
            mask_blur=r.mask_blur, mask_dilate=r.mask_dilate,
            sampler_label=a1111_sampler_name(r.scheduler, pipe.scheduler), mmkit_version=__version__, **micro,
        )
        total = time.perf_counter() - started
        timings = GenerationTimings(prompt_s=prompt_s, pipeline_s=pipeline_s, total_s=total,
                                    per_image_s=total / len(seeds), per_step_s=pipeline_s / (r.steps * len(seeds)))
        return GenerationResult(images=list(images), params=params, timings=timings)
