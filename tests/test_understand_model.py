"""VisionLanguageModel on tiny, seeded Qwen2.5-VL / Qwen3-VL checkpoints loaded the way users load them.

The tiny models emit random text, so grounding is tested by making `generate` return a known answer (the
rest of the path, including the real processor's image grid, runs unchanged) and by feeding known text
through `build_answer`, the post-processing function every call uses.
"""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from mmkit.exceptions import ModelLoadError, UsageError
from mmkit.understand import Answer, Box, VisionLanguageModel, build_answer
from mmkit.understand.families import family_for_model_type
from mmkit.understand.messages import to_conversation

NAMES = ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_thinking")


@pytest.fixture(scope="module")
def vlms(tmp_path_factory):
    from mmkit.testing import tiny_checkpoint
    from mmkit.understand.video_processors import register_video_processors

    register_video_processors()  # the tiny builders save a processor, which needs the video processor classes
    root = tmp_path_factory.mktemp("tiny_qwen")
    return {name: VisionLanguageModel.from_pretrained(tiny_checkpoint(name, root), device="cpu") for name in NAMES}


def _image(width, height, seed=0):
    pixels = np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    """A 2 s, 10 fps, 64x48 video file."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _prompt(vlm, conv, **kw):
    batch = vlm._prepare([conv], thinking=None, min_pixels=None, max_pixels=None, **kw)
    return batch, vlm.processor.tokenizer.decode(batch.inputs["input_ids"][0])


def _answer_with(vlm, monkeypatch, text):
    """Make generate append `text` (then <|im_end|>) to the prompt, like a model that wrote it."""
    tokenizer = vlm.processor.tokenizer
    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]

    def generate(input_ids, **kwargs):
        return torch.cat([input_ids, torch.tensor([ids] * input_ids.shape[0])], dim=1)

    monkeypatch.setattr(vlm.model, "generate", generate)


# ------------------------------------------------------------------------------------------------ loading
def test_repr_and_family(vlms):
    text = repr(vlms["qwen3_vl_thinking"])
    assert "qwen3_vl_thinking" in text and "'qwen3_vl' (thinking)" in text and "cpu / float32 / sdpa" in text
    assert vlms["qwen2_5_vl"].family.name == "qwen2_5_vl" and vlms["qwen2_5_vl"].patch_size == 14
    assert vlms["qwen3_vl"].patch_size == 16 and not vlms["qwen3_vl"].thinking.default_on


def test_offline_hub_id_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match="not in the cache") as info:
        VisionLanguageModel.from_pretrained("mmkit-tests/not-a-cached-model", device="cpu")
    assert info.value.received == "mmkit-tests/not-a-cached-model"


def test_unsupported_model_type(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ModelLoadError, match="model_type 'gpt2'.*qwen2_5_vl, qwen3_vl"):
        VisionLanguageModel.from_pretrained(tmp_path, device="cpu")


def test_bad_generation_settings_are_refused_before_loading():
    with pytest.raises(UsageError, match="unknown generation setting 'temprature'"):
        VisionLanguageModel.from_pretrained("unused", generation={"temprature": 0.5})


# --------------------------------------------------------------------------------------------------- chat
@pytest.mark.parametrize(("name", "image_tokens", "grid"), [("qwen2_5_vl", 6, [1, 4, 6]), ("qwen3_vl", 70, [1, 14, 20])])
def test_chat_one_image_structure_and_exact_usage(vlms, name, image_tokens, grid):
    vlm = vlms[name]
    image = _image(90, 60)
    batch, prompt = _prompt(vlm, to_conversation("Describe.", images=image))
    assert batch.inputs["image_grid_thw"].tolist() == [grid]  # the smart-resized size the boxes are converted from
    assert batch.input_sizes == [[(grid[2] * vlm.patch_size, grid[1] * vlm.patch_size)]]
    assert batch.original_sizes == [[(90, 60)]]
    assert prompt.count("<|image_pad|>") == image_tokens == grid[1] * grid[2] // 4

    answer = vlm.chat("Describe.", images=image, max_new_tokens=6, do_sample=False)
    assert isinstance(answer, Answer)
    assert answer.usage.image_tokens == image_tokens and answer.usage.video_tokens == 0
    assert answer.usage.prompt_tokens == batch.inputs["input_ids"].shape[1]
    assert answer.usage.completion_tokens == 6 and answer.finish_reason == "length" and answer.truncated
    assert answer.family == vlm.family.name and answer.model == vlm.model_id
    assert answer.thinking is None and answer.text == answer.raw_text.strip()
    assert answer.boxes == () and answer.spans == ()
    assert answer.timings.generate_s > 0 and answer.timings.preprocess_s > 0 and answer.timings.first_token_s > 0


def test_multi_image_counts_every_image(vlms):
    vlm = vlms["qwen2_5_vl"]
    answer = vlm.chat("Compare.", images=[_image(90, 60), _image(56, 56, seed=1)], max_new_tokens=2, do_sample=False)
    assert answer.usage.image_tokens == 6 + 4


def test_pixel_budget_per_call(vlms):
    vlm = vlms["qwen2_5_vl"]
    conv = to_conversation("Describe.", images=_image(280, 280))
    small, _ = _prompt(vlm, conv)
    capped = vlm._prepare([conv], thinking=None, min_pixels=None, max_pixels=112 * 112)
    assert small.inputs["image_grid_thw"].tolist() == [[1, 20, 20]]
    assert capped.inputs["image_grid_thw"].tolist() == [[1, 8, 8]]


def test_video_qwen3_timestamps_follow_the_sampled_frames(vlms, clip_path):
    vlm = vlms["qwen3_vl"]
    batch, prompt = _prompt(vlm, to_conversation("What happens?", videos=str(clip_path)))
    # 20 frames at 10 fps sampled at 2 fps -> 4 frames, indices [0, 6, 13, 19]; a temporal patch's time is the
    # mean of its two frames: (0 + 6) / 2 / 10 = 0.3 s and (13 + 19) / 2 / 10 = 1.6 s.
    assert "<0.3 seconds>" in prompt and "<1.6 seconds>" in prompt
    grid = batch.inputs["video_grid_thw"].tolist()[0]
    answer = vlm.chat("What happens?", videos=str(clip_path), max_new_tokens=2, do_sample=False)
    assert answer.usage.video_tokens == grid[0] * grid[1] * grid[2] // 4 == prompt.count("<|video_pad|>")


def test_video_qwen2_5_time_enters_through_second_per_grid_ts(vlms, clip_path):
    vlm = vlms["qwen2_5_vl"]
    batch, prompt = _prompt(vlm, to_conversation("What happens?", videos=[{"video": str(clip_path), "fps": 2.0}]))
    # sampled fps = 4 frames / 20 frames * 10 fps = 2.0; two frames per temporal patch -> 1.0 s per grid step.
    assert batch.inputs["second_per_grid_ts"].tolist() == [1.0]
    assert "seconds>" not in prompt
    frames = [_image(64, 48, seed=i) for i in range(4)]
    answer = vlm.chat("What happens?", videos=[frames], max_new_tokens=2, do_sample=False)
    assert answer.usage.video_tokens > 0 and answer.usage.image_tokens == 0


@pytest.mark.parametrize(("name", "written"), [("qwen2_5_vl", "from 0.5 to 0.8 seconds"),
                                               ("qwen3_vl", "from 1.5 to 1.8 seconds")])
def test_video_spans_are_seconds_of_the_untrimmed_video(vlms, clip_path, monkeypatch, name, written):
    # The clip starts at 1.0 s: frames [10, 13, 16, 19] of the 10 fps file are sampled. Qwen3-VL's prompt says
    # so in absolute seconds; Qwen2.5-VL's time position ids start at 0 on frame 10, so it answers relative to
    # the clip. Both answers name the same event, 1.5-1.8 s of the file.
    vlm = vlms[name]
    trimmed = [{"video": str(clip_path), "video_start": 1.0, "fps": 2.0}]
    batch, prompt = _prompt(vlm, to_conversation("When does it happen?", videos=trimmed))
    if name == "qwen3_vl":  # (10 + 13) / 2 / 10 = 1.15 s and (16 + 19) / 2 / 10 = 1.75 s, printed with .1f
        assert "<1.1 seconds>" in prompt and "<1.8 seconds>" in prompt and "<0.3 seconds>" not in prompt
        assert batch.time_offsets == [0.0]
    else:
        assert "seconds>" not in prompt and batch.time_offsets == [1.0]
    _answer_with(vlm, monkeypatch, f"It happens {written}.")
    (span,) = vlm.chat("When does it happen?", videos=trimmed, max_new_tokens=32).spans
    assert (span.start, span.end) == pytest.approx((1.5, 1.8)) and span.raw == written
    (untrimmed,) = vlm.chat("When does it happen?", videos=str(clip_path), max_new_tokens=32).spans
    assert (untrimmed.start, untrimmed.end) == pytest.approx((0.5, 0.8) if name == "qwen2_5_vl" else (1.5, 1.8))


def test_multi_turn_renders_the_history(vlms):
    vlm = vlms["qwen3_vl"]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image", "image": _image(64, 64)}, {"type": "text", "text": "Color?"}]},
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "Are you sure?"},
    ]
    _, prompt = _prompt(vlm, to_conversation(messages))
    assert "<|im_start|>system\nBe brief.<|im_end|>" in prompt
    assert "<|im_start|>assistant\nRed.<|im_end|>\n<|im_start|>user\nAre you sure?<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert vlm.chat(messages, max_new_tokens=2, do_sample=False).usage.image_tokens > 0


# ----------------------------------------------------------------------------------- sampling and batches
def test_seed_makes_sampling_reproducible(vlms):
    vlm = vlms["qwen3_vl"]
    kw = {"max_new_tokens": 12, "do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    first = vlm.chat("Say something.", seed=7, **kw).raw_text
    assert vlm.chat("Say something.", seed=7, **kw).raw_text == first
    assert vlm.chat("Say something.", seed=8, **kw).raw_text != first


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_batch_equals_one_by_one_greedy(vlms, name):
    vlm = vlms[name]
    conversations = [
        "Hi.",
        [{"role": "user", "content": [{"type": "image", "image": _image(90, 60)}, {"type": "text", "text": "Describe this."}]}],
        [{"role": "user", "content": [{"image": _image(56, 84, 1)}, {"image": _image(60, 60, 2)}, "Compare these two."]}],
    ]
    batched = vlm.chat_batch(conversations, max_new_tokens=10, do_sample=False)
    single = [vlm.chat(c, max_new_tokens=10, do_sample=False) for c in conversations]
    assert [a.raw_text for a in batched] == [a.raw_text for a in single]
    assert [a.usage for a in batched] == [a.usage for a in single]


def test_presets_and_overrides(vlms):
    instruct, thinking = vlms["qwen3_vl"], vlms["qwen3_vl_thinking"]
    kw = instruct._generate_kwargs(max_new_tokens=5, thinking_on=False, call={})
    assert (kw["do_sample"], kw["temperature"], kw["top_p"], kw["top_k"]) == (True, 0.7, 0.8, 20)
    kw = thinking._generate_kwargs(max_new_tokens=5, thinking_on=True, call={"top_k": 5})
    assert (kw["temperature"], kw["top_p"], kw["top_k"]) == (0.6, 0.95, 5)
    greedy = instruct._generate_kwargs(max_new_tokens=5, thinking_on=False, call={"temperature": 0})
    assert greedy["do_sample"] is False and greedy["temperature"] is None
    qwen25 = vlms["qwen2_5_vl"]._generate_kwargs(max_new_tokens=5, thinking_on=False, call={})
    assert qwen25["do_sample"] is True and "temperature" not in qwen25  # its generation_config.json decides
    with pytest.raises(UsageError, match="top_p"):
        instruct.chat("x", top_p=1.5)
    with pytest.raises(UsageError, match="max_new_tokens"):
        instruct.chat("x", max_new_tokens=0)


# ------------------------------------------------------------------------------------------------ stream
def test_stream_deltas_join_to_the_answer_and_match_chat(vlms):
    vlm = vlms["qwen3_vl"]
    kw = {"images": _image(64, 64), "max_new_tokens": 12, "do_sample": True, "temperature": 1.0, "seed": 3}
    stream = vlm.stream("Describe.", **kw)
    deltas = list(stream)
    assert len(deltas) >= 1 and "".join(deltas) == stream.answer.raw_text == stream.text
    expected = vlm.chat("Describe.", **kw)
    assert stream.answer.raw_text == expected.raw_text and stream.answer.usage == expected.usage
    assert stream.answer.timings.first_token_s is not None


def test_stream_reraises_errors_from_the_generation_thread(vlms, monkeypatch):
    vlm = vlms["qwen2_5_vl"]

    def broken(**kwargs):
        raise RuntimeError("boom in generate")

    monkeypatch.setattr(vlm.model, "generate", broken)
    stream = vlm.stream("Hi.", max_new_tokens=3)
    with pytest.raises(RuntimeError, match="boom in generate"):
        list(stream)
    with pytest.raises(RuntimeError, match="boom in generate"):
        stream.answer


# ------------------------------------------------------------------------------------------------ thinking
def test_thinking_checkpoint_prompt_and_split(vlms):
    vlm = vlms["qwen3_vl_thinking"]
    _, prompt = _prompt(vlm, to_conversation("Why?"))
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    answer = vlm.chat("Why?", max_new_tokens=4, do_sample=False)
    # No </think> within 4 tokens: everything is (unfinished) thinking, no answer yet.
    assert answer.thinking is not None and answer.text == "" and answer.truncated
    with pytest.raises(UsageError, match="always thinks"):
        vlm.chat("Why?", thinking=False)


def test_thinking_answer_split_through_the_model_path(vlms, monkeypatch):
    vlm = vlms["qwen3_vl_thinking"]
    _answer_with(vlm, monkeypatch, "The sky scatters blue light.\n</think>\n\nBecause of Rayleigh scattering.")
    answer = vlm.chat("Why is the sky blue?", max_new_tokens=64)
    assert answer.thinking == "The sky scatters blue light."
    assert answer.text == "Because of Rayleigh scattering."
    assert answer.finish_reason == "stop" and not answer.truncated


# ------------------------------------------------------------------------------------------------ grounding
def test_ground_qwen2_5_converts_resized_pixels_to_the_original_image(vlms, monkeypatch):
    vlm = vlms["qwen2_5_vl"]
    batch, prompt = _prompt(vlm, to_conversation(vlm.family.ground_prompt.format(query="cat"), images=_image(90, 60)))
    assert 'following categories: "cat". Report bbox coordinates in JSON format.' in prompt
    assert batch.input_sizes == [[(84, 56)]]
    _answer_with(vlm, monkeypatch, '```json\n[{"bbox_2d": [14, 28, 42, 56], "label": "cat"}]\n```')
    answer = vlm.ground(_image(90, 60), "cat")
    (box,) = answer.boxes
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx((15.0, 30.0, 45.0, 60.0))
    assert box.label == "cat" and box.raw == (14, 28, 42, 56) and box.raw_convention == "resized_pixels"


def test_ground_and_point_qwen3_convert_relative_1000(vlms, monkeypatch):
    vlm = vlms["qwen3_vl"]
    _answer_with(vlm, monkeypatch, '[{"bbox_2d": [100, 200, 500, 1000], "label": "dog"}]')
    (box,) = vlm.ground(_image(90, 60), ["dog"]).boxes
    assert box.as_tuple() == pytest.approx((9.0, 12.0, 45.0, 60.0)) and box.raw_convention == "relative_1000"
    _answer_with(vlm, monkeypatch, '[{"point_2d": [500, 250], "label": "dog"}]')
    (point,) = vlm.point(_image(90, 60), "the dog").points
    assert (point.x, point.y) == pytest.approx((45.0, 15.0))
    with pytest.raises(UsageError, match="query"):
        vlm.ground(_image(90, 60), "  ")


def test_ground_and_point_read_bare_number_lists_but_chat_does_not(vlms, monkeypatch):
    qwen25, qwen3 = vlms["qwen2_5_vl"], vlms["qwen3_vl"]
    _answer_with(qwen25, monkeypatch, "The cat is at [14, 28, 42, 56].")
    (box,) = qwen25.ground(_image(90, 60), "cat").boxes  # resized input 84x56 -> original 90x60
    assert box.as_tuple() == pytest.approx((15.0, 30.0, 45.0, 60.0)) and box.raw == (14, 28, 42, 56)
    assert qwen25.chat("Where is the cat?", images=_image(90, 60), max_new_tokens=32).boxes == ()
    _answer_with(qwen3, monkeypatch, "The dog is at [500, 250].")
    (point,) = qwen3.point(_image(90, 60), "the dog").points
    assert (point.x, point.y) == pytest.approx((45.0, 15.0)) and point.raw == (500, 250)
    assert qwen3.chat("Where is the dog?", images=_image(90, 60), max_new_tokens=32).points == ()


def test_build_answer_is_the_post_processing():
    qwen25 = family_for_model_type("qwen2_5_vl")
    answer = build_answer(
        'Two boxes: [{"bbox_2d": [0, 0, 84, 56], "label": "a"}, {"bbox_2d": [28, 14, 56, 42], "image_index": 1}]',
        family=qwen25, original_sizes=[(900, 600), (180, 120)], input_sizes=[(84, 56), (56, 28)],
    )
    assert answer.boxes[0] == Box(x1=0, y1=0, x2=900, y2=600, label="a", image_index=0, raw=(0, 0, 84, 56),
                                  raw_convention="resized_pixels")
    assert answer.boxes[1].as_tuple() == pytest.approx((90.0, 60.0, 180.0, 120.0)) and answer.boxes[1].image_index == 1
    cut = build_answer('[{"bbox_2d": [0, 0, 10, 10]}, {"bbox_2d": [1, 2', family=qwen25,
                       original_sizes=[(84, 56)], input_sizes=[(84, 56)], finish_reason="length")
    assert len(cut.boxes) == 1 and cut.truncated and cut.finish_reason == "length"
    video = build_answer("The goal happens from 3.5 to 7 seconds.", family=family_for_model_type("qwen3_vl"), has_video=True)
    assert [(s.start, s.end) for s in video.spans] == [(3.5, 7.0)]
    assert build_answer("from 3 to 7 seconds", family=qwen25).spans == ()  # spans only for video questions
