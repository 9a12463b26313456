"""Checkpoint loading: family from the weights, single files offline, pickle refused, clear offline errors."""
import hashlib
import json
import shutil

import numpy as np
import pytest

from mmkit.exceptions import ModelLoadError, UnsafeSourceError, UsageError
from mmkit.generate import ImageGenerator
from mmkit.generate.loading import inspect_folder, inspect_single_file, load_checkpoint
from mmkit.testing.single_file import save_single_file_checkpoint
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "tiny-diffusion"
    return {name: tiny_diffusion_checkpoint(name, cache_dir=cache) for name in ("sd15", "sdxl", "sd15_inpaint")}


@pytest.fixture(scope="module")
def single_files(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    return {name: save_single_file_checkpoint(folder, out / f"my-{name}-model.safetensors")
            for name, folder in folders.items()}


def test_family_from_folders_and_headers(folders, single_files):
    expected = {"sd15": ("sd15", False), "sdxl": ("sdxl", False), "sd15_inpaint": ("sd15", True)}
    for name, (family, inpainting) in expected.items():
        info = inspect_folder(folders[name])
        assert (info.family, info.is_inpainting) == (family, inpainting)
        assert {p.parent.name for p in info.weight_files} >= {"unet", "vae", "text_encoder"}
        single = inspect_single_file(single_files[name])
        assert (single.family, single.is_inpainting) == (family, inpainting)


def test_family_is_not_read_from_the_name(folders, tmp_path):
    misleading = shutil.copytree(folders["sdxl"], tmp_path / "stable-diffusion-v1-5-inpainting")
    info = inspect_folder(misleading)
    assert (info.family, info.is_inpainting) == ("sdxl", False)


@pytest.mark.parametrize("name", ["sd15", "sdxl", "sd15_inpaint"])
def test_single_file_loads_offline_with_config_and_matches_folder(name, folders, single_files):
    folder_gen = ImageGenerator.from_pretrained(folders[name], progress=False)
    file_gen = ImageGenerator.from_pretrained(single_files[name], config=folders[name], progress=False)
    assert (file_gen.family, file_gen.is_inpainting) == (folder_gen.family, folder_gen.is_inpainting)
    assert file_gen.model_hash == hashlib.sha256(single_files[name].read_bytes()).hexdigest()
    if name == "sd15_inpaint":
        from PIL import Image

        image, mask = Image.new("RGB", (64, 64), (90, 40, 200)), Image.new("L", (64, 64), 255)
        a = folder_gen.inpaint(image, mask, "a cat", steps=2, seed=4).image
        b = file_gen.inpaint(image, mask, "a cat", steps=2, seed=4).image
    else:
        a = folder_gen.text_to_image("a cat", steps=2, seed=4, width=64, height=64).image
        b = file_gen.text_to_image("a cat", steps=2, seed=4, width=64, height=64).image
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_single_file_without_config_offline_says_how(single_files):
    with pytest.raises(ModelLoadError, match="config=") as info:
        ImageGenerator.from_pretrained(single_files["sd15"], progress=False)
    assert "sd15" in str(info.value)


def test_pickle_refused(folders, tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not even read")
    with pytest.raises(UnsafeSourceError, match="allow_pickle=True"):
        ImageGenerator.from_pretrained(ckpt)
    bin_only = shutil.copytree(folders["sd15"], tmp_path / "bin-only")
    weights = bin_only / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(UnsafeSourceError, match="'unet' has only pickle weights"):
        ImageGenerator.from_pretrained(bin_only)
    assert inspect_folder(bin_only, allow_pickle=True).family == "sd15"  # the opt-in passes the check


def test_missing_and_unsupported_sources(folders, tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="No such file"):
        ImageGenerator.from_pretrained(tmp_path / "nope")
    with pytest.raises(UsageError):
        ImageGenerator.from_pretrained(42)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as info:
        ImageGenerator.from_pretrained("someone/not-cached-model")
    assert info.value.received == "someone/not-cached-model"
    sd2 = shutil.copytree(folders["sd15"], tmp_path / "sd2-like")
    cfg = json.loads((sd2 / "unet" / "config.json").read_text())
    (sd2 / "unet" / "config.json").write_text(json.dumps({**cfg, "cross_attention_dim": 1024}))
    with pytest.raises(ModelLoadError, match="SD 2"):
        ImageGenerator.from_pretrained(sd2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="model_index.json"):
        ImageGenerator.from_pretrained(tmp_path / "empty")


def test_progress_false_hides_loading_bars_and_restores_the_setting(folders, capfd):
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    from mmkit.testing import tiny_checkpoint
    from mmkit.understand.model import VisionLanguageModel

    diffusers_logging.enable_progress_bar()  # other tests (the in-process demo) may have turned them off
    transformers_logging.enable_progress_bar()
    load_checkpoint(folders["sd15"], device="cpu", progress=False)
    qwen = tiny_checkpoint("qwen2_5_vl", folders["sd15"].parent / "qwen")
    VisionLanguageModel.from_pretrained(qwen, device="cpu", progress=False)
    quiet = capfd.readouterr().err
    assert "Loading pipeline components" not in quiet and "Loading weights" not in quiet
    assert diffusers_logging.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()
    load_checkpoint(folders["sd15"], device="cpu")
    assert "Loading pipeline components" in capfd.readouterr().err  # the default still shows them


def test_progress_false_also_hides_the_bar_of_a_text_encoder_lora(capfd):
    import transformers.utils.logging as transformers_logging

    from mmkit.generate import ImageGenerator

    transformers_logging.enable_progress_bar()
    for progress in (False, True):
        gen = ImageGenerator.from_pretrained("mmkit/shapes-sd", device="cpu", progress=progress)
        capfd.readouterr()
        gen.loras.load("mmkit/shapes-lora-star")  # carries text-encoder LoRA layers (transformers loads them)
        assert gen.pipeline.text_encoder.peft_config  # the text-encoder part did load
        assert ("Loading weights" in capfd.readouterr().err) is progress
    assert transformers_logging.is_progress_bar_enabled()
