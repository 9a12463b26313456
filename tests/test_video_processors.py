"""Torch-only Qwen video processors: parity with upstream transformers 5.23 rules, pixels, prompts, generate.

Upstream's classes cannot be instantiated here (they need torchvision), so parity is checked three ways:
1. upstream's own pure methods (`sample_frames`, `get_num_of_video_patches`, `patchify`) called on our instances
   (Qwen2-VL's module imports torchvision at the top, so its source is loaded with a throwaway stub for that one
   import);
2. hand-computed values from the upstream formulas, quoted beside each case;
3. pixels against an independent slow reference (PIL bicubic per frame + explicit patch indexing).
"""
import importlib
import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from transformers.video_utils import VideoMetadata

from mmkit.testing import build_tiny_qwen2_5_vl, build_tiny_qwen3_vl
from mmkit.understand import video_processors
from mmkit.understand.video_processors import Qwen2VLVideoProcessor, Qwen3VLVideoProcessor, register_video_processors

register_video_processors()

from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402


def _load_upstream_qwen2vl_video_module():
    """Exec transformers' qwen2_vl/video_processing_qwen2_vl.py with a stub for its top-level torchvision import;
    only its pure methods are used. sys.modules is restored afterwards."""
    path = Path(transformers.__file__).parent / "models" / "qwen2_vl" / "video_processing_qwen2_vl.py"
    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.v2"]
    names.append("torchvision.transforms.v2.functional")
    stubs = {name: types.ModuleType(name) for name in names}
    saved = {name: sys.modules.get(name) for name in names}
    spec = importlib.util.spec_from_file_location("transformers.models.qwen2_vl._mmkit_parity_video", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.update(stubs)
    sys.modules[spec.name] = module  # auto_docstring inspects the source file through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


UPSTREAM_QWEN2 = _load_upstream_qwen2vl_video_module().Qwen2VLVideoProcessor
UPSTREAM_QWEN3 = importlib.import_module("transformers.models.qwen3_vl.video_processing_qwen3_vl").Qwen3VLVideoProcessor


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_video")
    return {"qwen2_5_vl": build_tiny_qwen2_5_vl(root / "q25"), "qwen3_vl": build_tiny_qwen3_vl(root / "q3")}


def _video(frames=16, height=64, width=80, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (frames, height, width, 3), dtype=torch.uint8, generator=generator)


def _prompt(processor):
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe this video."}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


# ---- 1. upstream's own methods on our instances -----------------------------------------------------------------
SAMPLING_CASES = [
    dict(total=16, video_fps=8.0, kw=dict(fps=2)),
    dict(total=300, video_fps=30.0, kw=dict(fps=2)),
    dict(total=301, video_fps=29.97, kw=dict(fps=1.5)),
    dict(total=9, video_fps=24.0, kw=dict(fps=2)),  # clamps to min_frames
    dict(total=5000, video_fps=25.0, kw=dict(fps=4)),  # clamps to max_frames
    dict(total=40, video_fps=10.0, kw=dict(num_frames=7)),
    dict(total=40, video_fps=10.0, kw=dict(num_frames=8)),
]


@pytest.mark.parametrize("case", SAMPLING_CASES)
def test_frame_sampling_matches_upstream_code(case):
    for ours, upstream in ((Qwen2VLVideoProcessor(), UPSTREAM_QWEN2), (Qwen3VLVideoProcessor(), UPSTREAM_QWEN3)):
        metadata = VideoMetadata(total_num_frames=case["total"], fps=case["video_fps"])
        expected = upstream.sample_frames(ours, metadata, **case["kw"])
        got = ours.sample_frames(VideoMetadata(total_num_frames=case["total"], fps=case["video_fps"]), **case["kw"])
        assert np.asarray(got).tolist() == np.asarray(expected).tolist()


@pytest.mark.parametrize("cap", [False, True])
@pytest.mark.parametrize(
    "frames, height, width", [(4, 64, 80), (16, 480, 640), (7, 1080, 1920), (768, 720, 1280), (2, 30, 500)]
)
def test_patch_counts_match_upstream_code(frames, height, width, cap):
    for ours, upstream in ((Qwen2VLVideoProcessor(), UPSTREAM_QWEN2), (Qwen3VLVideoProcessor(), UPSTREAM_QWEN3)):
        kwargs = {"cap_pixels_per_frame": cap}
        expected = upstream.get_num_of_video_patches(ours, frames, height, width, kwargs)
        assert ours.get_num_of_video_patches(frames, height, width, kwargs) == expected


def test_patchify_matches_upstream_code():
    videos = torch.randn(2, 5, 3, 64, 96)  # 5 frames: padded to 6 by repeating the last one
    ours = Qwen3VLVideoProcessor().patchify(videos, 16, 2, 2)
    upstream = UPSTREAM_QWEN3.patchify(None, videos, 16, 2, 2)
    assert ours[1:] == upstream[1:] == (3, 4, 6)
    assert torch.equal(ours[0], upstream[0])


# ---- 2. hand-computed values from the upstream formulas ----------------------------------------------------------
def test_qwen2_5_vl_fps_sampling_shapes_tokens_and_seconds_per_grid(folders):
    processor = AutoProcessor.from_pretrained(folders["qwen2_5_vl"])
    assert type(processor.video_processor) is Qwen2VLVideoProcessor
    # hub preprocessor_config.json: min_pixels 3136 / max_pixels 12845056 apply to video too
    size = processor.video_processor.size
    assert (size.shortest_edge, size.longest_edge) == (3136, 12845056)
    out = processor(
        text=[_prompt(processor)], videos=[_video()], video_metadata=[VideoMetadata(total_num_frames=16, fps=8.0)],
        do_sample_frames=True, fps=2, return_tensors="pt",
    )  # fmt: skip
    # num_frames = floor(min(max(16 / 8 * 2, 4), 16, 16) / 2) * 2 = 4; indices = arange(0, 16, 16 / 4) = 0,4,8,12
    # 64x80 -> smart_resize(factor 28): round(64/28)*28 = 56, round(80/28)*28 = 84 -> grid 4 x 6
    assert out["video_grid_thw"].tolist() == [[2, 4, 6]]
    assert tuple(out["pixel_values_videos"].shape) == (2 * 4 * 6, 3 * 2 * 14 * 14)
    assert int((out["input_ids"] == processor.video_token_id).sum()) == 2 * 4 * 6 // 4
    # second_per_grid_ts = temporal_patch_size / sampled_fps = 2 / (4 / 16 * 8)
    assert [float(x) for x in out["second_per_grid_ts"]] == [1.0]
    assert "seconds" not in processor.decode(out["input_ids"][0])  # Qwen2.5-VL prompts carry no timestamps


def test_qwen2_5_vl_default_keeps_every_frame_and_pads_odd_counts(folders):
    processor = AutoProcessor.from_pretrained(folders["qwen2_5_vl"])
    out = processor(text=[_prompt(processor)], videos=[_video(frames=5)], return_tensors="pt")
    # do_sample_frames=False by default (upstream BC): 5 frames, padded to 6 by repeating the last -> grid_t 3
    assert out["video_grid_thw"].tolist() == [[3, 4, 6]]
    last_pair = out["pixel_values_videos"].reshape(3, 24, 3, 2, 14 * 14)[2]
    assert torch.equal(last_pair[:, :, 0], last_pair[:, :, 1])  # frames 5 and its repeat are identical


def test_qwen3_vl_default_fps_2_timestamps_and_nested_vision_tokens(folders):
    processor = AutoProcessor.from_pretrained(folders["qwen3_vl"])
    assert type(processor.video_processor) is Qwen3VLVideoProcessor
    out = processor(
        text=[_prompt(processor)], videos=[_video()], video_metadata=[VideoMetadata(total_num_frames=16, fps=8.0)],
        return_tensors="pt", return_metadata=True,
    )  # fmt: skip
    # default fps=2: int(16 / 8 * 2) = 4 frames; linspace(0, 15, 4).round() = 0, 5, 10, 15
    assert list(out["video_metadata"][0].frames_indices) == [0, 5, 10, 15]
    # 64x80, factor 32: round(64/32)*32 = 64, round(80/32)*32 = 64 (2.5 rounds to even) -> grid 4 x 4
    assert out["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert tuple(out["pixel_values_videos"].shape) == (2 * 4 * 4, 3 * 2 * 16 * 16)
    text = processor.decode(out["input_ids"][0])
    # t = mean time of the two frames of each temporal patch: (0 + 5) / 2 / 8 = 0.3125, (10 + 15) / 2 / 8 = 1.5625
    patch = "<|vision_start|>" + "<|video_pad|>" * 4 + "<|vision_end|>"
    assert "<|vision_start|><0.3 seconds>" + patch + "<1.6 seconds>" + patch + "<|vision_end|>" in text
    assert int((out["input_ids"] == processor.video_token_id).sum()) == 8


def test_qwen3_vl_without_metadata_assumes_24_fps(folders):
    processor = AutoProcessor.from_pretrained(folders["qwen3_vl"])
    out = processor(text=[_prompt(processor)], videos=[_video(frames=48, height=100, width=200)], return_tensors="pt")
    # int(48 / 24 * 2) = 4 frames: linspace(0, 47, 4).round() = 0, 16, 31, 47
    # -> (0 + 16) / 2 / 24 = 0.333 and (31 + 47) / 2 / 24 = 1.625 (formats as 1.6)
    text = processor.decode(out["input_ids"][0])
    assert "<0.3 seconds>" in text and "<1.6 seconds>" in text and text.count("seconds>") == 2
    # 100x200: round(100/32)*32 = 96, round(200/32)*32 = 192 -> grid 6 x 12, 18 tokens per temporal patch
    assert out["video_grid_thw"].tolist() == [[2, 6, 12]]
    assert int((out["input_ids"] == processor.video_token_id).sum()) == 2 * 18


def test_qwen3_vl_num_frames_and_no_sampling(folders):
    processor = AutoProcessor.from_pretrained(folders["qwen3_vl"])
    meta = [VideoMetadata(total_num_frames=30, fps=10.0)]
    with pytest.raises(ValueError, match="mutually exclusive"):  # upstream too: the default fps=2 is still set
        processor(text=[_prompt(processor)], videos=[_video(frames=30)], video_metadata=meta, num_frames=4)
    out = processor(
        text=[_prompt(processor)], videos=[_video(frames=30)], video_metadata=meta, num_frames=4, fps=None,
        return_tensors="pt",
    )  # fmt: skip
    # linspace(0, 29, 4).round() = 0, 10, 19, 29 -> (0 + 1.0) / 2 = 0.5 s and (1.9 + 2.9) / 2 = 2.4 s
    text = processor.decode(out["input_ids"][0])
    assert "<0.5 seconds>" in text and "<2.4 seconds>" in text
    out = processor(
        text=[_prompt(processor)], videos=[_video(frames=6)], do_sample_frames=False, return_tensors="pt",
        # pre-sampled frames need their indices (upstream builds them only when no metadata is given at all)
        video_metadata=[VideoMetadata(total_num_frames=6, fps=3.0, frames_indices=list(range(6)))],
    )  # fmt: skip
    # all 6 frames kept: pairs (0,1), (2,3), (4,5) at 3 fps -> 0.17, 0.83, 1.5 s
    assert out["video_grid_thw"].tolist() == [[3, 4, 4]]
    text = processor.decode(out["input_ids"][0])
    assert [text.index(s) > 0 for s in ("<0.2 seconds>", "<0.8 seconds>", "<1.5 seconds>")] == [True] * 3
    assert text.count("seconds>") == 3


# ---- 3. pixels --------------------------------------------------------------------------------------------------
def test_pixels_are_exact_without_resize_and_close_to_pil_bicubic_with_resize():
    processor = Qwen3VLVideoProcessor(size={"longest_edge": 25165824, "shortest_edge": 4096})  # the hub config
    gradient = torch.linspace(0, 255, 64).round().to(torch.uint8)
    flat = torch.full((64, 64), 77, dtype=torch.uint8)
    frames = torch.stack([gradient[None, :].expand(64, 64), gradient[:, None].expand(64, 64), flat], -1)
    video = frames[None].repeat(2, 1, 1, 1)  # 2 x 64 x 64 x 3, already a multiple of 32: no resize
    out = processor(video, do_sample_frames=False, return_tensors="pt")
    assert out["video_grid_thw"].tolist() == [[1, 4, 4]]
    expected = (video.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5  # (T, C, H, W)
    # token 0 = temporal patch 0, merge block (0, 0), inner (0, 0): rows 0:16, cols 0:16; token 1 = inner (0, 1)
    pv = out["pixel_values_videos"].reshape(16, 3, 2, 16, 16)
    torch.testing.assert_close(pv[0], expected[:, :, 0:16, 0:16].permute(1, 0, 2, 3), rtol=0, atol=1e-6)
    torch.testing.assert_close(pv[1], expected[:, :, 0:16, 16:32].permute(1, 0, 2, 3), rtol=0, atol=1e-6)
    torch.testing.assert_close(pv[2], expected[:, :, 16:32, 0:16].permute(1, 0, 2, 3), rtol=0, atol=1e-6)

    smooth = torch.from_numpy(np.array(Image.fromarray(frames.numpy()).resize((150, 100), Image.BICUBIC))).contiguous()
    resized = processor.resize_frames(smooth.permute(2, 0, 1)[None], 96, 160)[0]  # smart_resize(100x150) = 96x160
    reference = torch.from_numpy(np.array(Image.fromarray(smooth.numpy()).resize((160, 96), Image.BICUBIC)))
    reference = reference.permute(2, 0, 1)
    assert (resized - reference.float()).abs().mean() < 1.0  # grey levels (measured: 0.0 on this gradient)
    noise = torch.randint(0, 256, (100, 150, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    down = processor.resize_frames(noise.permute(2, 0, 1)[None], 48, 80)[0]  # antialiased 2x downscale
    reference = torch.from_numpy(np.array(Image.fromarray(noise.numpy()).resize((80, 48), Image.BICUBIC)))
    reference = reference.permute(2, 0, 1)
    diff = (down - reference.float()).abs()
    assert diff.mean() < 0.5 and diff.max() <= 8  # measured 0.15 / 5: PIL's and torch's bicubic differ slightly
    assert resized.min() >= 0 and resized.max() <= 255 and torch.equal(resized, resized.round())


# ---- registration, decoding, generate ---------------------------------------------------------------------------
def test_registration_is_idempotent_and_leaves_a_working_torchvision_alone(monkeypatch):
    from transformers.models.auto.video_processing_auto import video_processor_class_from_name

    assert register_video_processors() is True and register_video_processors() is True
    assert video_processor_class_from_name("Qwen2VLVideoProcessor") is Qwen2VLVideoProcessor
    assert video_processor_class_from_name("Qwen3VLVideoProcessor") is Qwen3VLVideoProcessor
    monkeypatch.setattr(video_processors, "_REGISTERED", False)
    monkeypatch.setattr(video_processors, "_torchvision_works", lambda: True)
    assert register_video_processors() is False


def test_video_file_is_decoded_with_pyav(folders, tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 80, 64, "yuv420p"
        for frame in _video(frames=16).numpy():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    processor = AutoProcessor.from_pretrained(folders["qwen3_vl"])
    out = processor(text=[_prompt(processor)], videos=[str(path)], return_tensors="pt", return_metadata=True)
    assert out["video_metadata"][0].total_num_frames == 16 and math.isclose(out["video_metadata"][0].fps, 8.0)
    assert out["video_grid_thw"].tolist() == [[2, 4, 4]]


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_generate_with_a_video(folders, name):
    processor = AutoProcessor.from_pretrained(folders[name])
    model = AutoModelForImageTextToText.from_pretrained(folders[name])
    inputs = processor(
        text=[_prompt(processor)], videos=[_video()], video_metadata=[VideoMetadata(total_num_frames=16, fps=8.0)],
        do_sample_frames=True, fps=2, return_tensors="pt",
    )  # fmt: skip
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    n_prompt = inputs["input_ids"].shape[1]
    assert 1 <= out.shape[1] - n_prompt <= 5
    assert out[0, :n_prompt].tolist() == inputs["input_ids"][0].tolist()
    with torch.no_grad():
        again = model(**inputs).logits[0, -1].argmax().item()
    assert again == out[0, n_prompt].item()  # greedy first token = argmax of the forward pass
