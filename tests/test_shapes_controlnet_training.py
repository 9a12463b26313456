"""The shapes-world Canny ControlNet: the layout metric on hand-made boxes, the edge maps it trains on (the SDK's
own), and a few training steps on a tiny base that save a net the SDK loads and runs.

Quality bars are judged on trained weights (`python -m mmkit.shapes.training.train_controlnet`); the slow
tests only prove the training path, the saved layout and the evaluation plumbing.
"""
import json

import numpy as np
import pytest
import torch

from mmkit.exceptions import ModelLoadError, UsageError
from mmkit.generate.controlnet import Control
from mmkit.generate.preprocessors import prepare_control_image
from mmkit.shapes.training.evaluate_controlnet import layout_scenes, layout_score, score_layouts
from mmkit.shapes.training.train_controlnet import (
    ControlNetConfig, build_controlnet, edge_maps, load_base, train_controlnet,
)
from mmkit.understand.answer import Box


def _box(x1, y1, x2, y2):
    return Box(x1=x1, y1=y1, x2=x2, y2=y2)


# 1. the layout metric


def test_layout_score_known_ious():
    layout = [_box(0, 0, 10, 10), _box(20, 20, 30, 30)]
    found = [_box(20, 20, 30, 28), _box(0, 0, 10, 10)]  # IoU 0.8 and 1.0, listed in the other order
    score = layout_score(layout, found)
    assert score.followed and score.ious == pytest.approx((1.0, 0.8)) and score.matched == (1, 0)
    assert score.extra == 0

    shifted = layout_score([_box(0, 0, 10, 10)], [_box(5, 0, 15, 10)])  # 50 / 150
    assert not shifted.followed and shifted.ious == pytest.approx((1 / 3,))
    assert layout_score([_box(0, 0, 10, 10)], [_box(0, 0, 10, 7)]).ious == pytest.approx((0.7,))
    assert layout_score([_box(0, 0, 10, 10)], [_box(0, 0, 10, 7)]).followed  # the bar is inclusive


def test_layout_score_is_one_to_one_and_counts_extras():
    # one detection covering two layout boxes matches only one of them
    one_for_two = layout_score([_box(0, 0, 10, 10), _box(0, 0, 10, 9)], [_box(0, 0, 10, 10)])
    assert one_for_two.ious == pytest.approx((1.0, 0.0)) and one_for_two.matched == (0, None)
    assert not one_for_two.followed
    # greedy by IoU: the 0.9 pair is taken first, then the next best for the other box
    layout = [_box(0, 0, 10, 10), _box(0, 0, 10, 8)]
    found = [_box(0, 0, 10, 9), _box(0, 0, 10, 7)]  # IoUs: [0.9, 0.7] and [8/9, 7/8]
    score = layout_score(layout, found)
    assert score.matched == (0, 1) and score.ious == pytest.approx((0.9, 7 / 8))
    far = layout_score([_box(0, 0, 10, 10)], [_box(0, 0, 10, 10), _box(40, 40, 50, 50)])
    assert far.followed and far.extra == 1
    assert layout_score([_box(0, 0, 10, 10)], []).ious == (0.0,)
    with pytest.raises(UsageError, match="threshold"):
        layout_score([_box(0, 0, 10, 10)], [], threshold=0.0)


def test_score_layouts_on_the_renders_themselves():
    cases = layout_scenes(6, seed=3)
    assert all(len(scene.shapes) >= 1 for scene, _, _ in cases)
    scores = score_layouts([img for _, _, img in cases], [scene for scene, _, _ in cases])
    assert scores["success"] == 1.0 and scores["exact"] == 1.0 and scores["attributes"] == 1.0
    assert scores["mean_iou"] > 0.99
    blank = [img.point(lambda _: 255) for _, _, img in cases]  # white images: nothing found
    assert score_layouts(blank, [scene for scene, _, _ in cases]) == {
        "success": 0.0, "mean_iou": 0.0, "exact": 0.0, "attributes": 0.0}


# 2. the training conditions are the SDK's maps


def test_edge_maps_equal_the_sdk_canny_control():
    images = [img for _, _, img in layout_scenes(4, seed=5)]
    maps = edge_maps(images)
    assert maps.shape == (4, 1, 64, 64) and maps.dtype == torch.uint8
    for img, edge in zip(images, maps):
        sdk = prepare_control_image(img, "canny", width=64, height=64,
                                    **Control(image=img, preprocess="canny").preprocessor_options())
        assert np.array_equal(np.asarray(sdk)[:, :, 0], edge[0].numpy())
    assert set(np.unique(maps.numpy())) == {0, 255}


def test_bad_configs_and_missing_base_are_typed_errors(tmp_path):
    with pytest.raises(UsageError, match="steps"):
        ControlNetConfig(steps=0)
    with pytest.raises(UsageError, match="embed_channels"):
        ControlNetConfig(embed_channels=(16,))
    with pytest.raises(ModelLoadError, match="No diffusers pipeline"):
        load_base(tmp_path / "nowhere")


# 3. training on a tiny base, loading through the SDK


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mmkit.shapes.training.train_generator import GeneratorConfig, train_generator
    from mmkit.shapes.training.vae import VaeConfig

    root = tmp_path_factory.mktemp("controlnet")
    quiet = lambda *a, **k: None  # noqa: E731
    base_config = GeneratorConfig(steps=3, batch=2, pool=8, eval_every=10**9, polish_steps=1,
                                  vae=VaeConfig(steps=2, batch=2))
    train_generator(base_config, out=root / "shapes-sd", log=quiet)
    config = ControlNetConfig(steps=3, batch=2, pool=4, eval_every=2, quick_eval_n=2, log_every=1)
    report = train_controlnet(config, base=root / "shapes-sd", out=root / "net", log=quiet)
    return root / "shapes-sd", root / "net", report


@pytest.mark.slow
def test_a_few_steps_save_an_fp16_controlnet(trained):
    from safetensors import safe_open

    base, net, report = trained
    config = json.loads((net / "config.json").read_text())
    assert config["_class_name"] == "ControlNetModel"
    assert config["conditioning_embedding_out_channels"] == [16, 32, 64]
    unet = json.loads((base / "unet" / "config.json").read_text())
    assert config["block_out_channels"] == unet["block_out_channels"]
    assert sorted(p.name for p in net.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors",
                                                     "training.json"]
    with safe_open(str(net / "diffusion_pytorch_model.safetensors"), "pt") as handle:
        assert {str(handle.get_slice(k).get_dtype()) for k in handle.keys()} == {"F16"}
    saved = json.loads((net / "training.json").read_text())
    assert [h["step"] for h in saved["history"]] == [2, 3] == [h["step"] for h in report["history"]]
    assert all(0.0 <= h["success"] <= 1.0 for h in saved["history"])
    assert saved["seconds"]["seconds_per_step"] > 0


@pytest.mark.slow
def test_the_base_stays_frozen_and_the_embedding_matches_the_vae(trained):
    base, _, _ = trained
    pipe = load_base(base)
    assert pipe.vae_scale_factor == 4 and pipe.unet.dtype == torch.float32
    assert not any(p.requires_grad for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters())
    with pytest.raises(UsageError, match="downsample as much as the VAE"):
        build_controlnet(pipe.unet, ControlNetConfig(embed_channels=(16, 32, 96, 256)), pipe.vae_scale_factor)


@pytest.mark.slow
def test_the_sdk_runs_the_trained_net_deterministically(trained):
    from mmkit.generate import ImageGenerator

    base, net, _ = trained
    gen = ImageGenerator.from_pretrained(base, progress=False)
    assert gen.add_controlnet(net, name="canny") == "canny"
    _, text, layout = layout_scenes(1, seed=0)[0]

    def make():
        return gen.text_to_image(text, steps=2, seed=1, control=[Control(image=layout, model="canny",
                                                                        preprocess="canny")])

    first, again = make(), make()
    assert first.image.size == (64, 64)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert [(c.model, c.preprocess) for c in first.params.controls] == [("canny", "canny")]


@pytest.mark.slow
def test_evaluate_controlnet_returns_rates(trained, capsys):
    from mmkit.shapes.training.evaluate_controlnet import evaluate_controlnet

    base, net, _ = trained
    result = evaluate_controlnet(base, net, n=2, steps=2)
    for key in ("success", "mean_iou", "exact", "attributes"):
        assert 0.0 <= result[key] <= 1.0 and 0.0 <= result["no_control_" + key] <= 1.0
    assert result["n"] == 2 and "no control" in capsys.readouterr().out
    with pytest.raises(UsageError, match="positive int"):
        evaluate_controlnet(base, net, n=0)


@pytest.mark.slow
def test_the_script_writes_metrics_and_a_model_card(trained, tmp_path, capsys):
    from mmkit.shapes.training.train_controlnet import main

    base, _, _ = trained
    out = tmp_path / "cli-net"
    main(["--base", str(base), "--out", str(out), "--steps", "1", "--batch", "2", "--pool", "2",
          "--eval-every", "0", "--eval-n", "1"])
    report = json.loads((out / "training.json").read_text())
    assert report["final"]["n"] == 1 and 0.0 <= report["final"]["success"] <= 1.0
    assert {"load", "encode_pool", "train", "seconds_per_step", "final_eval"} <= set(report["seconds"])
    card = (out / "README.md").read_text()
    assert "train_controlnet --base" in card and "| success |" in card and "no control" in card
    assert '"final"' in capsys.readouterr().out
