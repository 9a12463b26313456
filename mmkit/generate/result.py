"""What a generation produced and exactly how: `GenerationParams`, `GenerationResult`, PNG metadata.

`GenerationResult.save()` writes one PNG per image, atomically (a temporary file in the target folder, then
`os.replace`), with two text chunks:

- `parameters`: the A1111 / Forge text ("prompt\\nNegative prompt: ...\\nSteps: 30, Sampler: Euler a, ...")
  that image viewers and other UIs read;
- `mmkit`: the full `GenerationParams` as JSON, from which `ImageGenerator.regenerate` gives back the same
  pixels.

`read_generation_params()` reads either (plain A1111 PNGs too). This module knows nothing about pipelines.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import MediaError, UsageError
from .schedulers import a1111_sampler_name, scheduler_from_a1111

__all__ = ["ControlSummary", "GenerationParams", "GenerationTimings", "GenerationResult", "read_generation_params"]

Task = Literal["text_to_image", "image_to_image", "inpaint"]


class ControlSummary(BaseModel):
    """One ControlNet use, as recorded in metadata (the control image itself is not stored)."""

    model_config = ConfigDict(frozen=True)
    model: str = Field(description="name of the ControlNet as added to the generator")
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    preprocess: str = "none"


class GenerationParams(BaseModel):
    """Everything needed to reproduce a generation (except input / control images).

    `seeds` holds one seed per image; `for_image(i)` gives the parameters of image i alone.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    task: Task = "text_to_image"
    prompt: str
    negative_prompt: str | None = None
    steps: int = Field(ge=1)
    guidance_scale: float
    guidance_rescale: float = 0.0
    scheduler: str | None = Field(None, description="readable scheduler name; None: the checkpoint's own")
    width: int
    height: int
    seeds: tuple[int, ...]
    strength: float | None = None
    num_images: int = 1
    clip_skip: int | None = None
    model: str = ""
    model_hash: str | None = Field(None, description="sha256 of the weights")
    family: Literal["sd15", "sdxl"] | None = None
    loras: tuple[tuple[str, float], ...] = ()
    controls: tuple[ControlSummary, ...] = ()
    original_size: tuple[int, int] | None = None
    target_size: tuple[int, int] | None = None
    crops_coords_top_left: tuple[int, int] | None = None
    mask_blur: int = 0
    mask_dilate: int = 0
    sampler_label: str | None = Field(None, description="the A1111 sampler label written in `parameters`")
    mmkit_version: str | None = None

    def for_image(self, index: int) -> GenerationParams:
        """The parameters of image `index` alone (one seed, num_images=1)."""
        return self.model_copy(update={"seeds": (self.seeds[index],), "num_images": 1})

    def to_a1111(self) -> str:
        """The A1111 `parameters` text (of the first seed)."""
        fields = [
            ("Steps", self.steps),
            ("Sampler", self.sampler_label or a1111_sampler_name(self.scheduler)),
            ("CFG scale", f"{self.guidance_scale:g}"),
            ("Seed", self.seeds[0]),
            ("Size", f"{self.width}x{self.height}"),
        ]
        if self.model_hash:
            fields.append(("Model hash", self.model_hash[:10]))
        if self.model:
            fields.append(("Model", Path(self.model).stem if os.sep in self.model else self.model))
        if self.strength is not None:
            fields.append(("Denoising strength", f"{self.strength:g}"))
        if self.clip_skip:
            fields.append(("Clip skip", self.clip_skip))
        if self.guidance_rescale:
            fields.append(("CFG rescale", f"{self.guidance_rescale:g}"))
        if self.loras:
            fields.append(("Lora weights", '"' + ", ".join(f"{n}: {w:g}" for n, w in self.loras) + '"'))
        if self.mmkit_version:
            fields.append(("Version", f"mmkit {self.mmkit_version}"))
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        lines.append(", ".join(f"{k}: {v}" for k, v in fields))
        return "\n".join(lines)


class GenerationTimings(BaseModel):
    """Seconds spent, measured with `time.perf_counter`."""

    model_config = ConfigDict(frozen=True)
    prompt_s: float = Field(description="prompt encoding")
    pipeline_s: float = Field(description="the diffusers pipeline call (denoising + VAE decode)")
    total_s: float
    per_image_s: float
    per_step_s: float = Field(description="pipeline_s / (steps * images); includes the VAE decode share")


@dataclass(frozen=True)
class GenerationResult:
    """Images and how they were made.

    Attributes:
        images: RGB PIL images, one per seed.
        params: the generation parameters (`params.seeds[i]` made `images[i]`).
        timings: where the time went.
    """

    images: list[Any]
    params: GenerationParams
    timings: GenerationTimings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.params.seeds

    @property
    def image(self) -> Any:
        """The first image."""
        return self.images[0]

    def save(self, path: str | os.PathLike, *, stem: str | None = None) -> list[Path]:
        """Write the images as PNGs with metadata, atomically.

        Args:
            path: a `.png` file (for several images, `-<i>` is inserted before the suffix) or a folder
                (created if missing; files are `<stem>-<seed>.png`, or `<stem>-<i>-<seed>.png` when
                seeds repeat).
            stem: the file-name stem inside a folder (default "mmkit").

        Returns:
            The written paths, in image order.
        """
        target = Path(path)
        names = self._file_names(target, stem or "mmkit")
        written = []
        for index, file in enumerate(names):
            _write_png_atomic(self.images[index], file, self.params.for_image(index))
            written.append(file)
        return written

    def _file_names(self, target: Path, stem: str) -> list[Path]:
        count = len(self.images)
        if target.suffix.lower() == ".png":
            if count == 1:
                return [target]
            return [target.with_name(f"{target.stem}-{i}{target.suffix}") for i in range(count)]
        if target.suffix:
            raise UsageError("save() writes PNG files", received=str(target), fix="Pass a folder or a .png path")
        unique = len(set(self.seeds)) == len(self.seeds)
        return [target / (f"{stem}-{s}.png" if unique else f"{stem}-{i}-{s}.png") for i, s in enumerate(self.seeds)]


def _write_png_atomic(image: Any, file: Path, params: GenerationParams) -> None:
    from PIL.PngImagePlugin import PngInfo

    file.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("parameters", params.to_a1111())
    info.add_text("mmkit", params.model_dump_json())
    handle, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            image.save(out, format="PNG", pnginfo=info)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_A1111_FIELD = re.compile(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> GenerationParams:
    """Parse an A1111 `parameters` string into `GenerationParams` (unknown fields are ignored)."""
    lines = text.strip().split("\n")
    if len(lines) < 1 or "Steps:" not in lines[-1]:
        raise MediaError("Not an A1111 parameters text (no 'Steps:' line)", received=text[:200])
    values = {m.group(1).strip(): m.group(2).strip().strip('"') for m in _A1111_FIELD.finditer(lines[-1])}
    prompt_lines, negative_lines, into_negative = [], [], False
    for line in lines[:-1]:
        if line.startswith("Negative prompt:"):
            into_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative_lines if into_negative else prompt_lines).append(line)
    width, _, height = values.get("Size", "512x512").partition("x")
    sampler = values.get("Sampler", "")
    scheduler = scheduler_from_a1111(sampler, values.get("Schedule type")) if sampler else None
    strength = values.get("Denoising strength")
    clip_skip = values.get("Clip skip")
    return GenerationParams(
        task="image_to_image" if strength is not None and "Hires upscale" not in values else "text_to_image",
        prompt="\n".join(prompt_lines),
        negative_prompt="\n".join(negative_lines) or None,
        steps=int(values.get("Steps", 20)),
        guidance_scale=float(values.get("CFG scale", 7.0)),
        scheduler=scheduler,
        sampler_label=sampler or None,
        width=int(width),
        height=int(height),
        seeds=(int(values.get("Seed", 0)),),
        strength=float(strength) if strength is not None else None,
        clip_skip=int(clip_skip) if clip_skip else None,
        model=values.get("Model", ""),
        model_hash=values.get("Model hash"),
    )


def read_generation_params(png_path: str | os.PathLike) -> GenerationParams:
    """Read the generation parameters stored in a PNG: mmkit's JSON chunk, else A1111's `parameters`.

    Raises:
        MediaError: the file cannot be read or holds neither chunk.
    """
    from PIL import Image

    try:
        with Image.open(png_path) as image:
            chunks = dict(getattr(image, "text", {}) or {})
    except (OSError, ValueError) as err:
        raise MediaError(f"Cannot read the image: {err}", received=str(png_path)) from err
    if "mmkit" in chunks:
        return GenerationParams.model_validate(json.loads(chunks["mmkit"]))
    if "parameters" in chunks:
        return parse_a1111(chunks["parameters"])
    raise MediaError(
        "The PNG holds no generation parameters (no 'mmkit' or 'parameters' text chunk)", received=str(png_path),
        fix="Pass a PNG saved by mmkit (GenerationResult.save) or by A1111 / Forge",
    )
