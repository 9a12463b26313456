"""GenerationParams / GenerationResult: A1111 text, JSON chunk, atomic PNG writes, reading back."""
import os

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from mmkit.exceptions import MediaError, UsageError
from mmkit.generate import GenerationParams, GenerationResult, GenerationTimings, read_generation_params

PARAMS = GenerationParams(
    prompt="a cat, masterpiece", negative_prompt="blurry", steps=20, guidance_scale=7.5, scheduler="dpmpp_2m_karras",
    width=512, height=768, seeds=(5, 6), num_images=2, model="/models/dreamshaper_8.safetensors",
    model_hash="a" * 64, family="sd15", loras=(("style", 0.8),), mmkit_version="0.1.0",
)
TIMINGS = GenerationTimings(prompt_s=0.1, pipeline_s=1.0, total_s=1.1, per_image_s=0.55, per_step_s=0.025)


def result(n=2):
    images = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(n)]
    return GenerationResult(images=images, params=PARAMS, timings=TIMINGS)


def test_a1111_text():
    text = PARAMS.for_image(1).to_a1111()
    assert text.splitlines() == [
        "a cat, masterpiece",
        "Negative prompt: blurry",
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 6, Size: 512x768, Model hash: aaaaaaaaaa, "
        'Model: dreamshaper_8, Lora weights: "style: 0.8", Version: mmkit 0.1.0',
    ]


def test_parse_plain_a1111_png(tmp_path):
    text = ("portrait of a woman, studio lighting\nsecond line\nNegative prompt: lowres, bad hands\n"
            "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567, Size: 640x896, "
            'Model hash: 6ce0161689, Model: v1-5-pruned, Denoising strength: 0.45, Clip skip: 2, '
            'Lora hashes: "a: 123, b: 456", Version: v1.9.4')
    info = PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (8, 8)).save(tmp_path / "a1111.png", pnginfo=info)
    params = read_generation_params(tmp_path / "a1111.png")
    assert params.prompt == "portrait of a woman, studio lighting\nsecond line"
    assert params.negative_prompt == "lowres, bad hands"
    assert (params.steps, params.guidance_scale, params.seeds) == (28, 6.5, (1234567,))
    assert (params.width, params.height) == (640, 896)
    assert params.scheduler == "dpmpp_2m_karras" and params.sampler_label == "DPM++ 2M"
    assert (params.strength, params.clip_skip, params.task) == (0.45, 2, "image_to_image")
    assert params.model == "v1-5-pruned" and params.model_hash == "6ce0161689"


def test_save_names_and_json_chunk(tmp_path):
    paths = result().save(tmp_path / "out", stem="cat")
    assert [p.name for p in paths] == ["cat-5.png", "cat-6.png"]
    back = read_generation_params(paths[1])
    assert back == PARAMS.for_image(1)
    assert back.loras == (("style", 0.8),)
    with Image.open(paths[1]) as png:
        assert png.text["parameters"].startswith("a cat, masterpiece\nNegative prompt: blurry\nSteps: 20")
    assert [p.name for p in result().save(tmp_path / "x.png")] == ["x-0.png", "x-1.png"]
    assert [p.name for p in result(1).save(tmp_path / "one.png")] == ["one.png"]
    with pytest.raises(UsageError, match="PNG"):
        result().save(tmp_path / "x.jpg")


def test_atomic_save_leaves_nothing_on_error(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    result(1).save(target)
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        result(1).save(target)
    assert os.listdir(tmp_path) == ["keep.png"]  # no temp file, old file untouched
    assert target.read_bytes() == before


def test_read_errors(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(MediaError, match="no generation parameters"):
        read_generation_params(tmp_path / "plain.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(MediaError, match="Cannot read"):
        read_generation_params(tmp_path / "bad.png")
