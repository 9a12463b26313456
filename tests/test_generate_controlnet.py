"""ControlNet: specs, loading (safetensors only by default), single/multi nets, scale, guidance window.

Pipelines come from tiny checkpoints saved to disk and loaded through the public path (diffusers
`from_pretrained` for the base, `load_controlnet` for the nets).
"""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mmkit.exceptions import ModelLoadError, UnsafeSourceError, UsageError
from mmkit.generate.controlnet import Control, control_call_kwargs, controlnet_pipeline, load_controlnet
from mmkit.testing.tiny_controlnet import build_tiny_controlnet
from mmkit.testing.tiny_diffusion import build_tiny_sd15, build_tiny_sdxl

STEPS = 4
SIZE = 64


@pytest.fixture(scope="module")
def sd15_dir(tmp_path_factory):
    return build_tiny_sd15(tmp_path_factory.mktemp("sd15") / "pipe", seed=0)


@pytest.fixture(scope="module")
def net_dirs(sd15_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("controlnets")
    return [build_tiny_controlnet(root / f"net{seed}", unet_source=sd15_dir, seed=seed) for seed in (1, 2)]


@pytest.fixture(scope="module")
def sd15(sd15_dir):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(sd15_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def nets(net_dirs):
    return [load_controlnet(d, device="cpu", dtype=torch.float32) for d in net_dirs]


def _square() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE))
    ImageDraw.Draw(image).rectangle([16, 16, 47, 47], fill="white")
    return image


def _stripes() -> Image.Image:
    array = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    array[:, ::8] = 255
    return Image.fromarray(array)


def _run(pipe, **kwargs) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(0)
    return pipe("a red chair", num_inference_steps=STEPS, height=SIZE, width=SIZE, generator=generator,
                output_type="np", **kwargs).images[0]


def _controlled(base, nets, controls, names=("edges", "stripes"), task="text_to_image", **kwargs):
    indices, call = control_call_kwargs(controls, list(names), SIZE, SIZE, task)
    pipe = controlnet_pipeline(base, [nets[i] for i in indices], task)
    pipe.set_progress_bar_config(disable=True)
    return _run(pipe, **call, **kwargs)


# 1. the spec and the call arguments


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": 0.6, "end": 0.5}, "start < end"),
        ({"start": -0.1}, "start < end"),
        ({"end": 1.5}, "start < end"),
        ({"scale": float("inf")}, "finite"),
        ({"model": -1}, "non-negative"),
        ({"preprocess": "depth"}, "Unknown control preprocess"),
        ({"preprocess": "canny", "canny_low": 50, "canny_high": 10}, "canny_low < canny_high"),
    ],
)
def test_control_rejects_bad_values_with_received_and_fix(kwargs, message):
    with pytest.raises(UsageError, match=message) as info:
        Control(image=_square(), **kwargs)
    assert "received" in str(info.value)


def test_call_kwargs_single_multi_and_task_keys():
    indices, single = control_call_kwargs([Control(image=_square(), model="stripes", scale=0.7, end=0.8)],
                                          ["edges", "stripes"], SIZE, SIZE, "text_to_image")
    assert indices == [1]
    assert set(single) == {"image", "controlnet_conditioning_scale", "control_guidance_start", "control_guidance_end"}
    assert (single["controlnet_conditioning_scale"], single["control_guidance_start"],
            single["control_guidance_end"]) == (0.7, 0.0, 0.8)
    assert isinstance(single["image"], Image.Image)

    controls = [Control(image=_square(), model=1, preprocess="canny"), Control(image=_stripes(), scale=0.5)]
    indices, multi = control_call_kwargs(controls, ["edges", "stripes"], SIZE, SIZE, "image_to_image")
    assert indices == [1, 0]
    assert "image" not in multi and len(multi["control_image"]) == 2  # image= is the init image in img2img
    assert multi["controlnet_conditioning_scale"] == [1.0, 0.5]
    assert multi["control_guidance_start"] == [0.0, 0.0] and multi["control_guidance_end"] == [1.0, 1.0]
    edges = np.asarray(multi["control_image"][0])
    assert set(np.unique(edges)) == {0, 255} and edges[16, 16:48].any()  # canny ran: white edges on black


def test_unknown_net_names_the_loaded_ones():
    with pytest.raises(UsageError, match="No ControlNet named 'depth'") as info:
        control_call_kwargs([Control(image=_square(), model="depth")], ["edges", "stripes"], SIZE, SIZE,
                            "text_to_image")
    assert "edges" in str(info.value) and "stripes" in str(info.value)
    with pytest.raises(UsageError, match="out of range"):
        control_call_kwargs([Control(image=_square(), model=2)], ["edges", "stripes"], SIZE, SIZE, "inpaint")
    with pytest.raises(UsageError, match="Unknown ControlNet task"):
        control_call_kwargs([Control(image=_square())], ["edges"], SIZE, SIZE, "upscale")


# 2. effects on the image


def test_single_controlnet_changes_output_and_shares_components(sd15, nets):
    base = _run(sd15)
    controlled = _controlled(sd15, nets, [Control(image=_square(), preprocess="canny")])
    assert np.abs(controlled - base).mean() > 5e-3
    pipe = controlnet_pipeline(sd15, [nets[0]], "text_to_image")
    assert type(pipe).__name__ == "StableDiffusionControlNetPipeline"
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert getattr(pipe, name) is getattr(sd15, name)
    assert pipe.controlnet is nets[0]


def test_scale_zero_equals_no_control(sd15, nets):
    base = _run(sd15)
    off = _controlled(sd15, nets, [Control(image=_square(), preprocess="canny", scale=0.0)])
    np.testing.assert_allclose(off, base, atol=1e-6)


def test_two_controlnets_differ_from_either_alone(sd15, nets):
    first = Control(image=_square(), model="edges", preprocess="canny")
    second = Control(image=_stripes(), model="stripes")
    only_first = _controlled(sd15, nets, [first])
    only_second = _controlled(sd15, nets, [second])
    both = _controlled(sd15, nets, [first, second])
    assert np.abs(both - only_first).mean() > 5e-3 and np.abs(both - only_second).mean() > 5e-3
    second_off = _controlled(sd15, nets, [first, Control(image=_stripes(), model="stripes", scale=0.0)])
    np.testing.assert_allclose(second_off, only_first, atol=1e-5)


def _scales_seen(sd15, nets, control) -> list[float]:
    seen: list[float] = []

    def record(module, args, kwargs):
        seen.append(float(kwargs["conditioning_scale"]))

    handle = nets[0].register_forward_pre_hook(record, with_kwargs=True)
    try:
        _controlled(sd15, nets, [control])
    finally:
        handle.remove()
    return seen


def test_guidance_window_switches_the_net_per_step(sd15, nets):
    # diffusers keeps the net at step i of N when start <= i/N and (i+1)/N <= end. The tiny SD 1.5 uses SD's
    # PNDM scheduler, whose PLMS warm-up makes N = 5 UNet calls for 4 inference steps.
    assert _scales_seen(sd15, nets, Control(image=_square(), scale=0.8, start=0.5)) == [0.0, 0.0, 0.0, 0.8, 0.8]
    assert _scales_seen(sd15, nets, Control(image=_square(), scale=0.8, end=0.5)) == [0.8, 0.8, 0.0, 0.0, 0.0]
    late = _controlled(sd15, nets, [Control(image=_square(), start=0.5)])
    full = _controlled(sd15, nets, [Control(image=_square())])
    assert np.abs(late - full).mean() > 1e-3 and np.abs(late - _run(sd15)).mean() > 1e-4
    # a window shorter than one step never switches the net on: the image equals no control
    never = _controlled(sd15, nets, [Control(image=_square(), start=0.0, end=0.15)])
    np.testing.assert_allclose(never, _run(sd15), atol=1e-6)


def test_img2img_and_inpaint_pipelines_take_control_image(sd15, nets):
    init = Image.fromarray((np.indices((SIZE, SIZE)).sum(0) * 2 % 256).astype(np.uint8)).convert("RGB")
    mask = Image.new("L", (SIZE, SIZE))
    ImageDraw.Draw(mask).rectangle([0, 0, 31, 63], fill=255)
    for task, extra, cls in (
        ("image_to_image", {"image": init, "strength": 0.75}, "StableDiffusionControlNetImg2ImgPipeline"),
        ("inpaint", {"image": init, "mask_image": mask, "strength": 1.0}, "StableDiffusionControlNetInpaintPipeline"),
    ):
        assert type(controlnet_pipeline(sd15, [nets[0]], task)).__name__ == cls
        on = _controlled(sd15, nets, [Control(image=_square())], task=task, **extra)
        off = _controlled(sd15, nets, [Control(image=_square(), scale=0.0)], task=task, **extra)
        assert on.shape == (SIZE, SIZE, 3) and np.abs(on - off).mean() > 1e-3


def test_sdxl_controlnet(tmp_path):
    from diffusers import StableDiffusionXLPipeline

    sdxl_dir = build_tiny_sdxl(tmp_path / "sdxl", seed=0)
    net = load_controlnet(build_tiny_controlnet(tmp_path / "net", unet_source=sdxl_dir, seed=3), device="cpu",
                          dtype=torch.float32)
    pipe = StableDiffusionXLPipeline.from_pretrained(sdxl_dir)
    pipe.set_progress_bar_config(disable=True)
    img2img = controlnet_pipeline(pipe, [net], "image_to_image")
    assert type(img2img).__name__ == "StableDiffusionXLControlNetImg2ImgPipeline"
    base = _run(pipe)
    on = _controlled(pipe, [net], [Control(image=_square(), model="xl")], names=("xl",))
    off = _controlled(pipe, [net], [Control(image=_square(), model="xl", scale=0.0)], names=("xl",))
    assert np.abs(on - base).mean() > 5e-3
    np.testing.assert_allclose(off, base, atol=1e-6)


def test_controlnet_pipeline_keeps_the_base_dtype(sd15_dir, net_dirs):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(sd15_dir, dtype=torch.bfloat16)
    net = load_controlnet(net_dirs[0], device="cpu", dtype=torch.bfloat16)
    controlled = controlnet_pipeline(pipe, [net], "text_to_image")
    assert pipe.unet.dtype == torch.bfloat16 and controlled.unet.dtype == torch.bfloat16  # from_pipe would cast to fp32
    with pytest.raises(UsageError, match="non-empty list"):
        controlnet_pipeline(pipe, [], "text_to_image")


# 3. loading


def test_saved_and_reloaded_controlnet_gives_identical_output(sd15, nets, tmp_path):
    control = [Control(image=_square(), preprocess="canny")]
    before = _controlled(sd15, nets, control)
    nets[0].save_pretrained(tmp_path / "copy")
    reloaded = load_controlnet(tmp_path / "copy", device="cpu", dtype=torch.float32)
    assert (_controlled(sd15, [reloaded], control) == before).all()
    single = load_controlnet(tmp_path / "copy" / "diffusion_pytorch_model.safetensors", device="cpu",
                             dtype=torch.float32)
    assert (_controlled(sd15, [single], control) == before).all()


def test_pickle_weights_are_refused_unless_allowed(nets, tmp_path):
    nets[0].save_pretrained(tmp_path / "pickled", safe_serialization=False)
    with pytest.raises(UnsafeSourceError, match="pickle") as info:
        load_controlnet(tmp_path / "pickled", device="cpu", dtype=torch.float32)
    assert "allow_pickle=True" in str(info.value)
    with pytest.raises(UnsafeSourceError):
        load_controlnet(tmp_path / "pickled" / "diffusion_pytorch_model.bin", device="cpu", dtype=torch.float32)
    allowed = load_controlnet(tmp_path / "pickled", device="cpu", dtype=torch.float32, allow_pickle=True)
    assert torch.equal(allowed.controlnet_mid_block.weight, nets[0].controlnet_mid_block.weight)


def test_missing_source_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_controlnet(tmp_path / "nowhere", device="cpu", dtype=torch.float32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError):
        load_controlnet(tmp_path / "empty", device="cpu", dtype=torch.float32)


# 4. through ImageGenerator (the public path)


def test_image_generator_uses_controlnets(sd15_dir, net_dirs):
    from mmkit.generate import ImageGenerator

    gen = ImageGenerator.from_pretrained(sd15_dir, progress=False,
                                         controlnets={"edges": net_dirs[0], "stripes": net_dirs[1]})
    assert gen.controlnets == ["edges", "stripes"]

    def make(control=None):
        result = gen.text_to_image("a red chair", steps=STEPS, seed=0, width=SIZE, height=SIZE, control=control)
        return np.asarray(result.image, dtype=np.float32), result

    base, _ = make()
    edges = Control(image=_square(), model="edges", preprocess="canny")
    one, result = make([edges])
    off, _ = make([Control(image=_square(), model="edges", preprocess="canny", scale=0.0)])
    both, _ = make([edges, Control(image=_stripes(), model=1)])
    assert np.abs(one - base).mean() > 0.5  # uint8 units
    assert np.abs(off - base).max() <= 1.0
    assert np.abs(both - one).mean() > 0.5
    assert [(c.model, c.scale, c.preprocess) for c in result.params.controls] == [("edges", 1.0, "canny")]
    with pytest.raises(UsageError, match="No ControlNet named"):
        make([Control(image=_square(), model="depth")])
