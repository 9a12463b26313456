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
def test_a_few_steps_save_a_pipeline_the_sdk_loads(tmp_path, monkeypatch):
    config = GeneratorConfig(steps=5, stop_after=3, batch=2, pool=8, eval_every=10**9, polish_steps=1, log_every=1,
                             vae=VaeConfig(steps=2, batch=2, log_every=1))
    report = train_generator(config, out=tmp_path / "shapes-sd", stage1_dir=tmp_path / "vae", log=lambda *a, **k: None)
    assert [h["step"] for h in report["history"]] == [3]  # stopped (and scored) after 3 of the 5 planned steps
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
    # a resumed run keeps the vocabulary its text encoder learned (a rebuilt BPE may number ties differently)
    import mmkit.shapes.training.train_generator as module

    monkeypatch.setattr(module, "build_shapes_tokenizer", lambda: pytest.fail("resume rebuilt the tokenizer"))
    more = GeneratorConfig(steps=1, batch=2, pool=8, eval_every=10**9, polish_steps=0, seed=1)
    train_generator(more, out=tmp_path / "resumed", vae_dir=tmp_path / "vae", resume=folder, log=lambda *a, **k: None)
    saved = (folder / "tokenizer/tokenizer.json").read_text()
    assert (tmp_path / "resumed/tokenizer/tokenizer.json").read_text() == saved


def test_zero_terminal_snr_objective_and_schedule():
    import torch

    from mmkit.shapes.training.train_generator import (
        _snr_weights, assemble_pipeline, sd_noise_schedule, training_target)

    plain, zero = sd_noise_schedule(), sd_noise_schedule(zero_terminal_snr=True)
    abar = lambda s, t: float(s.alphas_cumprod[t])  # noqa: E731
    assert abs(abar(plain, 999) - 0.0047) < 1e-4  # SD 1.5: the last step still holds ~7% of the image
    assert abar(zero, 999) == 0.0 and abar(zero, 0) == pytest.approx(abar(plain, 0), rel=1e-3)
    x0, noise = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16)
    t = torch.tensor([0, 999])
    assert torch.equal(training_target(plain, x0, noise, t), noise)
    v = training_target(zero, x0, noise, t)  # v = sqrt(abar) eps - sqrt(1 - abar) x0: -x0 at zero SNR
    assert torch.allclose(v[1], -x0[1]) and not torch.allclose(v[0], noise[0])
    snr0 = abar(zero, 0) / (1 - abar(zero, 0))
    assert torch.allclose(_snr_weights(zero, t, 5.0), torch.tensor([5.0 / (1 + snr0), 1.0]))  # capped; 1 at SNR 0
    scheduler = assemble_pipeline(None, None, None, None, zero_terminal_snr=True).scheduler
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.rescale_betas_zero_snr
    scheduler.set_timesteps(20)
    assert int(scheduler.timesteps[0]) == 999  # "trailing": sampling starts where training saw pure noise


def test_resuming_a_zero_snr_model_without_the_flag_is_refused_before_any_work(tmp_path):
    from mmkit.exceptions import UsageError

    folder = tmp_path / "zero-snr"
    (folder / "scheduler").mkdir(parents=True)
    (folder / "scheduler/scheduler_config.json").write_text(json.dumps(
        {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True}))
    with pytest.raises(UsageError, match="zero terminal SNR") as info:  # no VAE given: would train one first
        train_generator(GeneratorConfig(steps=1), out=tmp_path / "out", resume=folder, log=lambda *a, **k: None)
    assert "--zero-terminal-snr" in info.value.fix and not (tmp_path / "out").exists()
