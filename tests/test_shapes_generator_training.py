"""The shapes-world generator training script runs end to end and saves a pipeline the SDK loads.

Quality bars are judged on trained weights (`python -m mmkit.shapes.training.train_generator`); this
smoke test only proves the training path and the saved layout.
"""
import json

import numpy as np
import pytest

from mmkit.generate.generator import ImageGenerator
from mmkit.shapes.training.train_generator import GeneratorConfig, train_generator
from mmkit.shapes.training.vae import VaeConfig


@pytest.mark.slow
def test_a_few_steps_save_a_pipeline_the_sdk_loads(tmp_path):
    config = GeneratorConfig(steps=3, batch=2, pool=8, eval_every=10**9, polish_steps=1, log_every=1,
                             vae=VaeConfig(steps=2, batch=2, log_every=1))
    train_generator(config, out=tmp_path / "shapes-sd", log=lambda *a, **k: None)
    folder = tmp_path / "shapes-sd"
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    weights = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))
    assert weights == ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                       "vae/diffusion_pytorch_model.safetensors"]
    assert not list(folder.rglob("*.bin"))
    from safetensors import safe_open

    with safe_open(str(folder / "unet/diffusion_pytorch_model.safetensors"), "pt") as handle:
        assert {str(handle.get_slice(k).get_dtype()) for k in handle.keys()} == {"F16"}  # shipped in fp16
    generator = ImageGenerator.from_pretrained(folder, progress=False)
    assert generator.family == "sd15" and generator.default_size == 64
    first = generator.text_to_image("a red circle", steps=2, seed=1).images[0]
    again = generator.text_to_image("a red circle", steps=2, seed=1).images[0]
    assert first.size == (64, 64) and np.array_equal(np.asarray(first), np.asarray(again))
