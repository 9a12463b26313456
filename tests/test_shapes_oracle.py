"""The pixel oracle: accuracy on clean and degraded renders, refusal to guess, judging helpers."""
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmkit.exceptions import UsageError
from mmkit.shapes import (BACKGROUNDS, SHAPES, UNKNOWN, colour_name, count, detect, judge_caption,
                          label_components, match_boxes, perturb, position_word, render, sample_scene,
                          scene_from_prompt)
from mmkit.understand.answer import Box
from mmkit.understand.grounding import iou


def _exactly_right(detections, scene) -> bool:
    return len(detections) == len(scene.shapes) and all(
        d.kind == s.kind and d.colour == s.colour and iou(d.box, s.box) >= 0.9
        for d, s in zip(detections, scene.shapes))


def _accuracy(degrade: bool, n: int = 500, size: int = 64) -> tuple[float, float]:
    rng = np.random.default_rng(2024)
    right, seconds = 0, 0.0
    for _ in range(n):
        scene = sample_scene(rng, kinds=tuple(SHAPES), backgrounds=tuple(BACKGROUNDS), size=size)
        image = render(scene)
        if degrade:
            image = perturb(image, rng)
        start = time.perf_counter()
        found = detect(image)
        seconds += time.perf_counter() - start
        right += _exactly_right(found, scene)
    return right / n, 1000 * seconds / n


@pytest.mark.slow
@pytest.mark.parametrize("degrade", [False, True], ids=["clean", "blur+noise+jitter"])
def test_oracle_accuracy_on_500_images(degrade):
    accuracy, ms = _accuracy(degrade)
    print(f"\noracle {'perturbed' if degrade else 'clean'} 64px: exactly right on {accuracy:.1%} of 500 "
          f"images (all 5 classes, 6 colours, 4 backgrounds); {ms:.2f} ms/image")
    assert accuracy >= 0.99


@pytest.mark.parametrize("size", [32, 96, 128])
def test_oracle_other_sizes_clean(size):
    accuracy, ms = _accuracy(False, n=60, size=size)
    print(f"\noracle clean {size}px: {accuracy:.1%} of 60, {ms:.2f} ms/image")
    assert accuracy >= 0.97


def test_boxes_are_subpixel_accurate_on_clean_renders():
    scene = scene_from_prompt("a red circle on the left, a green triangle in the centre and a blue star on the right")
    for d, s in zip(detect(render(scene)), scene.shapes):
        assert (d.kind, d.colour, d.position) == (s.kind, s.colour, s.position)
        assert np.allclose(d.box.as_tuple(), s.box.as_tuple(), atol=0.25)  # stars: thin tips, 0.2 px
        assert d.box.label == f"{s.colour} {s.kind}"


def test_never_guesses():
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([4, 4, 43, 17], fill=(40, 90, 230))  # a 40x14 blue rectangle: no class fits
    draw.ellipse([10, 30, 29, 49], fill=(128, 128, 128))  # a grey circle: no palette colour
    found = detect(image)
    assert [(d.colour, d.kind) for d in found] == [("blue", UNKNOWN), (UNKNOWN, "circle")]
    assert found[0].box.as_tuple() == (4.0, 4.0, 44.0, 18.0)  # unknown class: the mask box
    assert colour_name((240, 90, 25)) == UNKNOWN  # hue 16 degrees: between red and orange
    assert colour_name((200, 35, 35)) == "red" and colour_name((20, 20, 20)) == UNKNOWN


def test_specks_ignored_and_empty_image():
    image = Image.new("RGB", (64, 64), "white")
    image.putpixel((30, 30), (230, 40, 40))
    assert detect(image) == ()
    assert count(image) == 0


def test_label_components_connectivity():
    mask = np.zeros((6, 6), dtype=bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal: one 8-connected component
    mask[0, 4:6] = mask[1:4, 5] = True  # an L
    mask[5, 0:3] = True
    labels, n = label_components(mask)
    assert n == 3
    assert labels[0, 0] == labels[1, 1] != labels[0, 4]
    assert labels[3, 5] == labels[0, 4] and labels[5, 2] not in (0, labels[0, 0], labels[0, 4])
    u = np.zeros((5, 5), dtype=bool)
    u[0:4, 0] = u[0:4, 4] = u[4, :] = True  # a U: the arms join only at the bottom
    assert label_components(u)[1] == 1


def test_judge_caption_reports_what_is_wrong():
    prompt = "a red circle on the left and a blue square on the right"
    image = render(scene_from_prompt(prompt))
    assert judge_caption(image, prompt).passed
    assert judge_caption(image, "左边一个红色的圆，右边一个蓝色的正方形").passed
    wrong_colour = judge_caption(image, "a red circle on the left and a green square on the right")
    assert not wrong_colour.passed
    square = wrong_colour.matches[1]
    assert (square.colour_ok, square.kind_ok, square.position_ok) == (False, True, True)
    swapped = judge_caption(image, "a red circle on the right and a blue square on the left")
    assert [m.position_ok for m in swapped.matches] == [False, False]
    assert all(m.colour_ok and m.kind_ok for m in swapped.matches)
    partial = judge_caption(image, "a red circle")
    assert not partial.passed and len(partial.extra) == 1
    assert judge_caption(image, "a red circle", exact=False).passed
    assert partial.reasons == ("unexpected blue square right",)


def test_count():
    image = render(scene_from_prompt("a red circle at the top left, a red square in the centre and a green circle on the right"))
    assert count(image) == 3 and count(image, colour="red") == 2
    assert count(image, kind="circle") == 2 and count(image, colour="red", kind="circle") == 1
    with pytest.raises(UsageError):
        count(image, colour="magenta")


def test_iou_and_match_boxes_values():
    a, b = Box(x1=0, y1=0, x2=10, y2=10), Box(x1=5, y1=0, x2=15, y2=10)
    assert iou(a, a) == 1.0 and iou(a, b) == pytest.approx(50 / 150)
    assert iou(a, Box(x1=20, y1=20, x2=30, y2=30)) == 0.0
    c = Box(x1=1, y1=0, x2=11, y2=10)  # IoU with a: 90 / 110
    result = match_boxes([b, c], [a], iou_threshold=0.5)
    assert result.pairs == ((1, 0, pytest.approx(90 / 110)),)
    assert result.unmatched_pred == (0,) and result.unmatched_truth == ()
    assert result.precision == 0.5 and result.recall == 1.0
    assert match_boxes([b], [a], 0.3).recall == 1.0 and match_boxes([b], [a], 0.5).recall == 0.0
    labelled = match_boxes([c.model_copy(update={"label": "x"})], [a.model_copy(update={"label": "y"})], same_label=True)
    assert labelled.pairs == () and match_boxes([], []).precision == 1.0


def test_position_word():
    assert position_word(Box(x1=0, y1=0, x2=10, y2=10), 64) == "top left"
    assert position_word(Box(x1=27, y1=27, x2=37, y2=37), 64) == "centre"
    assert position_word(Box(x1=50, y1=27, x2=60, y2=37), (64, 64)) == "right"
    assert position_word(Box(x1=27, y1=100, x2=37, y2=120), (64, 128)) == "bottom"


def test_speed_report():
    rng = np.random.default_rng(1)
    images = [perturb(render(sample_scene(rng, n_shapes=3)), rng) for _ in range(50)]
    start = time.perf_counter()
    found = [detect(image) for image in images]
    ms = 1000 * (time.perf_counter() - start) / len(images)
    print(f"\noracle speed: {ms:.2f} ms per 64px image with 3 shapes")
    assert sum(len(f) for f in found) == 150
