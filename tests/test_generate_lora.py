"""LoRA adapters: weights, enable/disable, fuse/unfuse, unload, two adapters, kohya vs diffusers, bad keys.

Base pipelines are tiny SD 1.5 folders loaded with diffusers `from_pretrained`; LoRA files are written by
`mmkit.testing.tiny_lora` and loaded through `LoraSet.load` like user files.
"""

import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mmkit.exceptions import ModelLoadError, UnsafeSourceError, UsageError
from mmkit.generate.lora import LoraInfo, LoraSet
from mmkit.testing.tiny_diffusion import build_tiny_sd15
from mmkit.testing.tiny_lora import BROKEN_LORA_BAD_MODULES, build_broken_lora, build_tiny_lora


@pytest.fixture(scope="module")
def sd15_dir(tmp_path_factory):
    return build_tiny_sd15(tmp_path_factory.mktemp("sd15") / "pipe", seed=0)


@pytest.fixture(scope="module")
def files(sd15_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {
        "style": build_tiny_lora(root / "style.safetensors", base_pipe_dir=sd15_dir, seed=0),
        "other": build_tiny_lora(root / "other.safetensors", base_pipe_dir=sd15_dir, seed=1),
        "kohya": build_tiny_lora(root / "style_kohya.safetensors", base_pipe_dir=sd15_dir, seed=0, format="kohya"),
        "broken": build_broken_lora(root / "broken.safetensors", base_pipe_dir=sd15_dir, seed=0),
    }


@pytest.fixture
def pipe(sd15_dir):
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(sd15_dir)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _run(pipe) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(0)
    return pipe("a red chair", num_inference_steps=4, height=64, width=64, generator=generator,
                output_type="np").images[0]


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    # images in [0, 1]; weight 0 and disable() measure exactly 0 here, fuse/unfuse ~4e-6 (float rounding)
    return float(np.abs(a - b).max())


def test_weight_zero_equals_base_and_one_changes_it(pipe, files):
    base_image = _run(pipe)
    loras = LoraSet(pipe)
    assert loras.load(files["style"], weight=0.0) == "style"  # name defaults to the file stem
    assert _diff(_run(pipe), base_image) < 1e-6
    loras.set_weights({"style": 1.0})
    assert np.abs(_run(pipe) - base_image).mean() > 5e-3


def test_disable_equals_base_and_enable_restores(pipe, files):
    base_image = _run(pipe)
    loras = LoraSet(pipe)
    loras.load(files["style"])
    with_lora = _run(pipe)
    loras.disable()
    assert not loras.enabled and _diff(_run(pipe), base_image) < 1e-6
    loras.set_weights({"style": 0.5})  # re-weighting keeps them disabled
    assert _diff(_run(pipe), base_image) < 1e-6
    loras.set_weights({"style": 1.0})
    loras.enable()
    assert _diff(_run(pipe), with_lora) < 1e-6
    loras.disable()
    loras.unload()
    assert loras.enabled  # unloading everything starts afresh: the next adapter is active


def test_fuse_matches_unfused_and_list_reports_state(pipe, files):
    loras = LoraSet(pipe)
    loras.load(files["style"], weight=0.8)
    loras.load(files["other"], name="other", weight=0.5)
    unfused = _run(pipe)
    loras.fuse()
    assert _diff(_run(pipe), unfused) < 1e-4
    assert loras.list() == [
        LoraInfo(name="style", source=str(files["style"]), weight=0.8, fused=True),
        LoraInfo(name="other", source=str(files["other"]), weight=0.5, fused=True),
    ]
    for call in (lambda: loras.set_weights({"style": 1.0}), loras.disable, lambda: loras.load(files["kohya"])):
        with pytest.raises(UsageError, match="unfuse"):
            call()
    loras.unfuse()
    assert not any(info.fused for info in loras.list())
    assert _diff(_run(pipe), unfused) < 1e-4


def test_unload_while_fused_unfuses_first(pipe, files):
    loras = LoraSet(pipe)
    loras.load(files["style"])
    style_only = _run(pipe)
    loras.load(files["other"], name="other")
    loras.fuse()
    loras.unload("other")
    assert loras.list() == [LoraInfo(name="style", source=str(files["style"]), weight=1.0, fused=False)]
    assert _diff(_run(pipe), style_only) < 1e-4


def test_unload_restores_base_exactly(pipe, files):
    base_image = _run(pipe)
    loras = LoraSet(pipe)
    loras.load(files["style"])
    loras.load(files["other"], name="other")
    loras.unload()
    assert loras.list() == [] and pipe.get_list_adapters() == {}
    assert (_run(pipe) == base_image).all()


def test_two_adapters_with_weights(pipe, files):
    loras = LoraSet(pipe)
    loras.load(files["style"])
    style_only = _run(pipe)
    # diffusers alone would now run only "other"; LoraSet keeps both active at their weights
    loras.load(files["other"], name="other", weight=0.0)
    assert sorted(pipe.get_active_adapters()) == ["other", "style"]
    assert _diff(_run(pipe), style_only) < 1e-6
    loras.set_weights({"other": 1.0})
    both = _run(pipe)
    assert np.abs(both - style_only).mean() > 5e-3
    loras.unload("style")
    assert [info.name for info in loras.list()] == ["other"]
    other_only = _run(pipe)
    assert np.abs(other_only - both).mean() > 5e-3 and np.abs(other_only - style_only).mean() > 5e-3


def test_kohya_and_diffusers_files_load_to_the_same_result(pipe, files):
    loras = LoraSet(pipe)
    loras.load(files["style"])
    diffusers_image = _run(pipe)
    loras.unload()
    loras.load(files["kohya"])
    assert _diff(_run(pipe), diffusers_image) < 1e-6
    # UNet attention (2+1+3 transformer blocks x 2 attentions x 4 projections) and text encoder (3 layers x 6)
    with_adapter = [m for m in pipe.unet.modules() if "style_kohya" in getattr(m, "lora_A", {})]
    text_with_adapter = [m for m in pipe.text_encoder.modules() if "style_kohya" in getattr(m, "lora_A", {})]
    assert (len(with_adapter), len(text_with_adapter)) == (48, 18)


def test_lora_reaches_controlnet_pipelines_built_from_the_base(pipe, files, sd15_dir, tmp_path):
    from PIL import Image

    from mmkit.generate.controlnet import controlnet_pipeline, load_controlnet
    from mmkit.testing.tiny_controlnet import build_tiny_controlnet

    net = load_controlnet(build_tiny_controlnet(tmp_path / "net", unet_source=sd15_dir), device="cpu",
                          dtype=torch.float32)
    controlled = controlnet_pipeline(pipe, [net], "text_to_image")
    controlled.set_progress_bar_config(disable=True)
    off = {"image": Image.new("RGB", (64, 64)), "controlnet_conditioning_scale": 0.0}
    generator = torch.Generator("cpu").manual_seed(0)
    kwargs = {"num_inference_steps": 4, "height": 64, "width": 64, "output_type": "np", **off}
    loras = LoraSet(pipe)
    loras.load(files["style"])
    with_lora = _run(pipe)
    image = controlled("a red chair", generator=generator, **kwargs).images[0]
    assert _diff(image, with_lora) < 1e-6


# errors


def test_keys_matching_no_module_are_named_and_nothing_stays_loaded(pipe, files):
    base_image = _run(pipe)
    loras = LoraSet(pipe)
    with pytest.raises(ModelLoadError) as info:
        loras.load(files["broken"])
    message = str(info.value)
    assert "2 key(s)" in message
    for module in BROKEN_LORA_BAD_MODULES:
        assert module in message
    assert loras.list() == [] and pipe.get_list_adapters() == {}
    assert _diff(_run(pipe), base_image) < 1e-6
    loras.load(files["style"])  # the pipeline is still usable
    assert [info.name for info in loras.list()] == ["style"]


def test_foreign_prefixes_and_half_pairs_are_named(pipe, files, tmp_path):
    state = load_file(str(files["style"]))
    foreign = dict(state)
    foreign["transformer.blocks.0.attn.to_q.lora_A.weight"] = torch.zeros(4, 32)
    save_file(foreign, str(tmp_path / "foreign.safetensors"))
    dropped = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight"
    half = {k: v for k, v in state.items() if not k.endswith(dropped)}
    save_file(half, str(tmp_path / "half.safetensors"))
    loras = LoraSet(pipe)
    with pytest.raises(ModelLoadError, match=r"transformer\.blocks\.0\.attn\.to_q\.lora_A\.weight"):
        loras.load(tmp_path / "foreign.safetensors")
    with pytest.raises(ModelLoadError, match=re.escape(dropped.removesuffix(".weight") + " (missing)")):
        loras.load(tmp_path / "half.safetensors")
    assert pipe.get_list_adapters() == {}


def test_pickle_refused_unless_allowed(pipe, files, tmp_path):
    torch.save(load_file(str(files["style"])), tmp_path / "style.bin")
    loras = LoraSet(pipe)
    with pytest.raises(UnsafeSourceError, match="allow_pickle=True"):
        loras.load(tmp_path / "style.bin")
    assert loras.load(tmp_path / "style.bin", allow_pickle=True) == "style"


def test_names_sources_and_weights_are_validated(pipe, files, tmp_path):
    loras = LoraSet(pipe)
    loras.load(files["style"])
    with pytest.raises(UsageError, match="already loaded"):
        loras.load(files["kohya"], name="style")
    with pytest.raises(UsageError, match="Adapter name"):
        loras.load(files["kohya"], name="my.style")
    with pytest.raises(UsageError, match="finite"):
        loras.load(files["kohya"], name="k", weight=float("nan"))
    with pytest.raises(UsageError, match="No loaded adapter"):
        loras.set_weights({"nope": 1.0})
    with pytest.raises(UsageError, match="No loaded adapter"):
        loras.unload("nope")
    with pytest.raises(ModelLoadError, match="not found"):
        loras.load(tmp_path / "missing.safetensors")
    folder = tmp_path / "trained"
    folder.mkdir()
    (folder / "pytorch_lora_weights.safetensors").write_bytes(files["other"].read_bytes())
    assert loras.load(folder, name="trained") == "trained"  # the layout train_lora / save_lora_weights write
    assert [(i.name, i.weight) for i in loras.list()] == [("style", 1.0), ("trained", 1.0)]


def test_image_generator_loras(sd15_dir, files):
    from mmkit.generate import ImageGenerator

    gen = ImageGenerator.from_pretrained(sd15_dir, progress=False)

    def make():
        result = gen.text_to_image("a red chair", steps=4, seed=0, width=64, height=64)
        return np.asarray(result.image, dtype=np.float32), result

    base, _ = make()
    gen.loras.load(files["style"], weight=0.0)
    zero, _ = make()
    gen.loras.set_weights({"style": 1.0})
    styled, result = make()
    assert (zero == base).all() and np.abs(styled - base).mean() > 0.5  # uint8 units
    assert [tuple(item) for item in result.params.loras] == [("style", 1.0)]
    gen.loras.unload()
    assert (make()[0] == base).all()


def test_sdxl_lora_reaches_unet_and_both_text_encoders(tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from mmkit.testing.tiny_diffusion import build_tiny_sdxl

    sdxl_dir = build_tiny_sdxl(tmp_path / "sdxl", seed=0)
    lora = build_tiny_lora(tmp_path / "xl.safetensors", base_pipe_dir=sdxl_dir, seed=0)
    pipe = StableDiffusionXLPipeline.from_pretrained(sdxl_dir)
    pipe.set_progress_bar_config(disable=True)
    base = _run(pipe)
    loras = LoraSet(pipe)
    loras.load(lora)
    assert set(pipe.get_list_adapters()) == {"unet", "text_encoder", "text_encoder_2"}
    assert np.abs(_run(pipe) - base).mean() > 5e-3
    loras.set_weights({"xl": 0.0})
    assert _diff(_run(pipe), base) < 1e-6
