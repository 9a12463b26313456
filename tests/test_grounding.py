"""Raw model coordinates -> pixels on the original image, with values computed by hand."""

import pytest

from mmkit.exceptions import UsageError
from mmkit.understand.answer import Box
from mmkit.understand.grounding import (
    GroundingResult,
    box_center_inside,
    boxes_from_text,
    convention_for,
    from_relative,
    iou,
    to_original_box,
    to_original_point,
    to_relative,
)


@pytest.mark.parametrize(
    "family, convention",
    [("qwen2_5_vl", "resized_pixels"), ("qwen2_vl", "relative_1000"), ("qwen3_vl", "relative_1000"),
     ("qwen3_vl_moe", "relative_1000")],
)
def test_convention_for_known_families(family, convention):
    assert convention_for(family) == convention


def test_convention_for_unknown_family_says_what_to_pass():
    with pytest.raises(UsageError) as info:
        convention_for("llava")
    assert info.value.received == "llava"
    assert "qwen2_5_vl" in info.value.fix


def _xyxy(box: Box) -> tuple[float, float, float, float]:
    return box.as_tuple()


def test_qwen25_resized_pixels_to_original_exact():
    # 1000x500 original, model input 644x336: x scales by 1000/644, y by 500/336.
    box = to_original_box((322, 168, 644, 336), convention="resized_pixels", original_size=(1000, 500),
                          input_size=(644, 336), label="car")
    assert _xyxy(box) == (500.0, 250.0, 1000.0, 500.0)
    assert (box.label, box.image_index, box.raw, box.raw_convention) == ("car", 0, (322.0, 168.0, 644.0, 336.0),
                                                                       "resized_pixels")


def test_qwen25_resized_pixels_to_original_fractional():
    box = to_original_box((100, 50, 300, 200), convention="resized_pixels", original_size=(1000, 500),
                          input_size=(644, 336))
    # 100*1000/644, 50*500/336, 300*1000/644, 200*500/336
    assert _xyxy(box) == pytest.approx((155.2795031, 74.4047619, 465.8385093, 297.6190476))


def test_qwen3_relative_1000_to_original():
    box = to_original_box((250, 100, 750, 900), convention="relative_1000", original_size=(640, 480))
    assert _xyxy(box) == (160.0, 48.0, 480.0, 432.0)


def test_reversed_corners_are_swapped_and_raw_kept_as_written():
    box = to_original_box((750, 900, 250, 100), convention="relative_1000", original_size=(640, 480))
    assert _xyxy(box) == (160.0, 48.0, 480.0, 432.0)
    assert box.raw == (750.0, 900.0, 250.0, 100.0)


def test_only_one_axis_reversed():
    box = to_original_box((10, 40, 30, 20), convention="original_pixels", original_size=(100, 100))
    assert _xyxy(box) == (10.0, 20.0, 30.0, 40.0)


def test_out_of_range_values_are_clamped_to_the_image():
    box = to_original_box((-10, 0, 1100, 1050), convention="relative_1000", original_size=(200, 100))
    assert _xyxy(box) == (0.0, 0.0, 200.0, 100.0)
    box = to_original_box((600, 300, 700, 400), convention="resized_pixels", original_size=(1000, 500),
                          input_size=(644, 336))
    assert _xyxy(box) == pytest.approx((931.6770186, 446.4285714, 1000.0, 500.0))


def test_degenerate_box_is_kept_with_zero_area():
    box = to_original_box((1200, 100, 1300, 200), convention="relative_1000", original_size=(100, 100))
    assert _xyxy(box) == (100.0, 10.0, 100.0, 20.0)
    assert box.area == 0.0


def test_relative_1_and_original_pixels():
    assert _xyxy(to_original_box((0.25, 0.5, 0.75, 1.0), convention="relative_1", original_size=(200, 100))) == (
        50.0, 50.0, 150.0, 100.0)
    assert _xyxy(to_original_box((3, 4, 5, 6), convention="original_pixels", original_size=(10, 10))) == (
        3.0, 4.0, 5.0, 6.0)


def test_point_conversion_and_clamp():
    point = to_original_point((322, 168), convention="resized_pixels", original_size=(1000, 500),
                              input_size=(644, 336), label="nose", image_index=2)
    assert (point.x, point.y, point.label, point.image_index) == (500.0, 250.0, "nose", 2)
    assert point.raw == (322.0, 168.0) and point.raw_convention == "resized_pixels"
    clamped = to_original_point((1200, -5), convention="relative_1000", original_size=(640, 480))
    assert (clamped.x, clamped.y) == (640.0, 0.0)


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"convention": "resized_pixels", "original_size": (100, 100)}, None),
        ({"convention": "relative_1000", "original_size": (0, 100)}, (0, 100)),
        ({"convention": "relative_1000", "original_size": "100x100"}, "100x100"),
        ({"convention": "resized_pixels", "original_size": (100, 100), "input_size": (28,)}, (28,)),
        ({"convention": "pixels", "original_size": (100, 100)}, "pixels"),
    ],
)
def test_bad_arguments_raise_usage_error(kwargs, received):
    with pytest.raises(UsageError) as info:
        to_original_box((1, 2, 3, 4), **kwargs)
    assert info.value.received == received
    assert info.value.fix


@pytest.mark.parametrize("raw", [(1, 2, 3), ("a", 2, 3, 4), (float("nan"), 1, 2, 3), None])
def test_bad_raw_coordinates_raise_usage_error(raw):
    with pytest.raises(UsageError):
        to_original_box(raw, convention="relative_1000", original_size=(10, 10))


# ----------------------------------------------------------------------------------------------------------
# boxes_from_text
# ----------------------------------------------------------------------------------------------------------

QWEN25_ANSWER = """```json
[
  {"bbox_2d": [322, 168, 644, 336], "label": "car"},
  {"point_2d": [161, 84], "label": "wheel"}
]
```"""


def test_boxes_from_text_qwen25():
    result = boxes_from_text(QWEN25_ANSWER, family="qwen2_5_vl", original_sizes=[(1000, 500)],
                             input_sizes=[(644, 336)])
    assert isinstance(result, GroundingResult)
    boxes, points, truncated = result
    assert [(_xyxy(b), b.label) for b in boxes] == [((500.0, 250.0, 1000.0, 500.0), "car")]
    assert [(p.x, p.y, p.label) for p in points] == [(250.0, 125.0, "wheel")]
    assert truncated is False


def test_boxes_from_text_qwen3_needs_no_input_size():
    boxes, points, truncated = boxes_from_text('[{"bbox_2d": [250, 100, 750, 900], "label": "cat"}]',
                                               family="qwen3_vl", original_sizes=[(640, 480)])
    assert [_xyxy(b) for b in boxes] == [(160.0, 48.0, 480.0, 432.0)]
    assert boxes[0].raw_convention == "relative_1000"
    assert points == [] and truncated is False


def test_boxes_from_text_uses_image_index_and_drops_unknown_images():
    text = ('[{"bbox_2d": [0, 0, 500, 500], "label": "a"}, {"bbox_2d": [0, 0, 500, 500], "label": "b", '
            '"image_index": 1}, {"bbox_2d": [0, 0, 500, 500], "label": "c", "image_index": 5}]')
    boxes, _, _ = boxes_from_text(text, family="qwen3_vl", original_sizes=[(100, 100), (400, 200)])
    assert [(b.label, b.image_index, _xyxy(b)) for b in boxes] == [
        ("a", 0, (0.0, 0.0, 50.0, 50.0)),
        ("b", 1, (0.0, 0.0, 200.0, 100.0)),
    ]


def test_boxes_from_text_reports_truncation():
    text = '[{"bbox_2d": [100, 100, 200, 200], "label": "a"}, {"bbox_2d": [300, 3'
    boxes, _, truncated = boxes_from_text(text, family="qwen2_vl", original_sizes=[(1000, 1000)])
    assert [_xyxy(b) for b in boxes] == [(100.0, 100.0, 200.0, 200.0)]
    assert truncated is True


def test_boxes_from_text_bare_lists_opt_in():
    text = "The cat is at [250, 100, 750, 900]."
    assert boxes_from_text(text, family="qwen3_vl", original_sizes=[(640, 480)]).boxes == []
    boxes = boxes_from_text(text, family="qwen3_vl", original_sizes=[(640, 480)], bare_lists=True).boxes
    assert [_xyxy(b) for b in boxes] == [(160.0, 48.0, 480.0, 432.0)]


def test_boxes_from_text_garbage_is_empty():
    assert boxes_from_text("No objects here.", family="qwen3_vl", original_sizes=[(10, 10)]) == ([], [], False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"family": "qwen2_5_vl", "original_sizes": [(100, 100)]},
        {"family": "qwen2_5_vl", "original_sizes": [(100, 100), (50, 50)], "input_sizes": [(28, 28)]},
        {"family": "qwen3_vl", "original_sizes": []},
        {"family": "gpt", "original_sizes": [(100, 100)]},
    ],
)
def test_boxes_from_text_bad_arguments(kwargs):
    with pytest.raises(UsageError):
        boxes_from_text("[1, 2, 3, 4]", **kwargs)


# ----------------------------------------------------------------------------------------------------------
# relative coordinates, iou, containment
# ----------------------------------------------------------------------------------------------------------


def test_to_relative_values():
    box = Box(x1=160, y1=48, x2=480, y2=432)
    assert to_relative(box, (640, 480)) == (0.25, 0.1, 0.75, 0.9)
    assert to_relative(box, (640, 480), scale=1000.0) == (250.0, 100.0, 750.0, 900.0)


@pytest.mark.parametrize("scale, convention", [(1.0, "relative_1"), (1000.0, "relative_1000")])
def test_relative_round_trip(scale, convention):
    box = Box(x1=12.5, y1=7.25, x2=301.0, y2=199.5, label="x")
    back = from_relative(to_relative(box, (320, 200), scale=scale), (320, 200), scale=scale, label="x")
    assert _xyxy(back) == pytest.approx(_xyxy(box))
    assert back.label == "x" and back.raw_convention == convention


def test_relative_rejects_other_scales():
    with pytest.raises(UsageError):
        to_relative(Box(x1=0, y1=0, x2=1, y2=1), (10, 10), scale=100.0)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        from_relative((0, 0, 1, 1), (10, 10), scale=2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
        ((0, 0, 10, 10), (0, 0, 5, 10), 0.5),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
        ((0, 0, 4, 4), (2, 2, 6, 6), 4 / 28),
        ((5, 5, 5, 5), (5, 5, 5, 5), 0.0),
    ],
    ids=["identical", "disjoint", "half-overlap", "contained-half", "touching", "corner", "both-degenerate"],
)
def test_iou(a, b, expected):
    box_a = Box(x1=a[0], y1=a[1], x2=a[2], y2=a[3])
    box_b = Box(x1=b[0], y1=b[1], x2=b[2], y2=b[3])
    assert iou(box_a, box_b) == pytest.approx(expected)
    assert iou(box_b, box_a) == pytest.approx(expected)


def test_box_center_inside():
    big = Box(x1=0, y1=0, x2=100, y2=100)
    assert box_center_inside(Box(x1=40, y1=40, x2=60, y2=60), big) is True
    assert box_center_inside(Box(x1=90, y1=90, x2=130, y2=130), big) is False  # center (110, 110)
    assert box_center_inside(Box(x1=80, y1=80, x2=120, y2=120), big) is True  # center on the edge
    assert box_center_inside(big, Box(x1=40, y1=40, x2=60, y2=60)) is True
