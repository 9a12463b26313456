"""Parity of mmkit.media.resize with the real qwen-vl-utils 0.0.14 source, integer for integer.

qwen_vl_utils imports torchvision at module top, so the real module is imported in a SUBPROCESS after a
minimal fake `torchvision` is put in that process's sys.modules (the `upstream` fixture, tests/conftest.py);
this test process never sees the fake.
"""
from __future__ import annotations

import math
import random
import sys

import pytest

from mmkit.exceptions import UsageError
from mmkit.media import resize as R

def ours(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except UsageError:
        return "error"


def _resize_grid() -> list[list]:
    sides = [1, 2, 3, 13, 14, 27, 28, 29, 42, 56, 70, 84, 98, 111, 112, 126, 140, 224, 333, 448, 500, 640, 719,
             720, 1000, 1080, 1920, 3000, 4032, 8000]
    pixel_settings = [(None, None), (4 * 28 * 28, 256 * 28 * 28), (3136, 12845056), (1, 10**9), (50_000, 50_000),
                      (200_000, 100_000), (28 * 28, 28 * 28), (1000, 5000), (128 * 32 * 32, 768 * 32 * 32)]
    grid = [[h, w, f, lo, hi] for h in sides for w in sides for f in (28, 32) for lo, hi in pixel_settings[:3]]
    rng = random.Random(0)
    for _ in range(6000):
        h = int(math.exp(rng.uniform(0, math.log(20000))))
        w = max(1, int(h * math.exp(rng.uniform(-6, 6))))
        lo, hi = rng.choice(pixel_settings)
        grid.append([h, w, rng.choice([28, 32, 56, 64]), lo, hi])
    return grid


def _nframes_grid() -> list[list]:
    rng = random.Random(1)
    grid = []
    for _ in range(6000):
        total = rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 100, 767, 768, 769, 1537, rng.randint(1, 5000)])
        video_fps = rng.choice([0.5, 1, 7.5, 23.976, 24, 25, 29.97, 30, 59.94, 60, rng.uniform(0.2, 120)])
        ele = {}
        if rng.random() < 0.3:
            ele["nframes"] = rng.choice([0, 1, 2, 3, 4, 5, 9, 10, 11, 64, 768, rng.randint(1, 2000)])
        if rng.random() < 0.7 or "nframes" not in ele:
            if rng.random() < 0.7:
                ele["fps"] = rng.choice([0.1, 0.5, 1, 2, 2.5, 3.3, 4, 10, 30])
        for key, choices in (("min_frames", [1, 2, 3, 4, 5, 7, 16, 100]),
                             ("max_frames", [1, 2, 3, 7, 8, 64, 768, 1000])):
            if rng.random() < 0.3:
                ele[key] = rng.choice(choices)
        grid.append([ele, total, video_fps])
    return grid


@pytest.fixture(scope="module")
def upstream_integers(upstream):
    payload = {"resize": _resize_grid(), "nframes": _nframes_grid(),
               "range": [[t, f, s, e] for t in (1, 2, 10, 100, 251) for f in (1, 24, 29.97, 30)
                         for s in (None, -1, 0, 0.01, 0.5, 1.04, 3.3, 9.99, 400)
                         for e in (None, -2, 0, 0.03, 0.5, 1, 2.5, 8.35, 1000)]}
    return upstream('''
        res = [outcome(vp.smart_resize, h, w, f, lo, hi) for h, w, f, lo, hi in INPUT["resize"]]
        nfr = [outcome(vp.smart_nframes, ele, total_frames=t, video_fps=f) for ele, t, f in INPUT["nframes"]]
        rng = [outcome(vp.calculate_video_frame_range, {"video_start": s, "video_end": e}, t, f)
               for t, f, s, e in INPUT["range"]]
        RESULT = {"resize": res, "nframes": nfr, "range": rng, "constants": [
            vp.MAX_RATIO, vp.SPATIAL_MERGE_SIZE, vp.IMAGE_MIN_TOKEN_NUM, vp.IMAGE_MAX_TOKEN_NUM,
            vp.VIDEO_MIN_TOKEN_NUM, vp.VIDEO_MAX_TOKEN_NUM, vp.FPS, vp.FRAME_FACTOR, vp.FPS_MIN_FRAMES,
            vp.FPS_MAX_FRAMES, vp.MODEL_SEQ_LEN]}
    ''', payload) | {"payload": payload}


def test_constants_match_upstream(upstream_integers):
    assert upstream_integers["constants"] == [
        R.MAX_RATIO, R.SPATIAL_MERGE_SIZE, R.IMAGE_MIN_TOKEN_NUM, R.IMAGE_MAX_TOKEN_NUM, R.VIDEO_MIN_TOKEN_NUM,
        R.VIDEO_MAX_TOKEN_NUM, R.FPS, R.FRAME_FACTOR, R.FPS_MIN_FRAMES, R.FPS_MAX_FRAMES, R.MODEL_SEQ_LEN]


def test_smart_resize_matches_upstream_on_grid(upstream_integers):
    grid = upstream_integers["payload"]["resize"]
    expected = upstream_integers["resize"]
    got = [ours(R.smart_resize, h, w, f, lo, hi) for h, w, f, lo, hi in grid]
    got = [list(g) if isinstance(g, tuple) else g for g in got]
    mismatches = [(args, e, g) for args, e, g in zip(grid, expected, got) if e != g]
    assert not mismatches, mismatches[:5]
    assert len(grid) > 10000
    assert 200 < expected.count("error") < len(grid) // 2  # the grid reaches both outcomes
    assert [0, 28] in expected or any(isinstance(e, list) and 0 in e for e in expected)  # floor branch can hit 0


def test_smart_nframes_matches_upstream_on_grid(upstream_integers):
    grid = upstream_integers["payload"]["nframes"]
    expected = upstream_integers["nframes"]
    got = [ours(R.smart_nframes, total, fps, **{k: v for k, v in ele.items()}) for ele, total, fps in grid]
    mismatches = [(args, e, g) for args, e, g in zip(grid, expected, got) if e != g]
    assert not mismatches, mismatches[:5]
    assert 500 < expected.count("error") < len(grid) - 2000


def test_frame_range_matches_upstream(upstream_integers):
    grid = upstream_integers["payload"]["range"]
    expected = upstream_integers["range"]
    got = [ours(R.video_frame_range, t, f, s, e) for t, f, s, e in grid]
    got = [list(g) if isinstance(g, tuple) else g for g in got]
    assert got == expected
    assert expected.count("error") > 50 and len(expected) - expected.count("error") > 400


def test_video_budget_and_sampling_match_upstream_fetch_video(upstream):
    """End to end through upstream fetch_video (torchvision reader faked): frame count, size, sample fps."""
    rng = random.Random(2)
    cases = []
    for _ in range(1000):
        ele = {"video": None}
        total, fps = rng.choice([4, 9, 30, 121, 700, 2000, 4000]), rng.choice([1, 10, 24, 29.97, 60])
        h, w = rng.choice([(48, 64), (360, 640), (1080, 1920), (2160, 3840), (720, 100), (99, 1001)])
        ele["video"] = f"fake:{total}:{h}:{w}:{fps}"
        if rng.random() < 0.3:
            ele["nframes"] = rng.choice([2, 4, 8, 31])
        elif rng.random() < 0.5:
            ele["fps"] = rng.choice([0.5, 1, 2, 4])
        for key, choices in (("min_pixels", [3136, 100_352, 200_000, 500_000]),
                             ("max_pixels", [10_000, 200_704, 401_408, 2_000_000]),
                             ("total_pixels", [1_000_000, 20_480 * 784, 90_000_000])):
            if rng.random() < 0.35:
                ele[key] = rng.choice(choices)
        if rng.random() < 0.1:
            ele["resized_height"], ele["resized_width"] = rng.choice([(100, 200), (56, 999), (600, 601)])
        cases.append([ele, rng.choice([14, 16])])
    expected = upstream('''
        SHAPE_ONLY[0] = True
        out = []
        for ele, patch in INPUT:
            got = outcome(vp.fetch_video, ele, image_patch_size=patch, return_video_sample_fps=True)
            out.append("error" if got == "error" else [list(got[0].shape), got[1], str(got[0].dtype)])
        SHAPE_ONLY[0] = False
        RESULT = out
    ''', cases)
    got = []
    for ele, patch in cases:
        _, total, h, w, fps = ele["video"].split(":")
        total, h, w, fps = int(total), int(h), int(w), float(fps)
        factor = R.factor_for(patch)
        n = ours(R.smart_nframes, total, fps, fps=ele.get("fps"), nframes=ele.get("nframes"))
        size = "error" if n == "error" else ours(R.video_target_size, h, w, n, ele, factor)
        got.append("error" if size == "error" else [[n, 3, *size], n / max(total, 1e-6) * fps, "torch.float32"])
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got) if e != g]
    assert not mismatches, mismatches[:5]
    assert sum(e != "error" for e in expected) > 600


def test_known_values():
    # Python round ties to even: 70 / 28 = 2.5 -> 2 -> 56; 42 / 28 = 1.5 -> 2 -> 56.
    assert R.smart_resize(70, 70, 28) == (56, 56)
    assert R.smart_resize(42, 42, 28) == (56, 56)
    assert R.smart_resize(1080, 1920, 28) == (1092, 1932)
    assert R.smart_resize(1080, 1920, 32, max_pixels=768 * 32 * 32) == (640, 1152)  # floor(665.1), floor(1182.4)
    # No max(factor, .) in the floor branch: a tiny max_pixels floors a side to 0, like upstream.
    assert R.smart_resize(28, 5000, 28, min_pixels=1, max_pixels=28 * 28 * 4) == (0, 728)
    assert R.factor_for(14) == 28 and R.factor_for(16) == 32
    assert R.smart_nframes(100, 25.0) == 8  # 4 s at 2 fps
    assert R.smart_nframes(100, 25.0, nframes=9) == 8  # round(4.5) = 4 (ties to even) * 2
    assert R.video_pixel_budget(8, 28) == (128 * 784, 768 * 784)
    assert R.video_pixel_budget(768, 28)[1] == 128000 * 784 * 0.9 / 768 * 2


@pytest.mark.parametrize("call, fix_word", [
    (lambda: R.smart_resize(10, 2010, 28), "aspect"),
    (lambda: R.smart_resize(100, 100, 28, min_pixels=10, max_pixels=5), "max_pixels"),
    (lambda: R.smart_nframes(1, 30.0), "frames"),
    (lambda: R.smart_nframes(100, 30.0, fps=2.0, nframes=4), "nframes"),
    (lambda: R.video_frame_range(100, 25.0, 3.0, 1.0), "range"),
    (lambda: R.factor_for(0), "patch"),
])
def test_errors_are_usage_errors_with_received_and_fix(call, fix_word):
    with pytest.raises(UsageError) as info:
        call()
    assert info.value.fix and fix_word in str(info.value)
    assert info.value.received is not None


def test_fake_torchvision_never_leaks_into_this_process():
    assert "torchvision" not in sys.modules or sys.modules["torchvision"] is None
    assert "qwen_vl_utils" not in sys.modules
