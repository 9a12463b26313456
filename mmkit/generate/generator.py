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
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import __version__
from ..exceptions import DeviceError, UsageError
from .inputs import (
    Request, check_request, check_size, input_image, micro_conditioning, prepare_mask, replay_options,
)
from .loading import LoadedCheckpoint, load_checkpoint, weights_sha256
from .prompts import encode_prompts
from .result import ControlSummary, GenerationParams, GenerationResult, GenerationTimings, Task, read_generation_params
from .quiet_logs import without_empty_fp32_warning
from .schedulers import a1111_sampler_name, make_scheduler

__all__ = ["ImageGenerator"]

_TASK_PIPELINES = {
    ("sd15", "image_to_image"): "StableDiffusionImg2ImgPipeline",
    ("sd15", "inpaint"): "StableDiffusionInpaintPipeline",
    ("sdxl", "image_to_image"): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "inpaint"): "StableDiffusionXLInpaintPipeline",
}


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
            progress: show progress bars while loading and generating.
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

            self._loras = LoraSet(self._pipe, progress=self._progress)
        return self._loras

    @property
    def default_size(self) -> int:
        """The checkpoint's native image size, `unet.config.sample_size * vae_scale_factor` (diffusers' rule)."""
        pipe = self._pipe
        return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)

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
            width, height: multiples of 8; default `default_size` (the UNet's native size: 512 for SD 1.5,
                1024 for SDXL, 64 for the shapes-world and tiny models).
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
        size = self.default_size
        width = check_size("width", size if width is None else width)
        height = check_size("height", size if height is None else height)
        request = Request(
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
            image: a PIL image, uint8 array, path, URL (`file://`, `http(s)://`, `data:`) or bytes, read with
                `mmkit.media.load_image`; its width and height must be multiples of 8.
            strength: in (0, 1]: how much noise is added before denoising; about `strength * steps` steps
                run. Near 0 returns the input (after a VAE round trip); 1 ignores it.
            (other arguments as in `text_to_image`)
        """
        if self.is_inpainting:
            raise UsageError("This is an inpainting checkpoint; use inpaint()", received=self.model_id)
        image, width, height = input_image(image)
        request = Request(
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
            image: as in `image_to_image` (PIL image, array, path, URL or bytes); width and height multiples of 8.
            mask: the same kinds of source, white = repaint, black = keep; same size as `image`.
            strength: 1.0 repaints from pure noise; lower keeps more of the masked content.
            mask_blur: Gaussian blur radius for the mask edge (pixels).
            mask_dilate: grow the white area by this many pixels first.
            resize_mask: resize a mask of another size instead of raising.
            (other arguments as in `text_to_image`)
        """
        image, width, height = input_image(image)
        pipe = self._pipe if self.is_inpainting else self._task_pipe("inpaint")
        mask_image = prepare_mask(mask, image.size, resize=resize_mask, dilate=mask_dilate, blur=mask_blur, pipe=pipe)
        request = Request(
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
        common = replay_options(params, self.family, control)
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
                with without_empty_fp32_warning():
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

    def _generate(self, r: Request, pipe: Any, call: dict) -> GenerationResult:
        started = time.perf_counter()
        guidance, seeds = check_request(r, self.family)
        summaries: tuple = ()
        if r.control:
            pipe, control_kwargs, summaries = self._controls(r.task, r.control, r.width, r.height)
            call = {**call, **control_kwargs}
        if r.guidance_rescale:
            if "guidance_rescale" not in inspect.signature(pipe.__call__).parameters:
                raise UsageError(f"guidance_rescale is not supported by {type(pipe).__name__}", received=r.guidance_rescale)
            call["guidance_rescale"] = r.guidance_rescale
        micro = micro_conditioning(r, self.family)
        pipe.scheduler = (make_scheduler(r.scheduler, self._scheduler_config) if r.scheduler is not None
                          else self._scheduler_cls.from_config(self._scheduler_config))
        embeds = encode_prompts(pipe, self.family, r.prompt, r.negative_prompt, clip_skip=r.clip_skip)
        prompt_s = time.perf_counter() - started
        # One pipeline call per image, each with its own CPU generator: a batched call draws the same noise but
        # sums some convolutions in another order (off by one uint8 level here and there), and image i must
        # be exactly the single run with seeds[i], which is what regenerate() from its PNG replays.
        images = []
        with without_empty_fp32_warning():
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
