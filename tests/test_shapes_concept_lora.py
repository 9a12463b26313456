"""The concept-LoRA script: its dataset, its fp16 adapter, the SDK loading it, and its evaluation.

The base is the real shapes-generator architecture with untrained weights (built in code, seconds); two LoRA
steps through `train_lora` prove the path and the saved layout. Whether the LoRA teaches the concept is
judged on trained weights (`python -m mmkit.shapes.training.train_concept_lora`).
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from mmkit.exceptions import UsageError
from mmkit.generate.training.data import find_captioned_images
from mmkit.shapes import SHAPES, parse_prompt, render, split_of
from mmkit.shapes.training.train_concept_lora import (
    ConceptLoraConfig, cast_adapter_fp16, concept_prompts, evaluate_concept_lora, train_concept_lora,
    write_concept_dataset,
)


def _rows(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]


def test_dataset_holds_train_split_scenes_of_the_concept_captioned_by_name(tmp_path):
    scenes = write_concept_dataset(tmp_path / "data", "star", 40, seed=3, pair_share=0.5, zh_share=0.5)
    rows = _rows(tmp_path / "data")
    assert len(scenes) == len(rows) == 40
    assert {split_of(s) for s in scenes} == {"train"}
    assert all(any(shape.kind == "star" for shape in s.shapes) for s in scenes)
    assert sorted(len(s.shapes) for s in scenes) == [1] * 20 + [2] * 20
    names = (SHAPES["star"].name, SHAPES["star"].zh)  # "star", "五角星"
    assert all(any(name in row["text"] for name in names) for row in rows)
    assert any(SHAPES["star"].zh in row["text"] for row in rows) and any("star" in row["text"] for row in rows)
    for scene, row in zip(scenes, rows):  # each caption reads back to the scene's shapes
        spec = parse_prompt(row["text"])
        assert sorted((o.colour, o.kind) for o in spec.objects) == sorted((s.colour, s.kind) for s in scene.shapes)
    image = Image.open(tmp_path / "data" / rows[0]["file_name"])
    assert image.size == (64, 64) and np.array_equal(np.asarray(image), np.asarray(render(scenes[0])))
    assert len(find_captioned_images(tmp_path / "data")) == 40  # what train_lora reads
    write_concept_dataset(tmp_path / "again", "star", 40, seed=3, pair_share=0.5, zh_share=0.5)
    assert _rows(tmp_path / "again") == rows  # seeded


def test_dataset_refuses_known_kinds_and_a_used_folder(tmp_path):
    for concept in ("circle", "hexagon"):
        with pytest.raises(UsageError, match="never saw"):
            write_concept_dataset(tmp_path / concept, concept, 4, seed=0)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.png").write_bytes(b"")
    with pytest.raises(UsageError, match="not empty"):
        write_concept_dataset(tmp_path / "used", "star", 4, seed=0)


def test_eval_prompts_name_the_concept_in_both_languages():
    prompts = concept_prompts("cross", 8, seed=0)
    assert [p.lang for p in prompts] == ["en"] * 6 + ["zh"] * 2
    for p in prompts:
        (obj,) = parse_prompt(p.text).objects
        assert (obj.kind, obj.colour) == ("cross", p.colour)


def test_fp16_cast_keeps_keys_and_metadata(tmp_path):
    a, b = torch.randn(4, 8), torch.randn(8, 4)
    tensors = {"unet.mid.conv1.lora_A.weight": a, "unet.mid.conv1.lora_B.weight": b,
               "text_encoder.layers.0.q_proj.lora_linear_layer.down.weight": a.clone()}
    save_file(tensors, str(tmp_path / "adapter.safetensors"), metadata={"format": "pt", "note": "x"})
    cast_adapter_fp16(tmp_path / "adapter.safetensors")
    with safe_open(str(tmp_path / "adapter.safetensors"), "pt") as handle:
        assert handle.metadata() == {"format": "pt", "note": "x"} and sorted(handle.keys()) == sorted(tensors)
        assert {str(handle.get_slice(k).get_dtype()) for k in handle.keys()} == {"F16"}
        assert torch.equal(handle.get_tensor("unet.mid.conv1.lora_A.weight"), a.half())
    assert not list(tmp_path.glob(".*"))


# --- end to end on the real architecture (untrained) ---------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from mmkit.shapes.training.data import build_shapes_tokenizer
    from mmkit.shapes.training.train_generator import (
        GeneratorConfig, assemble_pipeline, build_text_encoder, build_unet, save_pipeline,
    )
    from mmkit.shapes.training.vae import VaeConfig, build_vae

    config, tokenizer = GeneratorConfig(), build_shapes_tokenizer()
    pipe = assemble_pipeline(build_vae(VaeConfig()), build_text_encoder(config, len(tokenizer)), tokenizer,
                             build_unet(config))
    folder = tmp_path_factory.mktemp("base") / "shapes-sd"
    save_pipeline(pipe, folder)
    return folder


@pytest.fixture(scope="module")
def run(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "shapes-lora-star"
    # lr 1e-2: two Adam steps move the zero-initialised B matrices enough to change 8-bit pixels
    config = ConceptLoraConfig(images=8, steps=2, batch=2, learning_rate=1e-2)
    report = train_concept_lora(config, base=base, out=out, eval_n=0, progress=False, log=lambda *a: None)
    return out, report


@pytest.mark.slow
def test_two_steps_save_an_fp16_diffusers_adapter_with_its_card(run):
    out, report = run
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "pytorch_lora_weights.safetensors",
                                                     "training.json", "training_config.json"]
    with safe_open(str(out / "pytorch_lora_weights.safetensors"), "pt") as handle:
        keys = list(handle.keys())
        assert {str(handle.get_slice(k).get_dtype()) for k in keys} == {"F16"}
        assert "lora_adapter_metadata" in handle.metadata()
    assert {k.split(".")[0] for k in keys} == {"unet", "text_encoder"}
    unet = [k for k in keys if k.startswith("unet.")]
    assert all(".lora_A." in k or ".lora_B." in k for k in unet)  # one layout (train_lora keeps the UNet in peft's)
    for target in ConceptLoraConfig().targets:
        assert any(f".{target}.lora_A." in k for k in unet), target
    saved = json.loads((out / "training.json").read_text())
    assert saved["train_lora_config"]["max_steps"] == 2 and saved["train_lora_config"]["resolution"] == 64
    assert saved["seconds"]["per_step"] > 0 and np.isfinite(saved["final_loss"])
    assert "a red star" in (out / "README.md").read_text()


@pytest.mark.slow
def test_the_sdk_loads_the_adapter_and_it_changes_the_image(base, run):
    from peft.tuners.tuners_utils import BaseTunerLayer

    from mmkit.generate import ImageGenerator

    generator = ImageGenerator.from_pretrained(base, device="cpu", progress=False)

    def draw():
        image = generator.text_to_image("a red star", seed=5, steps=3, width=64, height=64).images[0]
        return np.asarray(image, dtype=np.float32)

    before = draw()
    generator.loras.load(run[0], name="star")
    tuned = [m for m in generator.pipeline.unet.modules() if isinstance(m, BaseTunerLayer)]
    assert len(tuned) > 50  # every target module got its adapter (attention, feed-forward, convolutions)
    after = draw()
    assert np.abs(after - before).max() >= 1.0
    generator.loras.disable()
    assert np.array_equal(draw(), before)


@pytest.mark.slow
def test_evaluation_returns_rates_for_both_conditions(base, run):
    result = evaluate_concept_lora(base, run[0], "star", n=2, seed=0, base_n=1, steps=2)
    assert (result["n"], result["base_prompts"]["n"]) == (2, 1)
    for condition in ("with_lora", "without_lora"):
        rates = result[condition]
        assert set(rates) == {"presence", "colour_correct", "exact", "presence_en", "presence_zh"}
        assert all(0.0 <= value <= 1.0 for value in rates.values())
        assert rates["colour_correct"] <= rates["presence"]
    assert 0.0 <= result["base_prompts"]["with_lora"] <= 1.0 and isinstance(result["passed"], bool)
