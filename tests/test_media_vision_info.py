"""mmkit.media.vision_info against the real qwen-vl-utils 0.0.14 process_vision_info (run in a subprocess).

The upstream interpreter (the `upstream` fixture in tests/conftest.py) has a fake torchvision whose read_video decodes
with PyAV and whose resize is torchvision's uint8 tensor resize; everything else is the real upstream code.
"""
from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmkit.exceptions import UsageError
from mmkit.media import MediaPolicy, fetch_image, fetch_video, process_vision_info

UPSTREAM_SUMMARY = '''
import hashlib
def digest(x):
    if hasattr(x, "numpy"):
        return [list(x.shape), str(x.dtype), hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()]
    return [list(x.size), x.mode, hashlib.sha256(x.tobytes()).hexdigest()]
def meta(m):
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in m.items() if k != "video_backend"}
def summary(result):
    images, videos = result[0], result[1]
    out = {"images": None if images is None else [digest(i) for i in images], "videos": None}
    if videos is not None:
        out["videos"] = [[digest(v[0]), meta(v[1])] if isinstance(v, tuple) else digest(v) for v in videos]
    if len(result) == 3:
        out["kwargs"] = result[2]
    return out
'''


def digest(x):
    if isinstance(x, torch.Tensor):
        return [list(x.shape), str(x.dtype), hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()]
    return [list(x.size), x.mode, hashlib.sha256(x.tobytes()).hexdigest()]


def summary(result):
    images, videos = result[0], result[1]
    out = {"images": None if images is None else [digest(i) for i in images], "videos": None}
    if videos is not None:
        out["videos"] = [
            [digest(v[0]), {k: val for k, val in v[1].items() if k != "video_backend"}] if isinstance(v, tuple)
            else digest(v) for v in videos
        ]
    if len(result) == 3:
        out["kwargs"] = result[2]
    return out


@pytest.fixture(scope="module")
def upstream_process(upstream):
    def run(messages, **kwargs):
        return upstream(UPSTREAM_SUMMARY + '''
messages, kwargs = INPUT
RESULT = summary(vp.process_vision_info(messages, **kwargs))
''', [messages, kwargs])

    return run


@pytest.fixture(scope="module")
def media(tmp_path_factory, index_frame, make_video):
    folder = tmp_path_factory.mktemp("vision_info")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)).save(folder / "rgb.png")
    rgba = rng.integers(0, 256, (90, 33, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (600, 1300, 3), dtype=np.uint8)).save(folder / "big.jpg", quality=90)
    frames = []
    for i in range(5):
        path = folder / f"frame{i}.png"
        Image.fromarray(index_frame(i, 96, 72)).save(path)
        frames.append(str(path))
    return {
        "folder": folder, "rgb": str(folder / "rgb.png"), "rgba": str(folder / "rgba.png"),
        "big": str(folder / "big.jpg"), "frames": frames,
        "video": str(make_video(folder / "v.mp4", 60, width=96, height=80)),
    }


@pytest.mark.parametrize("patch", [14, 16])
def test_images_match_upstream_pixel_for_pixel(media, patch, upstream_process):
    data_url = "data:image/png;base64," + base64.b64encode(open(media["rgb"], "rb").read()).decode()
    content = [
        {"type": "image", "image": media["rgb"]},
        {"type": "image", "image": "file://" + media["rgba"]},
        {"type": "image", "image": media["big"], "max_pixels": 200_000},
        {"type": "image", "image": media["big"], "min_pixels": 2_000_000, "max_pixels": 3_000_000},
        {"type": "image", "image": media["rgb"], "resized_height": 300, "resized_width": 150},
        {"type": "image_url", "image_url": data_url},
    ]
    messages = [{"role": "user", "content": [*content, {"type": "text", "text": "describe"}]}]
    expected = upstream_process(messages, image_patch_size=patch, return_video_kwargs=True)
    ours = summary(process_vision_info(messages, image_patch_size=patch, return_video_kwargs=True))
    assert ours == expected
    # 100x70: 70 / 28 = 2.5 rounds to 2 (ties to even) -> 56; 100 / 32 = 3.125 -> 96
    assert ours["images"][0][0] == ([112, 56] if patch == 14 else [96, 64])
    assert expected["videos"] is None and expected["kwargs"] == {"do_sample_frames": False, "fps": []}


@pytest.mark.parametrize("patch, with_metadata", [(14, False), (16, True)])
def test_video_file_matches_upstream_tensor_for_tensor(media, patch, with_metadata, upstream_process):
    messages = [{"role": "user", "content": [
        {"type": "video", "video": media["video"], "fps": 4.0, "max_pixels": 150_000},
        {"type": "video", "video": "file://" + media["video"], "nframes": 6},
        {"type": "text", "text": "what happens?"},
    ]}]
    kwargs = dict(image_patch_size=patch, return_video_kwargs=True, return_video_metadata=with_metadata)
    expected = upstream_process(messages, **kwargs)
    result = process_vision_info(messages, **kwargs)
    ours = summary(result)
    assert ours == expected
    first = result[1][0][0] if with_metadata else result[1][0]
    # 60 frames at 25 fps = 2.4 s; at 4 fps 9.6 frames -> floored to even: 8
    assert first.dtype == torch.float32 and first.shape[0] == 8
    assert torch.equal(first, first.round()) and 0 <= first.min() and first.max() <= 255
    if with_metadata:
        assert result[1][1][1]["frames_indices"] == [0, 12, 24, 35, 47, 59]
        assert result[1][1][1]["video_backend"] == "pyav" and result[2] == {"do_sample_frames": False}
    else:
        assert result[2] == {"do_sample_frames": False, "fps": [pytest.approx(8 / 60 * 25), pytest.approx(2.5)]}


def test_frame_list_video_matches_upstream_including_the_prefetch_quirk(media, upstream_process):
    messages = [{"role": "user", "content": [
        {"type": "video", "video": media["frames"], "sample_fps": 1.0, "raw_fps": 30.0},
    ]}]
    expected = upstream_process(messages, return_video_kwargs=True, return_video_metadata=True)
    result = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
    assert summary(result) == expected
    video, metadata = result[1][0]
    assert video.shape[0] == 6  # 5 frames padded to an even count with the last one
    assert metadata == {"fps": 30.0, "frames_indices": [0, 1, 2, 3, 4, 5], "total_num_frames": 180.0}


def test_fetch_functions_and_return_shapes(media):
    image = fetch_image({"image": media["rgb"]}, image_patch_size=16)
    assert image.size == (96, 64) and image.mode == "RGB"
    assert fetch_image({"image_url": {"url": media["rgb"]}}).size == (112, 56)  # OpenAI-style element
    video, sample_fps = fetch_video({"video": media["video"], "nframes": 4}, return_video_sample_fps=True)
    assert video.shape[:2] == (4, 3) and sample_fps == pytest.approx(4 / 60 * 25)
    clip = fetch_video({"video": media["video"], "nframes": 4, "video_start": 1.0, "resized_height": 56,
                        "resized_width": 84}, return_video_metadata=True)
    assert clip[0].shape == (4, 3, 56, 84)
    assert clip[1] == {"fps": 25.0, "frames_indices": [25, 36, 48, 59], "total_num_frames": 35,
                       "video_backend": "pyav"}
    assert process_vision_info([{"role": "user", "content": "just text"}]) == (None, None)
    batch = [[{"role": "user", "content": [{"image": media["rgb"]}]}]] * 2
    assert len(process_vision_info(batch)[0]) == 2


def test_frame_arrays_and_policy_reach_every_source(media, index_frame):
    frames = np.stack([index_frame(i, 96, 72) for i in range(4)])
    video = fetch_video({"video": frames})
    # prefetch quirk: 72x96 -> 112x168 (multiples of 56, min 4*56^2), then the video budget -> 280x392
    assert video.shape == (4, 3, 280, 392)
    assert torch.equal(video, fetch_video({"video": [Image.fromarray(f) for f in frames]}))  # array == PIL list
    with pytest.raises(UsageError, match="outside the allowed roots"):
        process_vision_info([{"role": "user", "content": [{"image": media["rgb"]}]}],
                            policy=MediaPolicy(allowed_roots=(media["folder"] / "elsewhere",)))
    with pytest.raises(UsageError, match="image, image_url or video"):
        process_vision_info([{"role": "user", "content": [{"type": "image"}]}])
    with pytest.raises(UsageError, match="only one of fps and nframes"):
        fetch_video({"video": media["video"], "fps": 2, "nframes": 4})


def test_importing_mmkit_media_does_not_import_torch():
    """torch is imported by the functions that need it, so `import mmkit.media` stays light."""
    code = "import sys, mmkit.media; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
