"""A conversation's memory: media handles ("image 1", "video 1"), turns, and the steps of each turn,
persisted to a folder as it happens.

Folder layout: `session.json` (turns, steps, media table), `images/image-<n>.png` (session images),
`steps/t<turn>-s<step>-<name>.png` (intermediate images: attempts, masks), `videos/video-<n>.<ext>`.
Every file goes through `mmkit.files` (temporary file + rename), and `session.json` is rewritten after
each completed step, so a crash mid-turn loses nothing already saved: `Session.resume(folder)` reads it
back and marks a turn that never finished as "interrupted".

This module knows files, images and records; it knows nothing about routing rules or models.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from mmkit.exceptions import UsageError
from mmkit.files import atomic_write, atomic_write_bytes, atomic_write_json

from .checks import CheckVerdict
from .routing import RouteDecision

__all__ = ["Budget", "MediaEntry", "Step", "Turn", "TurnStatus", "StepKind", "Session", "SESSION_FILE"]

SESSION_FILE = "session.json"
SCHEMA_VERSION = 1

TurnStatus = Literal["running", "done", "failed", "budget_spent", "clarify", "interrupted"]
Origin = Literal["user", "generated", "edited", "annotated"]
StepKind = Literal["route", "fallback", "generate", "check", "ground", "mask", "inpaint", "img2img", "chat", "draw",
                   "clarify"]


class Budget(BaseModel):
    """How much a loop may spend: attempts (generate/edit tries) and wall-clock seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(3, ge=1, description="tries of the generate/edit step, the first included")
    seconds: float = Field(300.0, gt=0, description="no new attempt starts after this many seconds")


class MediaEntry(BaseModel):
    """One image or video of the session."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    handle: str  # "image 1", "video 1"
    kind: Literal["image", "video"]
    file: str  # relative to the session folder ("" for an in-memory session)
    origin: Origin
    turn: int
    prompt: str | None = None


class Step(BaseModel):
    """One recorded step of a turn. `params` holds the call's JSON-able arguments as given to the tool."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    kind: StepKind
    tool: str  # "generator.text_to_image", "vlm.ground", "checker.oracle", "router.rules", ...
    attempt: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    seconds: float = 0.0
    verdict: CheckVerdict | None = None
    text: str | None = None
    files: tuple[str, ...] = ()
    error: str | None = None


class Turn(BaseModel):
    """One request and everything done for it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    index: int
    text: str
    decision: RouteDecision | None = None
    status: TurnStatus = "running"
    steps: list[Step] = Field(default_factory=list)
    reply: str = ""
    outputs: tuple[str, ...] = ()  # media handles this turn produced
    inputs: tuple[str, ...] = ()  # media handles this turn read
    started: float = Field(default_factory=time.time)
    seconds: float = 0.0


class _Saved(BaseModel):
    schema_version: int = SCHEMA_VERSION
    media: list[MediaEntry] = Field(default_factory=list)
    turns: list[Turn] = Field(default_factory=list)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Session:
    """Media handles and turn records, optionally persisted to `folder`.

    Args:
        folder: where to persist (created if missing); None keeps everything in memory.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._state = _Saved()
        self._images: dict[str, Image.Image] = {}
        if self.folder is not None:
            if (self.folder / SESSION_FILE).exists():
                raise UsageError("this folder already holds a session", received=str(self.folder),
                                 fix="use Session.resume(folder) to continue it, or pick a new folder")
            self._write()

    @classmethod
    def resume(cls, folder: str | Path) -> "Session":
        """Load a persisted session; a turn left "running" (the process died) becomes "interrupted"."""
        path = Path(folder) / SESSION_FILE
        if not path.is_file():
            raise UsageError("no session in this folder", received=str(folder), fix="pass a folder a Session wrote")
        session = cls.__new__(cls)
        session.folder, session._images = Path(folder), {}
        session._state = _Saved.model_validate_json(path.read_text(encoding="utf-8"))
        for turn in session._state.turns:
            if turn.status == "running":
                turn.status = "interrupted"
        return session

    # ------------------------------------------------------------------------------------------ media
    @property
    def media(self) -> tuple[MediaEntry, ...]:
        return tuple(self._state.media)

    @property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(self._state.turns)

    def handles(self, kind: Literal["image", "video"] = "image") -> tuple[str, ...]:
        return tuple(m.handle for m in self._state.media if m.kind == kind)

    def add_image(self, image: Image.Image, *, origin: Origin = "user",
                  turn: int = 0, prompt: str | None = None) -> str:
        """Keep an image under the next handle ("image <n>"), written to the folder first. Returns the handle."""
        handle = f"image {len(self.handles('image')) + 1}"
        image = image.convert("RGB")
        file = ""
        if self.folder is not None:
            file = f"images/{handle.replace(' ', '-')}.png"
            atomic_write_bytes(self.folder / file, _png_bytes(image))
        self._images[handle] = image
        self._state.media.append(MediaEntry(handle=handle, kind="image", file=file, origin=origin, turn=turn,
                                            prompt=prompt))
        self._write()
        return handle

    def add_video(self, video: str | Path, *, turn: int = 0) -> str:
        """Keep a video file under the next handle ("video <n>"); persisted sessions copy the file in."""
        source = Path(video)
        if not source.is_file():
            raise UsageError("a session video must be a local file", received=str(video),
                             fix="download it first, or pass the path of a video file")
        handle = f"video {len(self.handles('video')) + 1}"
        file = str(source)
        if self.folder is not None:
            file = f"videos/{handle.replace(' ', '-')}{source.suffix}"
            atomic_write(self.folder / file, lambda out: out.write(source.read_bytes()))
        self._state.media.append(MediaEntry(handle=handle, kind="video", file=file, origin="user", turn=turn))
        self._write()
        return handle

    def entry(self, handle: str) -> MediaEntry:
        for media in self._state.media:
            if media.handle == handle:
                return media
        raise UsageError("no such media handle in this session", received=handle,
                         fix=f"use one of {[m.handle for m in self._state.media] or 'nothing yet: attach an image'}")

    def image(self, handle: str) -> Image.Image:
        """The image under `handle` (read from the folder after a resume)."""
        if handle not in self._images:
            entry = self.entry(handle)
            if entry.kind != "image" or self.folder is None:
                raise UsageError("not an image handle", received=handle, fix=f"use one of {self.handles('image')}")
            with Image.open(self.folder / entry.file) as loaded:
                self._images[handle] = loaded.convert("RGB")
        return self._images[handle]

    def video_path(self, handle: str) -> str:
        entry = self.entry(handle)
        if entry.kind != "video":
            raise UsageError("not a video handle", received=handle, fix=f"use one of {self.handles('video')}")
        return str(self.folder / entry.file) if self.folder is not None else entry.file

    def resolve(self, reference: str) -> str:
        """A reference as the router found it ("image 2", "video 1", "last") -> an existing handle."""
        if reference == "last":
            images = [m.handle for m in self._state.media if m.kind == "image" and m.origin != "annotated"]
            if not images:
                raise UsageError("the request refers to the last image, but the session has none", received=reference,
                                 fix="attach an image or generate one first")
            return images[-1]
        return self.entry(reference).handle

    # ------------------------------------------------------------------------------------------ turns
    def start_turn(self, text: str) -> Turn:
        turn = Turn(index=len(self._state.turns) + 1, text=text)
        self._state.turns.append(turn)
        self._write()
        return turn

    def record(self, turn: Turn, step: Step, images: dict[str, Image.Image] | None = None) -> Step:
        """Append a completed step: its images are written first, then `session.json`."""
        files = []
        for name, image in (images or {}).items():
            if self.folder is not None:
                file = f"steps/t{turn.index:03d}-s{step.index:02d}-{name}.png"
                atomic_write_bytes(self.folder / file, _png_bytes(image.convert("RGB")))
                files.append(file)
        step = step.model_copy(update={"files": step.files + tuple(files)})
        turn.steps.append(step)
        self._write()
        return step

    def next_step_index(self, turn: Turn) -> int:
        return len(turn.steps) + 1

    def finish_turn(self, turn: Turn, *, status: TurnStatus, reply: str, outputs: tuple[str, ...] = ()) -> Turn:
        turn.status, turn.reply, turn.outputs = status, reply, outputs
        turn.seconds = time.time() - turn.started
        self._write()
        return turn

    def history(self, limit: int = 6) -> list[tuple[str, str]]:
        """(user, assistant) texts of the last `limit` finished understand turns (none for 0), for multi-turn chat."""
        done = [t for t in self._state.turns if t.decision is not None and t.decision.route == "understand"
                and t.status == "done" and t.decision.intent != "clarify"]
        return [(t.text, t.reply) for t in done[-limit:]] if limit > 0 else []

    def _write(self) -> None:
        if self.folder is not None:
            atomic_write_json(self.folder / SESSION_FILE, self._state.model_dump(mode="json"))
