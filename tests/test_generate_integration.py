"""ImageGenerator wiring of LoRAs and ControlNets (the modules themselves are tested in their own files)."""
import numpy as np
import pytest
from PIL import Image

from mmkit.exceptions import UsageError
from mmkit.generate import ImageGenerator, read_generation_params
from mmkit.testing.tiny_controlnet import build_tiny_controlnet
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint
from mmkit.testing.tiny_lora import build_tiny_lora

SIZE = dict(width=64, height=64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_diffusion_checkpoint("sd15", cache_dir=tmp_path_factory.getbasetemp() / "tiny-diffusion")


def arr(image):
    return np.asarray(image, np.float32)


def test_lora_weights_are_recorded_and_checked_on_regenerate(folder, tmp_path):
    gen = ImageGenerator.from_pretrained(folder, progress=False)
    plain = gen.text_to_image("a cat", steps=2, seed=3, **SIZE)
    lora = build_tiny_lora(tmp_path / "style.safetensors", base_pipe_dir=folder, seed=1)
    name = gen.loras.load(lora, name="style", weight=0.7)
    styled = gen.text_to_image("a cat", steps=2, seed=3, **SIZE)
    assert name == "style" and styled.params.loras == (("style", 0.7),)
    assert np.abs(arr(plain.image) - arr(styled.image)).mean() > 0.5
    path = styled.save(tmp_path / "styled.png")[0]
    assert np.array_equal(arr(gen.regenerate(path).image), arr(styled.image))
    gen.loras.set_weights({"style": 0.2})
    with pytest.raises(UsageError, match="LoRA"):
        gen.regenerate(path)
    gen.loras.disable()
    assert gen.text_to_image("a cat", steps=2, seed=3, **SIZE).params.loras == ()


def test_controlnet_through_generator(folder, tmp_path):
    from mmkit.generate.controlnet import Control

    net = build_tiny_controlnet(tmp_path / "cn", unet_source=folder, seed=1)
    gen = ImageGenerator.from_pretrained(folder, controlnets={"edges": net}, progress=False)
    assert gen.controlnets == ["edges"]
    cond = Image.new("RGB", (64, 64), 0)
    cond.paste((255, 255, 255), (16, 16, 48, 48))
    plain = gen.text_to_image("a cat", steps=2, seed=3, **SIZE)
    controlled = gen.text_to_image("a cat", steps=2, seed=3, control=[Control(cond, model="edges", scale=1.0)], **SIZE)
    assert np.abs(arr(plain.image) - arr(controlled.image)).mean() > 0.5
    assert controlled.params.controls[0].model == "edges" and controlled.params.controls[0].scale == 1.0
    derived = gen._task_pipes[("control", "text_to_image", (0,))]
    assert derived.unet is gen.pipeline.unet  # from_pipe: shared modules
    path = controlled.save(tmp_path / "c.png")[0]
    assert read_generation_params(path).controls[0].model == "edges"
    with pytest.raises(UsageError, match="control="):
        gen.regenerate(path)
    again = gen.regenerate(path, control=[Control(cond, model="edges", scale=1.0)])
    assert np.array_equal(arr(again.image), arr(controlled.image))
