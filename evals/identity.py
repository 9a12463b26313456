"""Which weights were evaluated: the model's source (hub id or path), family, and the sha256 of each
safetensors file, so a result names exactly what produced it.

A local folder or file is hashed directly; a hub id is looked up in the local Hugging Face cache only
(never downloaded). This module knows files and hashes; it knows nothing about tasks.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .results import ModelIdentity

__all__ = ["sha256_file", "safetensors_hashes", "model_identity"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safetensors_hashes(source: str | os.PathLike[str]) -> dict[str, str]:
    """{relative path: sha256} of a `.safetensors` file or of every one under a folder."""
    path = Path(source)
    if path.is_file():
        return {path.name: sha256_file(path)} if path.suffix == ".safetensors" else {}
    return {p.relative_to(path).as_posix(): sha256_file(p) for p in sorted(path.rglob("*.safetensors"))}


def _local_folder(source: str) -> tuple[Path | None, str]:
    if Path(source).exists():
        return Path(source), ""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True)), ""
    except (OSError, ValueError) as err:  # not cached, or not a hub id: the identity says so instead of failing the run
        return None, f"weights not hashed: {source!r} is not a local path or cached hub repo ({type(err).__name__})"


def model_identity(model: Any, kind: str) -> ModelIdentity:
    """Source, family and weight hashes of a loaded model (any object with `model_id` works)."""
    source = str(getattr(model, "model_id", "") or type(model).__name__)
    family = getattr(model, "family", "")
    family = str(getattr(family, "name", family) or "")
    folder, note = _local_folder(source) if getattr(model, "model_id", None) else (None, "no model_id: weights not hashed")
    hashes = safetensors_hashes(folder) if folder is not None else {}
    if folder is not None and not hashes:
        note = f"no .safetensors files under {str(folder)!r}"
    return ModelIdentity(kind=kind if kind in ("vlm", "generator") else "other", source=source, family=family,
                         weight_sha256=hashes, note=note)
