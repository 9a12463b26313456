"""Short clips of the shapes world where a shape appears, disappears or moves at known times, and the
temporal-grounding questions they answer ("when does the red circle appear?" -> (start, end) seconds).

Frame i shows time i / fps. Event times are multiples of 1 / fps, so the answer spans are exact.
Each track keeps to its own horizontal band (top half / bottom half), so shapes never overlap.
This module knows scenes and timing; pixels come from `render.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..exceptions import UsageError
from ..understand.answer import Box, TimeSpan
from .render import render
from .scene import Scene, ShapeSpec, _check_name, position_word
from .vocab import BASE_KINDS, COLOURS, SHAPES

__all__ = ["Track", "VideoScene", "TemporalQuery", "frame_scene", "render_video", "sample_video",
           "temporal_queries"]

Event = Literal["appears", "disappears", "moves"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Track(_Frozen):
    """One shape over time. Visible on [appear_s, disappear_s); moves linearly on [move_start_s, move_end_s]."""

    kind: str
    colour: str
    side: int = Field(gt=0, description="box side, pixels")
    start: tuple[int, int] = Field(description="(x1, y1) of the box before moving")
    end: tuple[int, int] = Field(description="(x1, y1) of the box after moving (= start when still)")
    event: Event
    appear_s: float = Field(ge=0)
    disappear_s: float | None = Field(default=None, description="None: visible to the end")
    move_start_s: float = 0.0
    move_end_s: float = 0.0

    _kind = field_validator("kind")(lambda v: _check_name(v, SHAPES, "shape kind"))
    _colour = field_validator("colour")(lambda v: _check_name(v, COLOURS, "colour"))

    def box_at(self, t: float) -> Box | None:
        """The box at time `t` seconds, or None when the shape is not visible."""
        if t < self.appear_s or (self.disappear_s is not None and t >= self.disappear_s):
            return None
        span = self.move_end_s - self.move_start_s
        f = 0.0 if span <= 0 or t <= self.move_start_s else min(1.0, (t - self.move_start_s) / span)
        x1 = round(self.start[0] + f * (self.end[0] - self.start[0]))
        y1 = round(self.start[1] + f * (self.end[1] - self.start[1]))
        return Box(x1=x1, y1=y1, x2=x1 + self.side, y2=y1 + self.side, label=f"{self.colour} {self.kind}")


class VideoScene(_Frozen):
    size: int = Field(ge=16)
    fps: float = Field(gt=0)
    n_frames: int = Field(ge=2)
    background: str = "white"
    tracks: tuple[Track, ...]

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def times(self) -> np.ndarray:
        """Timestamp of every frame, seconds."""
        return np.arange(self.n_frames) / self.fps


@dataclass(frozen=True)
class TemporalQuery:
    question: str
    span: TimeSpan  # ground truth, seconds
    lang: Literal["en", "zh"]


def frame_scene(video: VideoScene, index: int) -> Scene:
    """The still scene shown by frame `index`."""
    t = index / video.fps
    shapes = []
    for track in video.tracks:
        box = track.box_at(t)
        if box is not None:
            shapes.append(ShapeSpec(kind=track.kind, colour=track.colour, box=box,
                                    position=position_word(box, video.size)))
    return Scene(size=video.size, background=video.background, shapes=tuple(shapes))


def render_video(video: VideoScene) -> np.ndarray:
    """All frames as a (T, H, W, 3) uint8 array."""
    return np.stack([np.asarray(render(frame_scene(video, i))) for i in range(video.n_frames)])


def sample_video(rng: np.random.Generator, *, size: int = 64, fps: float = 4.0,
                 n_frames: int | tuple[int, int] = (8, 16), n_tracks: int | tuple[int, int] = (1, 2),
                 kinds: Sequence[str] = BASE_KINDS, colours: Sequence[str] | None = None,
                 backgrounds: Sequence[str] = ("white",), scale: tuple[float, float] = (0.22, 0.32)) -> VideoScene:
    """Sample a clip: each track (at most 2, distinct colour+kind) appears, disappears or moves once.

    Args:
        rng: the only source of randomness.
        size: frame side, pixels.
        fps: frames per second; event times are multiples of 1 / fps.
        n_frames: exact count or inclusive range (>= 4).
        n_tracks: 1 or 2 shapes (exact or inclusive range).
        kinds, colours, backgrounds: vocabularies to draw from.
        scale: range of the shape side as a fraction of the frame side.
    """
    lo_f, hi_f = (n_frames, n_frames) if isinstance(n_frames, int) else n_frames
    lo_t, hi_t = (n_tracks, n_tracks) if isinstance(n_tracks, int) else n_tracks
    if lo_f < 4 or hi_f < lo_f or not 1 <= lo_t <= hi_t <= 2:
        raise UsageError("need n_frames >= 4 and 1-2 tracks", received=(n_frames, n_tracks),
                         fix="pass e.g. n_frames=(8, 16), n_tracks=(1, 2)")
    colours = tuple(colours or COLOURS)
    frames = int(rng.integers(lo_f, hi_f + 1))
    count = int(rng.integers(lo_t, hi_t + 1))
    background = str(backgrounds[int(rng.integers(len(backgrounds)))])
    names = [(k, c) for k in kinds for c in colours]
    picks = rng.choice(len(names), size=count, replace=False)
    bands = [0, 1] if count == 2 else [int(rng.integers(2))]
    tracks = [_sample_track(rng, *names[int(p)], band, size, fps, frames, scale) for p, band in zip(picks, bands)]
    return VideoScene(size=size, fps=fps, n_frames=frames, background=background, tracks=tuple(tracks))


def _sample_track(rng, kind, colour, band, size, fps, frames, scale) -> Track:
    margin = max(1, size // 32)
    side = int(rng.integers(round(scale[0] * size), round(scale[1] * size) + 1))
    side = min(side, size // 2 - 2 * margin)
    y1 = int(rng.integers(band * size // 2 + margin, (band + 1) * size // 2 - margin - side + 1))
    xs = (margin, size - margin - side)
    event: Event = ("appears", "disappears", "moves")[int(rng.integers(3))]
    a, b = sorted(int(v) for v in rng.choice(np.arange(1, frames - 1), size=2, replace=False))
    x_start = int(rng.integers(xs[0], xs[1] + 1))
    common = dict(kind=kind, colour=colour, side=side, event=event)
    if event == "appears":
        return Track(**common, start=(x_start, y1), end=(x_start, y1), appear_s=a / fps)
    if event == "disappears":
        return Track(**common, start=(x_start, y1), end=(x_start, y1), appear_s=0.0, disappear_s=a / fps)
    left_to_right = bool(rng.integers(2))
    x0, x1 = (xs[0], xs[1]) if left_to_right else (xs[1], xs[0])
    return Track(**common, start=(x0, y1), end=(x1, y1), appear_s=0.0, move_start_s=a / fps, move_end_s=b / fps)


def temporal_queries(video: VideoScene, lang: Literal["en", "zh"] = "en") -> list[TemporalQuery]:
    """For each track: when it is visible ("when does the red circle appear?" -> visible span) and, for
    a moving one, when it moves. Spans are [start, end) in seconds; `end` of a shape visible to the end
    is the clip duration."""
    out = []
    for tr in video.tracks:
        name = f"{COLOURS[tr.colour].zh}的{SHAPES[tr.kind].zh}" if lang == "zh" else f"the {tr.colour} {tr.kind}"
        end = video.duration_s if tr.disappear_s is None else tr.disappear_s
        q = f"{name}什么时候出现？" if lang == "zh" else f"When does {name} appear?"
        out.append(TemporalQuery(q, TimeSpan(start=tr.appear_s, end=end, label=f"{tr.colour} {tr.kind}"), lang))
        if tr.event == "moves":
            q = f"{name}什么时候移动？" if lang == "zh" else f"When does {name} move?"
            out.append(TemporalQuery(q, TimeSpan(start=tr.move_start_s, end=tr.move_end_s,
                                                 label=f"{tr.colour} {tr.kind}"), lang))
    return out
