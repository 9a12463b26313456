"""LoRA training on tiny SD 1.5 / SDXL checkpoints: adapters that load back and change images, exact resume,
data-folder errors, the config and the command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from mmkit.exceptions import DeviceError, MediaError, UsageError
from mmkit.generate.train_lora import TrainLoraConfig, build_parser, main, train_lora
from mmkit.generate.training.config import make_config
from mmkit.generate.training.data import CaptionedImageFolder, TrainingOrder, find_captioned_images
from mmkit.generate.training.loop import choose_mixed_precision
from mmkit.testing.tiny_diffusion import build_tiny_sd15, build_tiny_sdxl

RUN = dict(resolution=32, batch_size=2, learning_rate=1e-2, seed=3)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("bases")
    return {"sd15": build_tiny_sd15(root / "sd15"), "sdxl": build_tiny_sdxl(root / "sdxl")}


def _write_images(folder, count=8, size=(40, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = np.zeros((*size, 3), dtype=np.uint8)
        pixels[..., i % 3] = 200  # a red, green or blue image ...
        pixels[: size[0] // 2] += rng.integers(0, 50, (size[0] // 2, size[1], 3), dtype=np.uint8)  # ... with texture
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = _write_images(tmp_path_factory.mktemp("data"))
    for i in range(8):
        (folder / f"img{i}.txt").write_text(f"a {['red', 'green', 'blue'][i % 3]} square")
    return folder


def _lora_b_norms(adapter) -> dict[str, float]:
    state = load_file(str(adapter))
    # UNet in peft's layout ("...to_q.lora_B.weight"), text encoders in diffusers' ("...lora_linear_layer.up.weight")
    ups = {k: v.float().norm().item() for k, v in state.items() if k.endswith(("up.weight", "lora_B.weight"))}
    assert len(ups) == sum(1 for k in state if k.endswith(("down.weight", "lora_A.weight"))) == len(state) // 2 > 0
    return ups


def _image(pipe, prompt="a red square"):
    out = pipe(prompt, num_inference_steps=3, height=32, width=32, generator=torch.Generator("cpu").manual_seed(0),
               output_type="np")
    return out.images[0]


# --- end to end ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sd15_run(bases, data_dir, tmp_path_factory):
    config = TrainLoraConfig(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path_factory.mktemp("sd15run"),
                             max_steps=4, random_flip=True, caption_dropout=0.25, validation_prompt="a red square",
                             validation_steps=2, num_validation_images=1, validation_inference_steps=2, **RUN)
    return config, train_lora(config, progress=False)


@pytest.mark.slow
def test_sd15_run_trains_every_lora_matrix_and_writes_its_files(sd15_run):
    config, result = sd15_run
    assert (result.family, result.steps, len(result.loss_history)) == ("sd15", 4, 4)
    assert all(np.isfinite(result.loss_history)) and result.final_loss == result.loss_history[-1]
    assert result.seconds_per_step == pytest.approx(result.seconds / 4)
    assert result.adapter_path == config.output_dir / "pytorch_lora_weights.safetensors"
    assert json.loads(result.config_path.read_text()) == config.model_dump(mode="json")
    norms = _lora_b_norms(result.adapter_path)  # B starts at zero: training must have moved every one
    # 4 projections x 2 attentions x 6 transformer blocks (2 down, 1 mid, 3 up)
    assert len(norms) == 4 * 2 * 6 and min(norms.values()) > 0
    assert [p.name for p in result.validation_images] == ["step_2_0.png", "step_4_0.png"]
    assert Image.open(result.validation_images[-1]).size == (32, 32)
    assert not list(config.output_dir.rglob(".*"))  # atomic writes leave no temp files behind


@pytest.mark.slow
def test_sd15_adapter_loads_through_diffusers_and_loraset_and_changes_images(bases, sd15_run):
    from diffusers import StableDiffusionPipeline

    from mmkit.generate.lora import LoraSet

    config, result = sd15_run
    pipe = StableDiffusionPipeline.from_pretrained(bases["sd15"])
    pipe.set_progress_bar_config(disable=True)
    before = _image(pipe)
    pipe.load_lora_weights(str(config.output_dir))
    with_diffusers = _image(pipe)
    assert np.abs(with_diffusers - before).max() > 1e-3
    pipe.unload_lora_weights()
    np.testing.assert_allclose(_image(pipe), before, atol=1e-6)
    LoraSet(pipe).load(result.adapter_path, name="trained", weight=1.0)
    np.testing.assert_allclose(_image(pipe), with_diffusers, atol=1e-5)


@pytest.mark.slow
def test_sd15_adapter_changes_image_generator_output(bases, sd15_run):
    from mmkit.generate.generator import ImageGenerator

    generator = ImageGenerator.from_pretrained(str(bases["sd15"]), device="cpu", progress=False)

    def draw():
        image = generator.text_to_image("a red square", seed=0, steps=3, width=32, height=32).image
        return np.asarray(image, dtype=np.float32)

    before = draw()
    generator.loras.load(sd15_run[1].adapter_path, name="trained")
    after = draw()
    assert before.shape == (32, 32, 3) and np.abs(after - before).max() >= 1.0  # at least one 8-bit level


@pytest.mark.slow
def test_convolution_and_feed_forward_targets_load_whole(bases, data_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    targets = ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "ff.net.2")
    config = TrainLoraConfig(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path, max_steps=1,
                             target_modules=targets, **RUN)
    result = train_lora(config, progress=False)
    keys = list(load_file(str(result.adapter_path)))
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)  # one layout, whatever the targets
    assert any(".conv1." in k for k in keys) and any(".to_q." in k for k in keys)
    pipe = StableDiffusionPipeline.from_pretrained(bases["sd15"])
    pipe.load_lora_weights(str(tmp_path))
    wrapped = [n for n, m in pipe.unet.named_modules() if hasattr(m, "lora_A") and "default_0" in m.lora_A]
    assert len(wrapped) == len(keys) // 2  # every trained layer came back, none dropped


@pytest.mark.slow
def test_sdxl_adapter_with_text_encoders_changes_images(bases, data_dir, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from mmkit.generate.lora import LoraSet

    config = TrainLoraConfig(base=str(bases["sdxl"]), data_dir=data_dir, output_dir=tmp_path / "out", max_steps=3,
                             train_text_encoder=True, rank=2, alpha=4, center_crop=True, **RUN)
    result = train_lora(config, progress=False)

    assert result.family == "sdxl" and result.steps == 3 and all(np.isfinite(result.loss_history))
    norms = _lora_b_norms(result.adapter_path)
    prefixes = {k.split(".")[0] for k in norms}
    assert prefixes == {"unet", "text_encoder", "text_encoder_2"}
    # SDXL conditions on encoder 1's penultimate layer, so its last layer (2 of 0..2) gets no gradient.
    unused = {k for k in norms if k.startswith("text_encoder.encoder.layers.2.")}
    assert len(unused) == 4 and all(norms[k] == 0 for k in unused)
    assert min(v for k, v in norms.items() if k not in unused) > 0

    pipe = StableDiffusionXLPipeline.from_pretrained(bases["sdxl"])
    pipe.set_progress_bar_config(disable=True)
    before = _image(pipe)
    LoraSet(pipe).load(result.adapter_path, name="trained")
    after = _image(pipe)
    assert np.abs(after - before).max() > 1e-3
    # rank 2 / alpha 4 travels in the file's metadata: peft scales the update by alpha / rank = 2.
    assert pipe.unet.peft_config["trained"].r == 2 and pipe.unet.peft_config["trained"].lora_alpha == 4


@pytest.mark.slow
def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(bases, data_dir, tmp_path):
    common = dict(base=str(bases["sd15"]), data_dir=data_dir, max_steps=4, gradient_accumulation_steps=2,
                  lr_scheduler="cosine", lr_warmup_steps=1, checkpointing_steps=2, **RUN)
    full = train_lora(TrainLoraConfig(output_dir=tmp_path / "full", **common), progress=False)
    assert [p.name for p in full.checkpoints] == ["checkpoint_0", "checkpoint_1"]
    first = full.checkpoints[0]
    assert json.loads((first / "training_state.json").read_text())["step"] == 2
    assert (first / "pytorch_lora_weights.safetensors").is_file()
    assert not list(first.glob("*model*.safetensors"))  # the frozen UNet is not copied into checkpoints

    resumed = train_lora(TrainLoraConfig(output_dir=tmp_path / "resumed", resume_from=str(first), **common), progress=False)
    assert (resumed.resumed_from_step, resumed.steps, len(resumed.loss_history)) == (2, 4, 2)
    assert resumed.loss_history == pytest.approx(full.loss_history[2:], rel=1e-6)
    a, b = load_file(str(full.adapter_path)), load_file(str(resumed.adapter_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_latest_after_an_interrupted_run_keeps_the_checkpoint_limit(bases, data_dir, tmp_path):
    common = dict(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path / "out", checkpointing_steps=1,
                  checkpoints_total_limit=2, **RUN)
    reference = train_lora(TrainLoraConfig(**{**common, "output_dir": tmp_path / "ref", "checkpointing_steps": None},
                                           max_steps=3), progress=False)
    first = train_lora(TrainLoraConfig(max_steps=2, **common), progress=False)  # "interrupted" after 2 steps
    with pytest.raises(UsageError, match="already at step 2"):
        train_lora(TrainLoraConfig(max_steps=2, resume_from="latest", **common), progress=False)
    second = train_lora(TrainLoraConfig(max_steps=3, resume_from="latest", **common), progress=False)
    assert (second.resumed_from_step, second.steps) == (2, 3)
    assert first.loss_history + second.loss_history == pytest.approx(reference.loss_history, rel=1e-6)
    a, b = load_file(str(reference.adapter_path)), load_file(str(second.adapter_path))
    assert all(torch.equal(a[k], b[k]) for k in a)
    kept = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert kept == ["checkpoint_1", "checkpoint_2"]  # limit 2: the step-1 checkpoint was deleted


@pytest.mark.slow
def test_cli_main_runs_end_to_end_on_a_v_prediction_model(bases, data_dir, tmp_path, capsys):
    base = shutil.copytree(bases["sd15"], tmp_path / "vpred")
    scheduler_file = base / "scheduler" / "scheduler_config.json"
    scheduler_file.write_text(json.dumps({**json.loads(scheduler_file.read_text()), "prediction_type": "v_prediction"}))
    code = main(["--base", str(base), "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "out"),
                 "--max-steps", "2", "--resolution", "32", "--batch-size", "2", "--snr-gamma", "5",
                 "--noise-offset", "0.05", "--target-modules", "to_q", "to_v", "--random-flip", "--no-progress"])
    assert code == 0
    assert "steps: 2" in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "training_config.json").read_text())
    assert saved["target_modules"] == ["to_q", "to_v"] and saved["snr_gamma"] == 5 and saved["random_flip"] is True
    keys = load_file(str(tmp_path / "out" / "pytorch_lora_weights.safetensors")).keys()
    assert keys and all(".to_q." in k or ".to_v." in k for k in keys)


# --- errors -------------------------------------------------------------------------------------------------


def _corrupt(folder):
    _write_images(folder, count=2)
    (folder / "img1.png").write_bytes(b"not a png")
    for i in range(2):
        (folder / f"img{i}.txt").write_text("x")


def _uncaptioned(folder):
    _write_images(folder, count=3)
    (folder / "img0.txt").write_text("x")


def _bad_metadata(folder):
    _write_images(folder, count=1)
    (folder / "metadata.jsonl").write_text('{"file_name": "img0.png"}\n')


def _metadata_missing_image(folder):
    _write_images(folder, count=1)
    (folder / "metadata.jsonl").write_text('{"file_name": "img0.png", "text": "a"}\n{"file_name": "gone.png", "text": "b"}\n')


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda f: None, UsageError, "does not exist"),
        (lambda f: f.mkdir(), UsageError, "No images found"),
        (_uncaptioned, UsageError, r"2 image\(s\) .* have no caption.*img1.png"),
        (_corrupt, MediaError, "img1.png"),
        (_bad_metadata, MediaError, "line 1 needs a string 'file_name' and a string 'text'"),
        (_metadata_missing_image, MediaError, "line 2 names a missing image.*gone.png"),
    ],
)
def test_bad_data_folders_fail_before_any_model_loads(make, error, match, tmp_path):
    folder = tmp_path / "data"
    make(folder)
    config = TrainLoraConfig(base=str(tmp_path / "no-model"), data_dir=folder, output_dir=tmp_path / "out")
    with pytest.raises(error, match=match):
        train_lora(config)
    assert main(["--base", "x", "--data-dir", str(folder), "--output-dir", str(tmp_path / "o")]) in (1, 2)


def test_bad_settings_and_resume_targets(bases, data_dir, tmp_path):
    with pytest.raises(UsageError, match="resolution: Value error, resolution must be a multiple of 8"):
        make_config(base="b", data_dir=data_dir, output_dir=tmp_path, resolution=36)
    with pytest.raises(UsageError, match="lr_scheduler"):
        make_config(base="b", data_dir=data_dir, output_dir=tmp_path, lr_scheduler="sometimes")
    with pytest.raises(UsageError, match="no checkpoint yet"):
        train_lora(TrainLoraConfig(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path, resume_from="latest"))
    with pytest.raises(UsageError, match="not a checkpoint folder"):
        train_lora(TrainLoraConfig(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path, resume_from=str(tmp_path)))
    with pytest.raises(UsageError, match="does not match the checkpoint, which is sd15"):
        train_lora(TrainLoraConfig(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path, family="sdxl"))
    with pytest.raises(UsageError, match="target_modules do not match the UNet"):
        train_lora(TrainLoraConfig(base=str(bases["sd15"]), data_dir=data_dir, output_dir=tmp_path, max_steps=1,
                                   target_modules=("nope",), **RUN), progress=False)
    with pytest.raises(DeviceError, match="fp16 mixed precision needs a GPU"):
        choose_mixed_precision("fp16", "cpu")
    assert (choose_mixed_precision("auto", "cpu"), choose_mixed_precision("bf16", "cpu")) == ("no", "bf16")


def test_config_defaults_are_frozen_and_described(tmp_path):
    config = TrainLoraConfig(base="b", data_dir=tmp_path, output_dir=tmp_path, rank=8)
    assert config.lora_alpha == 8.0 and config.target_modules == ("to_q", "to_k", "to_v", "to_out.0")
    with pytest.raises(Exception, match="frozen"):
        config.rank = 2
    assert all(field.description for field in TrainLoraConfig.model_fields.values())
    help_text = build_parser().format_help()
    assert "--gradient-accumulation-steps" in help_text and "--no-train-text-encoder" in help_text


# --- data ---------------------------------------------------------------------------------------------------


def test_captions_from_metadata_and_sdxl_size_conditioning(tmp_path):
    folder = _write_images(tmp_path / "data", count=2)  # 40 x 48 (h x w)
    rows = [{"file_name": "img1.png", "text": " second "}, {"file_name": "img0.png", "text": "first"}]
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = find_captioned_images(folder)
    assert [(i.path.name, i.caption) for i in items] == [("img1.png", "second"), ("img0.png", "first")]

    centred = CaptionedImageFolder(items, resolution=32, center_crop=True, random_flip=False, caption_dropout=0.0, seed=0)
    sample = centred[(0, 1)]
    assert sample["pixel_values"].shape == (3, 32, 32) and sample["caption"] == "first"
    assert -1.0 <= sample["pixel_values"].min() and sample["pixel_values"].max() <= 1.0
    # 40x48 -> short side 32 -> 32x38 -> centre crop left = round(6 / 2) = 3
    assert sample["time_ids"].tolist() == [40, 48, 0, 3, 32, 32]

    randomised = CaptionedImageFolder(items, resolution=32, center_crop=False, random_flip=True, caption_dropout=0.5, seed=0)
    draws = [randomised[(epoch, 0)] for epoch in range(12)]
    assert all(torch.equal(d["pixel_values"], randomised[(e, 0)]["pixel_values"]) for e, d in enumerate(draws))
    assert {d["caption"] for d in draws} == {"", "second"}  # caption dropout
    assert len({int(d["time_ids"][3]) for d in draws}) > 1  # random crops move the left edge


def test_training_order_is_seeded_and_visits_every_image_each_epoch():
    order = list(TrainingOrder(5, total=12, seed=1))
    assert len(order) == 12 and order == list(TrainingOrder(5, total=12, seed=1))
    assert [e for e, _ in order] == [0] * 5 + [1] * 5 + [2] * 2
    assert sorted(i for e, i in order if e == 0) == sorted(i for e, i in order if e == 1) == [0, 1, 2, 3, 4]
    assert order != list(TrainingOrder(5, total=12, seed=2))


def test_pickle_base_is_refused_unless_allowed(bases, data_dir, tmp_path):
    from safetensors.torch import load_file as read_safetensors

    from mmkit.exceptions import UnsafeSourceError

    base = shutil.copytree(bases["sd15"], tmp_path / "pickle-base")
    weights = base / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(read_safetensors(str(weights)), base / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    config = dict(base=str(base), data_dir=data_dir, max_steps=1, **RUN)
    with pytest.raises(UnsafeSourceError, match="pickle"):
        train_lora(TrainLoraConfig(output_dir=tmp_path / "refused", **config), progress=False)
    assert not (tmp_path / "refused" / "pytorch_lora_weights.safetensors").exists()
    result = train_lora(TrainLoraConfig(output_dir=tmp_path / "allowed", allow_pickle=True, **config), progress=False)
    assert result.steps == 1 and result.adapter_path.is_file()
    assert "--allow-pickle" in build_parser().format_help()


def test_min_snr_weights_on_a_zero_terminal_snr_schedule():
    from diffusers import DDPMScheduler

    from mmkit.generate.training.loop import _snr_weights

    t = torch.tensor([0, 500, 999])
    for kind in ("epsilon", "v_prediction"):
        sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              rescale_betas_zero_snr=True, prediction_type=kind)
        assert float(sched.alphas_cumprod[-1]) == 0.0
        w = _snr_weights(sched, t, 5.0)
        assert torch.isfinite(w).all()
        # epsilon: min(SNR, 5) / SNR -> 1 as SNR -> 0; v: min(SNR, 5) / (SNR + 1) = 0 at SNR 0
        assert w[2] == (1.0 if kind == "epsilon" else 0.0)
        assert 0 < w[0] < 0.01 and 0 < w[1] <= 1.0
