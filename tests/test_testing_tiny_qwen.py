"""Tiny Qwen-VL checkpoints: built offline, loaded through the public Auto* path, real shapes and token counts."""
import json
import os
import time

import pytest
import torch
from PIL import Image

from mmkit.testing import build_qwen_tokenizer, build_tiny_qwen2_5_vl, build_tiny_qwen3_vl, tiny_checkpoint
from mmkit.testing.tokenizer import QWEN_SPECIAL_TOKENS
from mmkit.understand.video_processors import register_video_processors

register_video_processors()

from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_qwen")
    return {
        "qwen2_5_vl": build_tiny_qwen2_5_vl(root / "q25"),
        "qwen3_vl": build_tiny_qwen3_vl(root / "q3"),
        "qwen3_vl_thinking": build_tiny_qwen3_vl(root / "q3t", variant="thinking"),
    }


def _image_inputs(processor, size=56):
    image = Image.new("RGB", (size, size), (200, 30, 30))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    return text, processor(text=[text], images=[image], return_tensors="pt")


def test_tokenizer_special_tokens_follow_qwen_order():
    tok = build_qwen_tokenizer("qwen3_vl_instruct")
    ids = tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(QWEN_SPECIAL_TOKENS)))  # contiguous, in Qwen's order
    think, end_think = tok.convert_tokens_to_ids(["<think>", "</think>"])
    assert (think, end_think) == (len(tok) - 2, len(tok) - 1)  # Qwen3: the last two added tokens
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    q25 = build_qwen_tokenizer("qwen2_5_vl")
    assert "<think>" not in q25.get_vocab() and len(q25) == len(tok) - 4
    text = '```json\n[{"bbox_2d": [12, 34, 56, 78], "label": "红色 circle"}]\n```<|im_end|>'
    encoded = tok(text).input_ids
    assert encoded[-1] == tok.eos_token_id
    assert tok.decode(encoded) == text
    assert tok.decode(encoded, skip_special_tokens=True) == text.removesuffix("<|im_end|>")
    assert build_qwen_tokenizer("qwen3_vl_instruct").get_vocab() == tok.get_vocab()  # deterministic training


def test_official_chat_templates_render_the_published_prompts():
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    rendered = {
        name: build_qwen_tokenizer(name).apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for name in ("qwen2_5_vl", "qwen3_vl_instruct", "qwen3_vl_thinking")
    }
    user = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n"
    assert rendered["qwen2_5_vl"] == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + user + "<|im_start|>assistant\n"
    )
    assert rendered["qwen3_vl_instruct"] == user + "<|im_start|>assistant\n"
    assert rendered["qwen3_vl_thinking"] == user + "<|im_start|>assistant\n<think>\n"
    history = messages + [{"role": "assistant", "content": "<think>\nhmm\n</think>\n\nred"}]
    thinking = build_qwen_tokenizer("qwen3_vl_thinking").apply_chat_template(history, tokenize=False)
    assert thinking.endswith("<|im_start|>assistant\n<think>\nhmm\n</think>\n\nred<|im_end|>\n")


def test_folders_have_the_upstream_layout(folders, tmp_path):
    q25 = sorted(os.listdir(folders["qwen2_5_vl"]))
    assert q25 == [
        "chat_template.json", "config.json", "generation_config.json", "mmkit_tiny.json", "model.safetensors",
        "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    assert "video_preprocessor_config.json" in os.listdir(folders["qwen3_vl"])
    video_cfg = json.loads((folders["qwen3_vl"] / "video_preprocessor_config.json").read_text())
    assert video_cfg["video_processor_type"] == "Qwen3VLVideoProcessor"
    assert video_cfg["size"] == {"longest_edge": 25165824, "shortest_edge": 4096}
    saved = build_tiny_qwen2_5_vl(tmp_path / "sp", layout="save_pretrained")
    assert {"processor_config.json", "chat_template.jinja"} <= set(os.listdir(saved))
    assert AutoProcessor.from_pretrained(saved).video_processor.size.longest_edge == 12845056


def test_generation_configs_carry_the_published_defaults(folders):
    gen = {k: json.loads((p / "generation_config.json").read_text()) for k, p in folders.items()}
    tok = build_qwen_tokenizer("qwen3_vl_instruct")
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    for cfg in gen.values():
        assert cfg["eos_token_id"] == eos and cfg["pad_token_id"] == eos[1] and cfg["do_sample"] is True
    assert (gen["qwen2_5_vl"]["temperature"], gen["qwen2_5_vl"]["repetition_penalty"]) == (1e-06, 1.05)
    assert (gen["qwen3_vl"]["top_p"], gen["qwen3_vl"]["temperature"], gen["qwen3_vl"]["top_k"]) == (0.8, 0.7, 20)
    assert (gen["qwen3_vl_thinking"]["top_p"], gen["qwen3_vl_thinking"]["temperature"]) == (0.95, 1.0)


@pytest.mark.parametrize(
    "name, model_class, grid, n_params",
    [
        ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", [1, 4, 4], (5e5, 2e6)),
        # Qwen3-VL's min_pixels 65536 upscales 56x56 to 256x256 -> 16x16 patches of 16 px
        ("qwen3_vl", "Qwen3VLForConditionalGeneration", [1, 16, 16], (5e5, 2e6)),
        ("qwen3_vl_thinking", "Qwen3VLForConditionalGeneration", [1, 16, 16], (5e5, 2e6)),
    ],
)
def test_load_forward_and_generate_on_an_image(folders, name, model_class, grid, n_params):
    processor = AutoProcessor.from_pretrained(folders[name])
    model = AutoModelForImageTextToText.from_pretrained(folders[name])
    assert type(model).__name__ == model_class
    assert n_params[0] < sum(p.numel() for p in model.parameters()) < n_params[1]
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    text, inputs = _image_inputs(processor)
    assert inputs["image_grid_thw"].tolist() == [grid]
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == int(inputs["image_grid_thw"].prod()) // 4
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], model.config.text_config.vocab_size)
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] - inputs["input_ids"].shape[1] in range(1, 7)
    assert out[0, : inputs["input_ids"].shape[1]].tolist() == inputs["input_ids"][0].tolist()


def test_same_seed_gives_identical_logits_and_other_seed_differs(folders, tmp_path):
    again = build_tiny_qwen3_vl(tmp_path / "again", seed=0)
    other = build_tiny_qwen3_vl(tmp_path / "other", seed=1)
    processor = AutoProcessor.from_pretrained(again)
    _, inputs = _image_inputs(processor)
    logits = {}
    for key, folder in (("first", folders["qwen3_vl"]), ("again", again), ("other", other)):
        with torch.no_grad():
            logits[key] = AutoModelForImageTextToText.from_pretrained(folder)(**inputs).logits
    assert torch.equal(logits["first"], logits["again"])
    assert not torch.allclose(logits["first"], logits["other"])


def test_building_again_is_cheap_and_a_changed_seed_rebuilds(tmp_path):
    folder = build_tiny_qwen2_5_vl(tmp_path / "q")
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert build_tiny_qwen2_5_vl(folder) == folder
    assert time.perf_counter() - start < 0.05
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    build_tiny_qwen2_5_vl(folder, seed=3)
    assert json.loads((folder / "mmkit_tiny.json").read_text())["seed"] == 3
    assert not any(p.name.startswith(".q.") for p in tmp_path.iterdir())  # no temp folders left behind


def test_tiny_checkpoint_caches_under_env_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MMKIT_TINY_CACHE", str(tmp_path))
    folder = tiny_checkpoint("qwen3_vl_thinking")
    assert folder == tmp_path / "qwen3_vl_thinking"
    assert json.loads((folder / "mmkit_tiny.json").read_text())["variant"] == "thinking"
    with pytest.raises(ValueError, match="unknown tiny checkpoint name"):
        tiny_checkpoint("qwen9")
