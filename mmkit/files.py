"""Atomic file writes: a reader never sees a half-written output, and a crash loses nothing already saved.

Every output mmkit writes (images, JSON traces, configs, reports) goes through these functions: the data
is written to a temporary file in the destination folder, flushed to disk, then renamed over the target
with `os.replace`, which is atomic on POSIX and Windows. Knows nothing about images or models.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(f)` on a temporary file beside `path`, then move it into place.

    Args:
        path: the final file path; its folder is created if missing.
        write: a function that writes the whole content to the binary file object it gets.

    Returns:
        The final path. On any error the temporary file is removed and the target is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write `value` as indented UTF-8 JSON (non-ASCII kept readable) to `path` atomically."""
    return atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
