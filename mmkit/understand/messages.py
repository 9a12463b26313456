"""Turn what a caller passes into one checked conversation: chat messages plus the media they point at.

Accepted input (validated here, once):

- a plain string, with `images=` / `videos=` attached to it;
- mmkit / Hugging Face messages: `[{"role": ..., "content": str | [parts]}]`;
- the qwen-vl-utils message format as-is: `{"type": "image", "image": src, "min_pixels": ...,
  "max_pixels": ..., "resized_height": ..., "resized_width": ...}` and `{"type": "video", "video": src,
  "fps": ..., "nframes": ..., "video_start": ..., "video_end": ..., "min_pixels": ..., "max_pixels": ...,
  "total_pixels": ...}` (the "type" key may be left out, as qwen-vl-utils allows);
- Hugging Face parts `{"type": "image", "url" | "path": src}`;
- OpenAI parts `{"type": "image_url", "image_url": {"url": src}}`;
- PIL images, numpy arrays, bytes and `pathlib.Path` in place of path strings; bare strings and PIL images
  inside a content list are text and image parts.

The result is a `Conversation` whose messages use exactly one shape per part: `{"type": "text", "text"}`,
`{"type": "image", "image": src, ...knobs}`, `{"type": "video", "video": src, ...knobs}`, the format
`mmkit.media.process_vision_info` reads. This module loads no pixels and knows nothing about models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

from ..exceptions import UsageError

__all__ = ["Conversation", "to_conversation", "IMAGE_KEYS", "VIDEO_KEYS"]

_ROLES: tuple[str, ...] = ("system", "user", "assistant")

IMAGE_KEYS: frozenset[str] = frozenset({"min_pixels", "max_pixels", "resized_height", "resized_width"})
"""Per-image knobs (qwen-vl-utils names) kept on an image part."""
VIDEO_KEYS: frozenset[str] = frozenset(
    {
        "fps", "nframes", "min_frames", "max_frames", "video_start", "video_end", "min_pixels", "max_pixels",
        "total_pixels", "resized_height", "resized_width", "sample_fps", "raw_fps",
    }
)
"""Per-video knobs (qwen-vl-utils names) kept on a video part."""

_SOURCE_KEYS = ("image", "url", "path", "image_url")
_IGNORED_KEYS = frozenset({"detail"})  # OpenAI's image detail hint: no meaning for Qwen-VL


@dataclass(frozen=True)
class Conversation:
    """One checked conversation.

    Attributes:
        messages: messages with canonical parts (see the module docstring); the last one is from the user.
        images: the image parts in the order they appear (the order the processor sees them).
        videos: the video parts in the order they appear.
    """

    messages: tuple[dict[str, Any], ...]
    images: tuple[dict[str, Any], ...]
    videos: tuple[dict[str, Any], ...]

    def template_messages(self) -> list[dict[str, Any]]:
        """The messages as the chat template needs them: media parts reduced to their type."""
        out = []
        for message in self.messages:
            parts = [part if part["type"] == "text" else {"type": part["type"]} for part in message["content"]]
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            out.append({"role": message["role"], "content": parts, **extra})
        return out


def _is_pil(value: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(value, Image.Image)


def _is_array(value: Any) -> bool:
    return type(value).__module__.split(".")[0] in ("numpy", "torch") and hasattr(value, "ndim")


def _image_source(value: Any, where: str) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, bytes)) and value:
        return value
    if _is_pil(value):
        return value
    if _is_array(value) and value.ndim in (2, 3):
        return value
    raise UsageError(
        f"{where}: an image must be a path, URL, data: URI, bytes, a PIL image or an HxW(xC) array",
        received=value,
        fix="Pass e.g. 'photo.jpg', 'https://...', PIL.Image.open(...) or a uint8 numpy array",
    )


def _video_source(value: Any, where: str) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and value:
        return value
    if _is_array(value) and value.ndim == 4 and len(value):
        value = list(value)  # T x H x W x C -> frames, the shape qwen-vl-utils reads
    if isinstance(value, (list, tuple)) and value:
        return [_image_source(frame, f"{where} frame {i}") for i, frame in enumerate(value)]
    raise UsageError(
        f"{where}: a video must be a path, URL, a non-empty list of frames or a TxHxWxC array",
        received=value,
        fix="Pass e.g. 'clip.mp4' or [frame0, frame1, ...] (PIL images, arrays or paths)",
    )


def _check_knobs(part: Mapping[str, Any], allowed: frozenset[str], where: str) -> dict[str, Any]:
    knobs = {k: v for k, v in part.items() if k in allowed}
    for key, value in knobs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UsageError(f"{where}: {key} must be a non-negative number", received=value, fix=f"Pass {key}=<number>")
    if ("resized_height" in knobs) != ("resized_width" in knobs):
        raise UsageError(
            f"{where}: resized_height and resized_width go together",
            received={k: knobs[k] for k in ("resized_height", "resized_width") if k in knobs},
            fix="Pass both, or neither",
        )
    return knobs


def _unknown_keys(part: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    unknown = sorted(set(part) - set(known) - _IGNORED_KEYS - {"type"})
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {unknown}",
            received=dict(part),
            fix=f"Accepted keys here: {sorted(set(known))}",
        )


def _image_part(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    present = [k for k in _SOURCE_KEYS if k in part]
    if len(present) != 1:
        raise UsageError(
            f"{where}: an image part needs exactly one of 'image', 'url', 'path' or 'image_url'",
            received=dict(part),
            fix='Use {"type": "image", "image": "photo.jpg"}',
        )
    key = present[0]
    source = part[key]
    if key == "image_url" and isinstance(source, Mapping):  # OpenAI: {"image_url": {"url": ..., "detail": ...}}
        if "url" not in source:
            raise UsageError(f"{where}: image_url needs a 'url'", received=dict(source), fix='Use {"image_url": {"url": "..."}}')
        source = source["url"]
    _unknown_keys(part, [key, *IMAGE_KEYS], where)
    return {"type": "image", "image": _image_source(source, where), **_check_knobs(part, IMAGE_KEYS, where)}


def _video_part(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    present = [k for k in ("video", "url", "path") if k in part]
    if len(present) != 1:
        raise UsageError(
            f"{where}: a video part needs exactly one of 'video', 'url' or 'path'",
            received=dict(part),
            fix='Use {"type": "video", "video": "clip.mp4", "fps": 2.0}',
        )
    _unknown_keys(part, [present[0], *VIDEO_KEYS], where)
    return {"type": "video", "video": _video_source(part[present[0]], where), **_check_knobs(part, VIDEO_KEYS, where)}


def _part_type(part: Mapping[str, Any]) -> str | None:
    if "type" in part:
        return part["type"]
    for key, kind in (("text", "text"), ("image", "image"), ("image_url", "image_url"), ("video", "video")):
        if key in part:
            return kind  # qwen-vl-utils allows parts without "type"
    return None


def _part(part: Any, where: str) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if _is_pil(part):
        return {"type": "image", "image": part}
    if not isinstance(part, Mapping):
        raise UsageError(f"{where}: a content part must be a dict, a string or a PIL image", received=part)
    kind = _part_type(part)
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise UsageError(f"{where}: a text part needs a string 'text'", received=dict(part), fix='Use {"type": "text", "text": "..."}')
        _unknown_keys(part, ["text"], where)
        return {"type": "text", "text": part["text"]}
    if kind in ("image", "image_url"):
        return _image_part(part, where)
    if kind == "video":
        return _video_part(part, where)
    raise UsageError(
        f"{where}: unknown content part type {kind!r}",
        received=dict(part),
        fix="Use 'text', 'image', 'image_url' or 'video' parts",
    )


def _message(message: Any, index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise UsageError(f"{where} must be a dict with 'role' and 'content'", received=message)
    role = message.get("role")
    if role not in _ROLES:
        raise UsageError(f"{where} has an unknown role", received=role, fix=f"Use one of {list(_ROLES)}")
    if "content" not in message:
        raise UsageError(f"{where} has no 'content'", received=dict(message), fix="Add content: a string or a list of parts")
    content = message["content"]
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    elif isinstance(content, (list, tuple)) and content:
        parts = [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    else:
        raise UsageError(f"{where}.content must be a string or a non-empty list of parts", received=content)
    if role != "user" and any(p["type"] != "text" for p in parts):
        raise UsageError(f"{where}: only user messages may carry images or videos", received=role, fix="Move the media into a user message")
    extra = {}
    if role == "assistant" and isinstance(message.get("reasoning_content"), str):
        extra["reasoning_content"] = message["reasoning_content"]
    unknown = sorted(set(message) - {"role", "content", "reasoning_content"})
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}", received=dict(message), fix="Messages take 'role' and 'content'")
    return {"role": role, "content": parts, **extra}


def _attached(items: Any, kind: Literal["image", "video"]) -> list[dict[str, Any]]:
    if items is None:
        return []
    single = isinstance(items, (str, Path, bytes, Mapping)) or _is_pil(items) or (_is_array(items) and kind == "image")
    if kind == "video" and _is_array(items) and items.ndim == 4:
        single = True
    listed: Sequence[Any] = [items] if single else items
    if not isinstance(listed, (list, tuple)):
        raise UsageError(f"{kind}s= must be one {kind} or a list of them", received=items)
    out = []
    for i, item in enumerate(listed):
        where = f"{kind}s[{i}]"
        if isinstance(item, Mapping):
            out.append(_part({"type": kind, **item} if "type" not in item else item, where))
        elif kind == "image":
            out.append({"type": "image", "image": _image_source(item, where)})
        elif _is_pil(item):
            raise UsageError(
                f"{where} is a single image; videos= takes a list of videos", received=item,
                fix="Wrap the frames of one video in a list: videos=[[frame0, frame1, ...]]",
            )
        else:
            out.append({"type": "video", "video": _video_source(item, where)})
    return out


def to_conversation(messages_or_text: Any, *, images: Any = None, videos: Any = None) -> Conversation:
    """Normalise and check one conversation.

    Args:
        messages_or_text: a string (one user turn) or a list of messages (see the module docstring).
        images: one image or a list, placed before the text of the last user message.
        videos: one video (path / URL / list of frames) or a list of videos, placed after the images.

    Raises:
        UsageError: an unknown role or part type, a part without text or source, media in a non-user turn,
            a conversation that does not end with a user message.
    """
    if isinstance(messages_or_text, str):
        if not messages_or_text.strip() and images is None and videos is None:
            raise UsageError("The prompt is empty", received=messages_or_text, fix="Pass a question or an instruction")
        raw: list[Any] = [{"role": "user", "content": messages_or_text}]
    elif isinstance(messages_or_text, (list, tuple)) and messages_or_text:
        raw = list(messages_or_text)
    else:
        raise UsageError(
            "Pass a string or a non-empty list of messages", received=messages_or_text,
            fix='Use "Describe the image" or [{"role": "user", "content": [...]}]',
        )
    checked = [_message(m, i) for i, m in enumerate(raw)]
    if checked[-1]["role"] != "user":
        raise UsageError("The conversation must end with a user message", received=checked[-1]["role"], fix="Append the next user turn")
    for i, message in enumerate(checked):
        if message["role"] == "system" and i != 0:
            raise UsageError(f"messages[{i}]: a system message may only come first", received=message["content"])
    extra = _attached(images, "image") + _attached(videos, "video")
    if extra:
        last = checked[-1]
        checked[-1] = {**last, "content": extra + last["content"]}
    parts = [p for m in checked for p in m["content"]]
    return Conversation(
        messages=tuple(checked),
        images=tuple(p for p in parts if p["type"] == "image"),
        videos=tuple(p for p in parts if p["type"] == "video"),
    )
