"""Every error mmkit raises on purpose.

One small hierarchy so callers can catch what they can act on:

- `UsageError`: the caller passed something wrong; fix the call.
- `ModelLoadError`: a checkpoint could not be found, read or recognised.
- `UnsafeSourceError`: a source was refused by a safety rule (private address, pickle file, path outside
  the allowed roots); the caller may opt in where the message says how.
- `MediaError`: an image or video could not be read, is empty, corrupt, or too large.
- `DeviceError`: the requested device or dtype is not available here.
- `ModelOutputError`: the model answered in a shape mmkit could not use.
  - `ServerError`: a remote model server could not be reached or answered with an error.

Each error carries what was wrong, the value received, and what to do instead. This module imports
nothing heavy and knows nothing about models.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MmkitError",
    "UsageError",
    "ModelLoadError",
    "UnsafeSourceError",
    "MediaError",
    "DeviceError",
    "ModelOutputError",
    "ServerError",
]

_MISSING = object()


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MmkitError(Exception):
    """Base class of every error mmkit raises on purpose.

    Args:
        message: what was wrong, in one sentence.
        received: the offending value, shown (shortened) in the message.
        fix: what the caller should do instead.
    """

    def __init__(self, message: str, *, received: Any = _MISSING, fix: str | None = None) -> None:
        self.problem = message
        self.received = None if received is _MISSING else received
        self.fix = fix
        text = message
        if received is not _MISSING:
            text += f" (received: {_short(received)})"
        if fix:
            text += f". {fix}"
        super().__init__(text)


class UsageError(MmkitError, ValueError):
    """The caller passed a wrong argument or combination of arguments."""


class ModelLoadError(MmkitError, OSError):
    """A checkpoint could not be found, read, or recognised as a supported family."""


class UnsafeSourceError(UsageError):
    """A source was refused by a safety rule; the message names the opt-in, if there is one."""


class MediaError(MmkitError, ValueError):
    """An image or video could not be read: missing, empty, corrupt, unsupported or too large."""


class DeviceError(MmkitError, RuntimeError):
    """The requested device, dtype or attention backend is not available on this machine."""


class ModelOutputError(MmkitError):
    """The model's output could not be used (for example no parseable boxes where some were required)."""


class ServerError(ModelOutputError):
    """A remote model server (vLLM, SGLang, LMDeploy, ...) was unreachable, timed out, or answered an error."""
