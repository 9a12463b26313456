"""mmkit.media.video: sampled frames are the right ones, seeking keeps memory flat, frame inputs, errors."""
from __future__ import annotations

import base64
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from mmkit.exceptions import MediaError, UsageError
from mmkit.media import MediaPolicy, load_video
from mmkit.media.video import _SeekingReader

@pytest.fixture(scope="module")
def video(tmp_path_factory, make_video) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "100.mp4", 100)


def test_fps_sampling_returns_the_frames_and_times_it_names(video, read_index):
    clip = load_video(video, fps=2.0)
    assert clip.indices.tolist() == [0, 14, 28, 42, 57, 71, 85, 99]  # linspace(0, 99, 8).round()
    assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
    np.testing.assert_allclose(clip.timestamps, clip.indices / 25.0)
    assert clip.frames.shape == (8, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert (clip.source_fps, clip.total_frames, clip.duration, clip.sample_fps) == (25.0, 100, 4.0, 2.0)


def test_time_range_and_nframes(video, read_index):
    clip = load_video(video, nframes=6, video_start=1.0, video_end=3.0)  # frames 25..75
    assert clip.indices.tolist() == [25, 35, 45, 55, 65, 75]
    assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
    np.testing.assert_allclose(clip.timestamps, [1.0, 1.4, 1.8, 2.2, 2.6, 3.0])  # from the video's start
    assert clip.total_frames == 51 and clip.duration == pytest.approx(2.04)
    assert clip.sample_fps == pytest.approx(6 / 51 * 25)


def test_b_frame_video_decodes_the_right_frames(tmp_path, read_index, make_video):
    path = make_video(tmp_path / "x264.mp4", 90, codec="libx264", gop=30)
    clip = load_video(path, nframes=12, video_start=0.5)
    assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
    assert clip.indices[0] == 13 and clip.indices[-1] == 89


def test_reader_seeks_instead_of_decoding_everything(tmp_path, read_index, make_video):
    path = make_video(tmp_path / "long.mp4", 600, gop=12)
    with av.open(str(path)) as container:
        reader = _SeekingReader(container, container.streams.video[0], 25.0, "long", 600)
        got = [(read_index(frame), index) for frame, index, _ in reader.frames_at([5, 200, 401, 599])]
    assert got == [(5, 5), (200, 200), (401, 401), (599, 599)]
    assert reader.seeks == 4 and reader.decoded <= 4 * 12  # at most one GOP per target, not 600 frames
    with av.open(str(path)) as container:  # dense targets: decode forward, no seek per frame
        reader = _SeekingReader(container, container.streams.video[0], 25.0, "long", 600)
        assert [i for _, i, _ in reader.frames_at(list(range(30, 60, 3)))] == list(range(30, 60, 3))
    assert reader.seeks <= 3 and reader.decoded <= 36


@pytest.mark.parametrize("container_ext, codec", [("mkv", "libx264"), ("avi", "mpeg4")])
def test_other_containers_seek_too(tmp_path, container_ext, codec, read_index, make_video):
    """MKV has no frame count in its header and loads its index lazily: the reader guesses keyframe spacing."""
    path = make_video(tmp_path / f"v.{container_ext}", 300, codec=codec, gop=24)
    clip = load_video(path, nframes=10)
    assert clip.total_frames == 300 and clip.indices.tolist() == [0, 33, 66, 100, 133, 166, 199, 233, 266, 299]
    assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
    with av.open(str(path)) as container:
        reader = _SeekingReader(container, container.streams.video[0], 25.0, "v", 300)
        got = [(read_index(frame), index) for frame, index, _ in reader.frames_at([3, 100, 101, 102, 250, 299])]
    assert got == [(3, 3), (100, 100), (101, 101), (102, 102), (250, 250), (299, 299)]
    assert reader.decoded < 150  # not the whole file


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class _CountedFrame:
    """Stands in for a decoded av.VideoFrame and counts how many are alive at once."""

    live = peak = made = 0

    def __init__(self, frame):
        self._frame = frame
        type(self).live += 1
        type(self).made += 1
        type(self).peak = max(type(self).peak, type(self).live)

    def __getattr__(self, name):
        return getattr(self._frame, name)

    def __del__(self):
        type(self).live -= 1


def _frames_held(path, monkeypatch, read_index) -> tuple[int, int]:
    """(most decoded frames alive at once, frames decoded) while load_video samples 8 frames from `path`."""
    decode = _SeekingReader._decode

    def counted(self):
        for frame in decode(self):
            yield _CountedFrame(frame)

    monkeypatch.setattr(_SeekingReader, "_decode", counted)
    _CountedFrame.live = _CountedFrame.peak = _CountedFrame.made = 0
    clip = load_video(path, nframes=8)
    assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
    monkeypatch.setattr(_SeekingReader, "_decode", decode)
    return _CountedFrame.peak, _CountedFrame.made


def test_peak_memory_does_not_grow_with_video_length(tmp_path, monkeypatch, make_video, read_index):
    short = make_video(tmp_path / "short.mp4", 60, width=128, height=96)
    long = make_video(tmp_path / "long.mp4", 240, width=128, height=96)
    frame_bytes = 128 * 96 * 3

    # 1. Decoded frames alive at once (ffmpeg-owned memory tracemalloc cannot see): constant, and the long
    #    video is not decoded through: 8 targets cost at most 8 GOPs of 12 frames.
    held_short, decoded_short = _frames_held(short, monkeypatch, read_index)
    held_long, decoded_long = _frames_held(long, monkeypatch, read_index)
    assert held_short <= 2 and held_long <= 2
    assert decoded_long <= 8 * 12 < 240

    # 2. Python/numpy heap peak: a whole-file decoder (copying every frame) grows ~4x; ours does not.
    def decode_all(path):
        with av.open(str(path)) as container:
            return [np.array(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]

    naive_short, naive_long = _peak_bytes(lambda: decode_all(short)), _peak_bytes(lambda: decode_all(long))
    assert naive_short > 60 * frame_bytes and naive_long > 3.5 * naive_short  # the measurement sees held frames
    ours_short = _peak_bytes(lambda: load_video(short, nframes=8))
    ours_long = _peak_bytes(lambda: load_video(long, nframes=8))
    assert ours_long < ours_short + 2 * frame_bytes  # 4x the video, same memory
    assert ours_long < 12 * frame_bytes  # the 8 sampled frames plus working space


def test_frame_lists_and_arrays_follow_the_same_sampling(video, index_frame, read_index):
    frames = np.stack([index_frame(i) for i in range(100)])
    from_file = load_video(video, fps=2.0)
    for source in (frames, list(frames), [index_frame(i) for i in range(100)]):
        clip = load_video(source, fps=2.0, source_fps=25.0)
        assert clip.indices.tolist() == from_file.indices.tolist()
        assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
        np.testing.assert_allclose(clip.timestamps, from_file.timestamps)
    with pytest.raises(UsageError, match="source_fps"):
        load_video(frames)
    with pytest.raises(UsageError, match="source_fps is only for"):
        load_video(video, source_fps=25.0)
    with pytest.raises(UsageError, match=r"uint8 shaped \(T, H, W, 3\)"):
        load_video(frames.astype(np.float32) / 255, source_fps=25.0)
    with pytest.raises(UsageError, match="same size"):
        load_video([index_frame(0), index_frame(1, 128, 96)], nframes=2, source_fps=1.0)


def test_data_url_and_bytes_sources(video):
    data = video.read_bytes()
    for source in (data, "data:video/mp4;base64," + base64.b64encode(data).decode()):
        assert load_video(source, nframes=4).indices.tolist() == [0, 33, 66, 99]


def test_errors(video, tmp_path):
    with pytest.raises(MediaError, match="empty"):
        load_video(b"")
    with pytest.raises(MediaError, match="not a readable video"):
        load_video(b"definitely not a video" * 10)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(video.read_bytes()[:2000])
    with pytest.raises(MediaError):
        load_video(truncated)
    with pytest.raises(MediaError, match="max_image_pixels=100"):
        load_video(video, policy=MediaPolicy(max_image_pixels=100))
    with pytest.raises(UsageError, match="selects no frames"):
        load_video(video, video_start=3.0, video_end=2.0)
    with pytest.raises(UsageError, match="sampled frames"):
        load_video(video, nframes=200)
