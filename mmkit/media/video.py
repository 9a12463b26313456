"""Videos to sampled RGB frames: `load_video()` -> `VideoClip` (frames THWC uint8 + the times they show).

Owns frame sampling (the qwen-vl-utils rule: `linspace(start_frame, end_frame, nframes).round()`) and a PyAV
decoder that seeks to the sampled frames (keyframe seek, then decode forward to each target) instead of
decoding the whole file, so memory holds the sampled frames plus one, whatever the video's length.
Files and URLs go through `fetch.read_source` (the `MediaPolicy` bounds apply). Knows nothing about models.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator, Sequence, Union

import av
import numpy as np
from PIL import Image

from ..exceptions import MediaError, UsageError
from .fetch import DEFAULT_MEDIA_POLICY, MediaPolicy, MediaSource, read_source
from .images import load_image
from .resize import smart_nframes, video_frame_range

__all__ = ["VideoClip", "VideoSource", "load_video", "sample_indices"]

VideoSource = Union[MediaSource, Sequence[Union[Image.Image, np.ndarray]], np.ndarray]


@dataclass(frozen=True, eq=False)
class VideoClip:
    """Frames sampled from a video, with where they came from.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB frames.
        timestamps: (T,) float64 seconds shown by each frame, from the start of the video (not of the range).
        indices: (T,) int64 index of each frame in the whole video.
        source_fps: the video's frame rate.
        total_frames: frames in the selected `[video_start, video_end]` range (all frames without a range).
        duration: seconds covered by the selected range, `total_frames / source_fps`.
        sample_fps: effective sampling rate, `T / total_frames * source_fps` (as qwen-vl-utils computes it).
    """

    frames: np.ndarray
    timestamps: np.ndarray
    indices: np.ndarray
    source_fps: float
    total_frames: int
    duration: float
    sample_fps: float


def sample_indices(start_frame: int, end_frame: int, nframes: int) -> list[int]:
    """The frame indices qwen-vl-utils samples: `torch.linspace(start, end, n).round()` (float32, ties to even)."""
    import torch  # here, not at module top: `import mmkit.media` stays light (torch takes seconds to import)

    return torch.linspace(start_frame, end_frame, nframes).round().long().tolist()


def load_video(
    source: VideoSource,
    *,
    fps: float = 2.0,
    nframes: int | None = None,
    min_frames: int = 4,
    max_frames: int = 768,
    video_start: float | None = None,
    video_end: float | None = None,
    source_fps: float | None = None,
    policy: MediaPolicy = DEFAULT_MEDIA_POLICY,
) -> VideoClip:
    """Sample frames from a video the way qwen-vl-utils does, decoding only what is needed.

    Args:
        source: a video file path, a `file://`, `http(s)://` or `data:` URL, raw bytes, a list of frames
            (PIL images or uint8 HWC arrays), or a (T, H, W, 3) uint8 array. Frames need `source_fps`.
        fps: frames to sample per second of video (ignored when `nframes` is given).
        nframes: sample exactly this many frames (rounded to an even number).
        min_frames: at least this many frames when sampling by `fps`.
        max_frames: at most this many frames when sampling by `fps`.
        video_start: first second of the range to sample from (default: the start).
        video_end: last second of the range to sample from (default: the end).
        source_fps: frame rate of a frame list/array; refused for files, which carry their own.
        policy: safety bounds for fetching and decoding (see `MediaPolicy`).

    Returns:
        A `VideoClip`.

    Raises:
        UsageError: bad arguments (e.g. a frame list without `source_fps`, an empty time range).
        UnsafeSourceError: a safety rule refused the source.
        MediaError: the video cannot be read, has no video stream, or its frames are too large.
    """
    sampling = dict(fps=None if nframes is not None else fps, nframes=nframes,
                    min_frames=min_frames, max_frames=max_frames)
    if isinstance(source, (np.ndarray, list, tuple)):
        return _sample_frames(source, source_fps, video_start, video_end, sampling, policy)
    if source_fps is not None:
        raise UsageError("source_fps is only for frame lists and arrays", received=source_fps,
                         fix="Drop source_fps: a video file carries its own frame rate")
    fetched = read_source(source, policy=policy)
    if fetched.data is not None and not fetched.data:
        raise MediaError("the video data is empty (0 bytes)", received=fetched.name, fix="Pass a non-empty file")
    try:
        container = av.open(str(fetched.path) if fetched.path is not None else fetched.open())
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaError(f"not a readable video: {err}", received=fetched.name,
                         fix="Pass an MP4/WebM/MKV/AVI file with a video stream") from err
    with container:
        try:
            return _sample_container(container, fetched.name, video_start, video_end, sampling, policy)
        except av.FFmpegError as err:
            raise MediaError(f"video data is corrupt: {err}", received=fetched.name,
                             fix="Re-encode the video") from err


# ---------------------------------------------------------------- frames already in memory


def _sample_frames(
    frames: Any, source_fps: float | None, start: float | None, end: float | None, sampling: dict,
    policy: MediaPolicy,
) -> VideoClip:
    if source_fps is None or isinstance(source_fps, bool) or not source_fps > 0:
        raise UsageError("a frame list or array needs source_fps > 0", received=source_fps,
                         fix="Pass source_fps=<frames per second the frames were taken at>")
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise UsageError("a video array must be uint8 shaped (T, H, W, 3)",
                             received=f"dtype={frames.dtype}, shape={frames.shape}",
                             fix="Convert to uint8 THWC RGB (e.g. array.transpose(0, 2, 3, 1) for TCHW)")
    if len(frames) == 0:
        raise MediaError("the frame list is empty", received=frames, fix="Pass at least two frames")
    total = len(frames)
    first, last, count = video_frame_range(total, float(source_fps), start, end)
    n = smart_nframes(count, float(source_fps), **sampling)
    indices = sample_indices(first, last, n)
    if isinstance(frames, np.ndarray):
        selected = frames[indices]
    else:
        selected = np.stack(_same_size([np.asarray(load_image(frames[i], policy=policy)) for i in indices]))
    return _clip(selected, np.asarray(indices) / float(source_fps), indices, float(source_fps), count)


def _same_size(arrays: list[np.ndarray]) -> list[np.ndarray]:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise UsageError("all frames of a video must have the same size", received=sorted(shapes),
                         fix="Resize the frames to one size first")
    return arrays


def _clip(frames: np.ndarray, times: np.ndarray, indices: list[int], fps: float, count: int) -> VideoClip:
    return VideoClip(
        frames=frames, timestamps=np.asarray(times, dtype=np.float64), indices=np.asarray(indices, dtype=np.int64),
        source_fps=fps, total_frames=count, duration=count / fps, sample_fps=len(indices) / max(count, 1e-6) * fps,
    )


# ---------------------------------------------------------------- PyAV


def _sample_container(
    container: Any, name: str, start: float | None, end: float | None, sampling: dict, policy: MediaPolicy
) -> VideoClip:
    if not container.streams.video:
        raise MediaError("the file has no video stream", received=name, fix="Pass a video file")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise MediaError("the video stream has no frame rate", received=name, fix="Re-encode the video")
    fps = float(rate)
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > policy.max_image_pixels:
        raise MediaError(f"video frames are {width}x{height}, over max_image_pixels={policy.max_image_pixels}",
                         received=name, fix="Downscale the video or raise MediaPolicy.max_image_pixels")
    total = _frame_count(container, stream, fps)
    if total <= 0:
        raise MediaError("the video has no frames", received=name, fix="Pass a non-empty video")
    first, last, count = video_frame_range(total, fps, start, end)
    n = smart_nframes(count, fps, **sampling)
    indices = sample_indices(first, last, n)
    reader = _SeekingReader(container, stream, fps, name, total)
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    times = np.empty(n, dtype=np.float64)
    actual = []
    for slot, (frame, index, seconds) in enumerate(reader.frames_at(indices)):
        if frame.shape != frames.shape[1:]:
            raise MediaError("the video changes frame size mid-stream", received=(frame.shape, frames.shape[1:]),
                             fix="Re-encode the video at one size")
        frames[slot], times[slot] = frame, seconds
        actual.append(index)
    return _clip(frames, times, actual, fps, count)


def _frame_count(container: Any, stream: Any, fps: float) -> int:
    """Frames in the stream: the header's count, else its duration times the frame rate."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration is not None and stream.time_base is not None:
        return int(round(float(stream.duration * stream.time_base) * fps))
    if container.duration is not None:
        return int(round(container.duration / av.time_base * fps))
    return 0


class _SeekingReader:
    """Yields the frames at sorted target indices, seeking to a keyframe only when that skips decoding.

    Seeking lands on the last keyframe at or before the target; decoding forward from there reaches it.
    From the current position we keep decoding forward unless a keyframe lies between here and the target
    (known from the container index when it has one, else guessed from the keyframe spacing seen so far).
    """

    def __init__(self, container: Any, stream: Any, fps: float, name: str, total_frames: int) -> None:
        self.container, self.stream, self.fps, self.name = container, stream, fps, name
        self.time_base: Fraction = stream.time_base
        self.start_pts = stream.start_time or 0
        # MP4/AVI index every frame up front; MKV/WebM load their cues lazily (the index starts nearly empty),
        # so an index counts only when it covers (almost) every frame.
        entries = list(getattr(stream, "index_entries", None) or [])
        keys = sorted(e.timestamp for e in entries if e.is_keyframe)
        complete = bool(keys) and len(entries) >= 0.9 * total_frames
        self.index_keyframes = [self._index_of(ts) for ts in keys] if complete else None
        self.seen_keyframes: list[int] = []
        self.decoded = 0  # frames decoded, for tests and logs
        self.seeks = 0

    def _index_of(self, pts: int) -> int:
        return int(round(float((pts - self.start_pts) * self.time_base) * self.fps))

    def _should_seek(self, position: int, target: int) -> bool:
        if self.index_keyframes is not None:
            at = bisect.bisect_right(self.index_keyframes, target) - 1
            return at >= 0 and self.index_keyframes[at] > position
        gaps = [b - a for a, b in zip(self.seen_keyframes, self.seen_keyframes[1:])]
        return target - position > (max(gaps) if gaps else max(2, math.ceil(2 * self.fps)))

    def _seek(self, target: int, margin_s: float = 0.0) -> Iterator[Any]:
        seconds = max(0.0, target / self.fps - margin_s)
        self.container.seek(self.start_pts + int(round(seconds / self.time_base)), stream=self.stream,
                            backward=True, any_frame=False)
        self.seeks += 1
        return self._decode()

    def _decode(self) -> Iterator[Any]:
        try:
            for frame in self.container.decode(self.stream):
                if frame.pts is None:
                    raise MediaError("the video has frames without timestamps; cannot seek in it",
                                     received=self.name, fix="Remux it into MP4/MKV (ffmpeg -i in -c copy out.mp4)")
                self.decoded += 1
                if frame.key_frame:
                    index = self._index_of(frame.pts)
                    if not self.seen_keyframes or index > self.seen_keyframes[-1]:
                        self.seen_keyframes.append(index)
                yield frame
        except av.FFmpegError as err:
            raise MediaError(f"video data is corrupt: {err}", received=self.name, fix="Re-encode the video") from err

    def frames_at(self, targets: list[int]) -> Iterator[tuple[np.ndarray, int, float]]:
        frames: Iterator[Any] | None = None
        position, current = -1, None  # index and frame last decoded
        for target in targets:
            if current is None or target < position or (target > position and self._should_seek(position, target)):
                frames, position, current = self._landing(target), -1, None
            while position < target:
                frame = next(frames, None)  # type: ignore[arg-type]
                if frame is None:  # the header over-counted frames: the last decoded frame is the nearest
                    break
                position, current = self._index_of(frame.pts), frame
            if current is None:
                raise MediaError(f"could not decode frame {target}", received=self.name, fix="Re-encode the video")
            yield current.to_ndarray(format="rgb24"), position, float((current.pts - self.start_pts) * self.time_base)

    def _landing(self, target: int) -> Iterator[Any]:
        """A decode iterator whose first frame is at or before `target` (retrying further back if a seek overshot)."""
        for margin_s in (0.0, 2.0, math.inf):
            frames = self._seek(target, margin_s)
            first = next(frames, None)
            if first is not None and (self._index_of(first.pts) <= target or margin_s == math.inf):
                return _chain(first, frames)
        raise MediaError(f"could not seek to frame {target}", received=self.name, fix="Re-encode the video")


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    held = [first]
    del first  # the generator must not keep the first frame alive after handing it out
    yield held.pop()
    yield from rest
