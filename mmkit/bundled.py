"""The models mmkit ships: names such as `"mmkit/shapes-sd"` and the folders they resolve to.

The bundled shapes-world models (trained by the scripts in `mmkit.shapes.training`, committed as fp16
safetensors in the upstream folder layouts under `mmkit/shapes/weights/`) load through the same functions as
hub ids: `ImageGenerator.from_pretrained("mmkit/shapes-sd")`, `Control(model="mmkit/shapes-controlnet-canny")`,
`generator.loras.load("mmkit/shapes-lora-star")`, `VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl")`.
The `mmkit/` owner is reserved for them: such a name never reaches the hub, so an unknown or untrained one is
an error here rather than a download attempt.

This module knows names, folders and the scripts that make them; it knows nothing about how they are loaded.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from .exceptions import ModelLoadError

__all__ = ["BundledModel", "BUNDLED", "WEIGHTS_DIR", "is_bundled_name", "bundled_path", "available_bundled"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "shapes" / "weights"
"""Where the committed weights live (package data of `mmkit.shapes`)."""

PREFIX = "mmkit/"


@dataclass(frozen=True)
class BundledModel:
    """One shipped model: its name, folder and the command that retrains it."""

    name: str  # "mmkit/shapes-sd"
    folder: str  # below WEIGHTS_DIR
    kind: str  # what it is, for messages
    required: tuple[str, ...]  # files that must be present for the folder to count as trained
    retrain: str  # the command that reproduces it
    videos_at_image_pixels: bool = False  # a VLM whose clips were trained at its processor's image pixel budget
    video_fps: float | None = None  # a VLM whose clips were all sampled at this rate (frames per second)

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.folder

    def is_complete(self) -> bool:
        return all((self.path / f).is_file() for f in self.required)


_TRAIN = "python -m mmkit.shapes.training."
BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel("mmkit/shapes-sd", "shapes-sd", "SD 1.5-architecture generator",
                     ("model_index.json", "unet/diffusion_pytorch_model.safetensors",
                      "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"),
                     _TRAIN + "train_generator"),
        BundledModel("mmkit/shapes-controlnet-canny", "shapes-controlnet-canny", "canny ControlNet for shapes-sd",
                     ("config.json", "diffusion_pytorch_model.safetensors"), _TRAIN + "train_controlnet"),
        BundledModel("mmkit/shapes-lora-star", "shapes-lora-star", "LoRA teaching shapes-sd the star",
                     ("pytorch_lora_weights.safetensors",), _TRAIN + "train_concept_lora --concept star"),
        BundledModel("mmkit/shapes-qwen2.5-vl", "shapes-qwen2.5-vl", "Qwen2.5-VL-architecture VLM",
                     ("config.json", "model.safetensors", "tokenizer.json"), _TRAIN + "train_vlm",
                     videos_at_image_pixels=True,  # 112 x 112 frames, as its images
                     video_fps=4.0),  # shapes.video.sample_video's clips
    )
}


def is_bundled_name(source: object) -> bool:
    """True for a str in the reserved `mmkit/...` namespace that is not an existing local path."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    return isinstance(text, str) and text.startswith(PREFIX) and not Path(text).exists()


def bundled_path(name: str) -> Path:
    """The folder of a bundled model.

    Raises:
        ModelLoadError: the name is not a bundled model (with the closest names), or its weights are not in
            this installation (with the command that trains them).
    """
    model = BUNDLED.get(name)
    if model is None:
        close = difflib.get_close_matches(name, list(BUNDLED), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ModelLoadError("unknown bundled model (the 'mmkit/' namespace is reserved for models shipped "
                             "with mmkit and never fetched from the hub)", received=name,
                             fix=f"{hint}choose one of {sorted(BUNDLED)}")
    if not model.is_complete():
        missing = [f for f in model.required if not (model.path / f).is_file()]
        raise ModelLoadError(f"the bundled {model.kind} is not in this installation (missing {missing} under "
                             f"{model.path})", received=name,
                             fix=f"reinstall mmkit from a full checkout, or train it: {model.retrain}")
    return model.path


def bundled_model_at(source: str | os.PathLike) -> BundledModel | None:
    """The bundled model a name ("mmkit/shapes-qwen2.5-vl") or a folder (its weights folder) refers to, or None."""
    text = os.fspath(source)
    if is_bundled_name(text):
        return BUNDLED.get(text)
    folder = Path(text)
    if not folder.is_dir():
        return None
    return next((m for m in BUNDLED.values() if m.path.resolve() == folder.resolve()), None)


def available_bundled() -> list[str]:
    """Names of the bundled models whose weights are present."""
    return [name for name, model in BUNDLED.items() if model.is_complete()]
