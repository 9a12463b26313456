"""Whether a model source may be loaded, and where it is: the one place for the source rules of `generate`.

Owns, for checkpoints (`loading`), ControlNets (`controlnet`), LoRAs (`lora`) and LoRA training
(`training.models`):

- what a source is: a local file, a local folder, a bundled model (`"mmkit/shapes-sd"`, see `mmkit.bundled`) or
  a hub id (`"owner/name"`), else `ModelLoadError`;
- the pickle rule: `.ckpt/.bin/.pt/.pth/.pkl` weights can run code when loaded, so they are refused with
  `UnsafeSourceError` unless `allow_pickle=True` (a folder is refused when it holds pickle weights and no
  `.safetensors`); `use_safetensors()` is the matching diffusers argument;
- the `ModelLoadError` for a source that could not be read or downloaded, which names `HF_HUB_OFFLINE` when it
  is set (huggingface_hub honours it and then only reads the local cache).

Knows nothing about what the weights are (families, adapters, nets) or how they are loaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..bundled import bundled_path, is_bundled_name
from ..exceptions import ModelLoadError, UnsafeSourceError, UsageError

__all__ = [
    "PICKLE_SUFFIXES",
    "Source",
    "SourceKind",
    "hub_offline",
    "is_hub_id",
    "refuse_pickle_file",
    "resolve_source",
    "unavailable",
    "use_safetensors",
    "weight_files",
]

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PICKLE_FIX = "Use .safetensors weights, or pass allow_pickle=True if you trust the source"

SourceKind = Literal["file", "folder", "hub"]


@dataclass(frozen=True)
class Source:
    """A checked source.

    Attributes:
        kind: "file", "folder" or "hub".
        text: the source as given (`os.fspath`).
        path: the expanded local path (files and folders), else None.
    """

    kind: SourceKind
    text: str
    path: Path | None = None


def is_hub_id(text: str) -> bool:
    """True for a hub repo id such as `"stabilityai/sdxl-turbo"` (no local file of that name is checked)."""
    return bool(_HUB_ID.match(text))


def use_safetensors(allow_pickle: bool) -> bool | None:
    """diffusers' `use_safetensors=`: True refuses pickle weights; only None lets it fall back to them."""
    return None if allow_pickle else True


def refuse_pickle_file(path: Path, *, allow_pickle: bool, what: str) -> None:
    """Raise `UnsafeSourceError` for a pickle weight file unless `allow_pickle`."""
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise UnsafeSourceError(f"{what} is a pickle file ({path.suffix}), which can run code when loaded",
                                received=str(path), fix=_PICKLE_FIX)


def weight_files(folder: Path, *, allow_pickle: bool, what: str) -> list[Path]:
    """The weight files of one folder: its `.safetensors` files, else (with `allow_pickle`) its pickle files.

    Raises:
        UnsafeSourceError: the folder holds only pickle weights and `allow_pickle` is False.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file())
    safe = [p for p in files if p.suffix == ".safetensors"]
    pickles = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if safe:
        return safe
    if pickles and not allow_pickle:
        raise UnsafeSourceError(
            f"{what} has only pickle weights ({pickles[0].name}), which can run code when loaded",
            received=str(folder), fix=_PICKLE_FIX,
        )
    return pickles


def resolve_source(source: str | os.PathLike, *, allow_pickle: bool, what: str) -> Source:
    """Check a source and say what it is: a local file, a local folder, or a hub id.

    Args:
        source: a path (str or `os.PathLike`) or a hub id.
        allow_pickle: accept a pickle weight file.
        what: what is loaded, for messages ("Checkpoint", "ControlNet", "LoRA").

    Raises:
        UsageError: `source` is not a str or path.
        UnsafeSourceError: a pickle file without `allow_pickle`.
        ModelLoadError: no such file or folder, and not a hub id.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise UsageError(f"{what} source must be a hub id, a folder or a file path", received=source)
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        refuse_pickle_file(path, allow_pickle=allow_pickle, what=f"{what} file")
        return Source("file", text, path)
    if path.is_dir():
        return Source("folder", text, path)
    if is_bundled_name(text):  # "mmkit/shapes-sd": a model shipped with mmkit, never fetched
        folder = bundled_path(text)
        return Source("folder", str(folder), folder)
    if is_hub_id(text):
        return Source("hub", text)
    raise ModelLoadError(f"{what} source not found (No such file or folder, and not a hub id)", received=text,
                         fix="Check the path, or pass a hub id like 'owner/name'")


def hub_offline() -> bool:
    """True when `HF_HUB_OFFLINE` is set: huggingface_hub then reads only its local cache."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def unavailable(error: BaseException, *, source: Source, what: str, fix: str | None = None) -> ModelLoadError:
    """The `ModelLoadError` for a source that could not be read or downloaded (raise it `from error`).

    Hub sources get a fix naming `HF_HUB_OFFLINE` when it is set, else one about the id and the network; local
    sources get `fix` (what a readable source of this kind looks like).
    """
    if source.kind == "hub":
        fix = (
            "HF_HUB_OFFLINE is set and the model is not in the local cache: download it once online "
            "(unset HF_HUB_OFFLINE) or pass a local folder"
            if hub_offline()
            else "Check the repo id and your network / token (huggingface-cli login for gated models)"
        )
        return ModelLoadError(f"Could not get {what} {source.text!r} from the Hugging Face hub: {error}",
                              received=source.text, fix=fix)
    return ModelLoadError(f"Could not load {what}: {error}", received=source.text, fix=fix)
