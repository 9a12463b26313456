"""The tiny diffusion checkpoints: real diffusers classes, seeded, offline, single-file round trip."""
import json

import pytest
import torch
from safetensors import safe_open

from mmkit.testing.single_file import save_single_file_checkpoint
from mmkit.testing.tiny_diffusion import build_tiny_clip_tokenizer, build_tiny_sd15, tiny_diffusion_checkpoint


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-diffusion"


def _config(folder, part):
    return json.loads((folder / part / "config.json").read_text())


def test_layouts_and_configs(cache):
    sd15 = tiny_diffusion_checkpoint("sd15", cache_dir=cache)
    sdxl = tiny_diffusion_checkpoint("sdxl", cache_dir=cache)
    inpaint = tiny_diffusion_checkpoint("sd15_inpaint", cache_dir=cache)
    assert json.loads((sd15 / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    assert json.loads((sdxl / "model_index.json").read_text())["_class_name"] == "StableDiffusionXLPipeline"
    assert json.loads((inpaint / "model_index.json").read_text())["_class_name"] == "StableDiffusionInpaintPipeline"
    assert (sd15 / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(sd15.rglob("*.bin"))
    assert _config(inpaint, "unet")["in_channels"] == 9 and _config(sd15, "unet")["in_channels"] == 4
    xl = _config(sdxl, "unet")
    assert xl["addition_embed_type"] == "text_time"
    assert xl["cross_attention_dim"] == 32 + 64
    assert xl["projection_class_embeddings_input_dim"] == 6 * xl["addition_time_embed_dim"] + 64
    assert len(_config(sd15, "vae")["block_out_channels"]) == 4  # 8x down-sampling, like SD


def test_same_seed_same_weights_and_cache_is_idempotent(tmp_path, cache):
    a = build_tiny_sd15(tmp_path / "a", seed=3)
    b = build_tiny_sd15(tmp_path / "b", seed=3)
    c = build_tiny_sd15(tmp_path / "c", seed=4)
    name = "unet/diffusion_pytorch_model.safetensors"
    with safe_open(a / name, "pt") as fa, safe_open(b / name, "pt") as fb, safe_open(c / name, "pt") as fc:
        key = "conv_in.weight"
        assert torch.equal(fa.get_tensor(key), fb.get_tensor(key))
        assert not torch.equal(fa.get_tensor(key), fc.get_tensor(key))
    first = tiny_diffusion_checkpoint("sd15", cache_dir=cache)
    stamp = (first / "model_index.json").stat().st_mtime_ns
    assert tiny_diffusion_checkpoint("sd15", cache_dir=cache) == first
    assert (first / "model_index.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_tokenizer_is_clip_shaped():
    tok = build_tiny_clip_tokenizer()
    assert tok.model_max_length == 77
    ids = tok("a photo of a cat").input_ids
    assert ids[0] == tok.bos_token_id == len(tok) - 2 and ids[-1] == tok.eos_token_id == len(tok) - 1
    assert tok.convert_ids_to_tokens(ids[1:-1]) == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    assert build_tiny_clip_tokenizer(pad_token="!").pad_token == "!"


@pytest.mark.parametrize("name", ["sd15", "sdxl", "sd15_inpaint"])
def test_single_file_round_trip_is_exact(name, cache, tmp_path):
    import diffusers

    folder = tiny_diffusion_checkpoint(name, cache_dir=cache)
    single = save_single_file_checkpoint(folder, tmp_path / f"{name}.safetensors")
    with safe_open(single, "pt") as handle:
        keys = set(handle.keys())
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert any(k.startswith("first_stage_model.decoder.up.") for k in keys)
    if name == "sdxl":
        assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    else:
        assert any(k.startswith("cond_stage_model.transformer.text_model.") for k in keys)
    cls = getattr(diffusers, json.loads((folder / "model_index.json").read_text())["_class_name"])
    ref = cls.from_pretrained(folder)
    # diffusers' own converters, offline: configs from the folder, weights from the single file
    loaded = cls.from_single_file(str(single), config=str(folder), local_files_only=True)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if getattr(ref, part, None) is None:
            continue
        a, b = getattr(ref, part).state_dict(), getattr(loaded, part).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), part
