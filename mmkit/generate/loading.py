"""Stable Diffusion checkpoints -> a diffusers pipeline, with the family read from the weights.

Sources: a hub id (`"stabilityai/stable-diffusion-xl-base-1.0"`), a local diffusers folder, or a single
original-layout checkpoint file (`.safetensors`). The family ("sd15" | "sdxl") and whether the UNet is an
inpainting UNet (9 input channels) are read from the checkpoint itself, never from its name:

- folders: `unet/config.json` (`addition_embed_type == "text_time"` -> SDXL; `in_channels == 9` ->
  inpainting; `cross_attention_dim == 1024` without text_time -> SD 2.x, refused);
- single files: key names and tensor shapes from the safetensors header (no weights read).

Security and "not found" follow `sources` (safetensors only unless `allow_pickle=True`, checked per
component for folders; `HF_HUB_OFFLINE` named in the error for a model missing from the cache);
`trust_remote_code` / custom pipelines are never used.

Single files need the diffusers configs of their family (component configs and tokenizers). diffusers
fetches them from the family's reference repo on the hub; offline, pass `config=` a local diffusers
folder of the same architecture (its weights are not needed, only `model_index.json`, `*/config.json`,
tokenizer and scheduler files).

This module knows nothing about prompts, schedulers by name, or results.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..devices import DevicePlan, plan_device
from ..exceptions import ModelLoadError
from ..loading_bars import without_loading_bars
from .sources import Source, resolve_source, unavailable, use_safetensors, weight_files

__all__ = [
    "Family",
    "CheckpointInfo",
    "LoadedCheckpoint",
    "inspect_folder",
    "inspect_single_file",
    "load_checkpoint",
    "weights_sha256",
]

Family = Literal["sd15", "sdxl"]
SourceKind = Literal["hub", "folder", "single_file"]
_PIPELINES = {
    ("sd15", False): "StableDiffusionPipeline",
    ("sd15", True): "StableDiffusionInpaintPipeline",
    ("sdxl", False): "StableDiffusionXLPipeline",
    ("sdxl", True): "StableDiffusionXLInpaintPipeline",
}


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint is, read from its files.

    Attributes:
        family: "sd15" or "sdxl".
        is_inpainting: the UNet takes 9 input channels (latents + mask + masked-image latents).
        weight_files: the weight files, for hashing.
    """

    family: Family
    is_inpainting: bool
    weight_files: tuple[Path, ...]


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A loaded pipeline and what mmkit knows about it."""

    pipe: Any
    info: CheckpointInfo
    model_id: str
    source_kind: SourceKind
    plan: DevicePlan


def _family_from_unet_config(cfg: dict, where: str) -> tuple[Family, bool]:
    inpainting = cfg.get("in_channels") == 9
    if cfg.get("addition_embed_type") == "text_time":
        return "sdxl", inpainting
    cross = cfg.get("cross_attention_dim")
    if cross == 1024 or isinstance(cross, (list, tuple)):
        raise ModelLoadError(
            "This checkpoint is not SD 1.5 or SDXL (its UNet looks like SD 2.x)", received=where,
            fix="Use an SD 1.5 or SDXL checkpoint",
        )
    if cfg.get("in_channels") not in (4, 9) or cfg.get("addition_embed_type") is not None:
        raise ModelLoadError("Unsupported UNet configuration", received=where, fix="Use an SD 1.5 or SDXL checkpoint")
    return "sd15", inpainting


def inspect_folder(folder: Path, *, allow_pickle: bool = False) -> CheckpointInfo:
    """Read family, inpainting and weight files from a diffusers folder, and apply the pickle rule.

    Raises:
        ModelLoadError: not a diffusers SD 1.5 / SDXL folder.
        UnsafeSourceError: a component has only pickle weights and `allow_pickle` is False.
    """
    index_file, unet_cfg_file = folder / "model_index.json", folder / "unet" / "config.json"
    if not index_file.is_file() or not unet_cfg_file.is_file():
        raise ModelLoadError(
            "Not a diffusers Stable Diffusion folder (model_index.json or unet/config.json missing)",
            received=str(folder), fix="Pass a diffusers pipeline folder, a hub id, or a single .safetensors file",
        )
    index = json.loads(index_file.read_text())
    family, inpainting = _family_from_unet_config(json.loads(unet_cfg_file.read_text()), str(folder))
    if family == "sdxl" and not (isinstance(index.get("text_encoder"), list) and index["text_encoder"][0]):
        raise ModelLoadError(
            "SDXL checkpoints without the first text encoder (the refiner) are not supported",
            received=str(folder), fix="Use an SDXL base checkpoint",
        )
    weights: list[Path] = []
    for name, entry in sorted(index.items()):
        part = folder / name
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None or not part.is_dir():
            continue
        weights.extend(weight_files(part, allow_pickle=allow_pickle, what=f"Component {name!r}"))
    return CheckpointInfo(family, inpainting, tuple(weights))


def inspect_single_file(path: Path) -> CheckpointInfo:
    """Read family and inpainting from an original-layout `.safetensors` header (no weights are read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = set(handle.keys())
            conv_in = "model.diffusion_model.input_blocks.0.0.weight"
            in_channels = handle.get_slice(conv_in).get_shape()[1] if conv_in in keys else None
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ModelLoadError(f"Cannot read the safetensors file: {err}", received=str(path)) from err
    if in_channels is None:
        raise ModelLoadError(
            "Not an original-layout Stable Diffusion checkpoint (no model.diffusion_model.* UNet weights)",
            received=str(path), fix="Pass an SD 1.5 / SDXL single-file checkpoint or a diffusers folder",
        )
    if any(k.startswith("conditioner.embedders.1.model.") for k in keys) and any(
        k.startswith("conditioner.embedders.0.transformer.") for k in keys
    ):
        family: Family = "sdxl"
    elif any(k.startswith("cond_stage_model.transformer.") for k in keys):
        family = "sd15"
    else:
        raise ModelLoadError(
            "Unsupported single-file checkpoint (neither SD 1.5's CLIP nor SDXL's two text encoders found; "
            "SD 2.x and SDXL refiners are not supported)", received=str(path),
            fix="Use an SD 1.5 or SDXL base checkpoint",
        )
    return CheckpointInfo(family, in_channels == 9, (path,))


def weights_sha256(files: tuple[Path, ...]) -> str:
    """sha256 of a checkpoint's weights: of the file itself for a single file (what A1111 shows as
    "Model hash", first 10 hex digits), else of the `name:sha256` lines of every weight file."""
    def file_hash(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    if len(files) == 1:
        return file_hash(files[0])
    lines = "".join(f"{p.parent.name}/{p.name}:{file_hash(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _hub_folder(source: Source, *, revision: str | None, allow_pickle: bool) -> Path:
    from diffusers import DiffusionPipeline

    try:
        return Path(DiffusionPipeline.download(source.text, revision=revision,
                                               use_safetensors=use_safetensors(allow_pickle)))
    except Exception as err:  # huggingface_hub / diffusers raise many OSError/ValueError subclasses here
        raise unavailable(err, source=source, what="checkpoint") from err


def _load_single_file(path: Path, info: CheckpointInfo, config: str | os.PathLike | None, dtype: Any) -> Any:
    import diffusers

    cls = getattr(diffusers, _PIPELINES[(info.family, info.is_inpainting)])
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config is not None:
        kwargs["config"] = str(config)
        kwargs["local_files_only"] = Path(config).is_dir()
    try:
        return cls.from_single_file(str(path), **kwargs)
    except Exception as err:  # diffusers raises ValueError / OSError / LocalEntryNotFoundError here
        raise ModelLoadError(
            f"Could not build a {info.family} pipeline from the single file: {err}", received=str(path),
            fix="Pass config=<a local diffusers folder of the same architecture (configs and tokenizers are enough)>, "
            "or run once online so diffusers caches the reference configs",
        ) from err


def load_checkpoint(
    source: str | os.PathLike,
    *,
    device: str = "auto",
    dtype: str = "auto",
    allow_pickle: bool = False,
    revision: str | None = None,
    config: str | os.PathLike | None = None,
    progress: bool = True,
) -> LoadedCheckpoint:
    """Load an SD 1.5 / SDXL pipeline (plain or inpainting) from a hub id, a folder or a single file.

    Args:
        source: hub id, diffusers folder, or original-layout single checkpoint file.
        device: "auto", "cpu", "cuda[:N]", "npu[:N]", "mps" (see `mmkit.devices.plan_device`).
        dtype: "auto" or a dtype name.
        allow_pickle: accept `.ckpt/.bin/.pt/.pth` weights (they can run code when loaded).
        revision: hub revision (hub ids only).
        config: single files only: a diffusers folder (or hub id) with the matching configs and tokenizers.
        progress: show diffusers' and transformers' progress bars while loading and generating.

    Raises:
        ModelLoadError: not found, unreadable, or not SD 1.5 / SDXL.
        UnsafeSourceError: pickle weights without `allow_pickle=True`.
    """
    found = resolve_source(source, allow_pickle=allow_pickle, what="Checkpoint")
    plan = plan_device(device, dtype)
    with without_loading_bars(not progress):
        pipe, info, model_id, kind = _load_pipeline(found, plan, allow_pickle=allow_pickle, revision=revision,
                                                    config=config)
    pipe.to(plan.device)
    pipe.set_progress_bar_config(disable=not progress)
    return LoadedCheckpoint(pipe, info, model_id, kind, plan)


def _load_pipeline(found, plan, *, allow_pickle: bool, revision: str | None, config):
    import diffusers

    if found.kind == "file":
        path = found.path
        if path.suffix.lower() != ".safetensors":
            raise ModelLoadError(
                "Only .safetensors single-file checkpoints are supported", received=found.text,
                fix="Convert the checkpoint to .safetensors",
            )
        info, kind, model_id = inspect_single_file(path), "single_file", str(path.resolve())
        pipe = _load_single_file(path, info, config, plan.dtype)
    else:
        if found.kind == "folder":
            folder, kind, model_id = found.path, "folder", str(found.path.resolve())
        else:
            folder = _hub_folder(found, revision=revision, allow_pickle=allow_pickle)
            kind, model_id = "hub", found.text
        info = inspect_folder(folder, allow_pickle=allow_pickle)
        cls = getattr(diffusers, _PIPELINES[(info.family, info.is_inpainting)])
        try:
            pipe = cls.from_pretrained(str(folder), dtype=plan.dtype, use_safetensors=use_safetensors(allow_pickle))
        except Exception as err:  # corrupt / mismatched files: diffusers raises ValueError, OSError, KeyError...
            raise ModelLoadError(f"Could not load the pipeline: {err}", received=found.text) from err
    return pipe, info, model_id, kind
