"""draw_grounding paints boxes, points and labels on a copy and leaves the input alone."""

import pytest
from PIL import Image, ImageFont

from mmkit.exceptions import UsageError
from mmkit.understand.answer import Box, Point
from mmkit.understand.draw import PALETTE, draw_grounding

WHITE = (255, 255, 255)


def _white(size=(200, 200), mode="RGB"):
    return Image.new(mode, size, "white")


def test_box_edges_change_colour_interior_does_not():
    image = _white()
    out = draw_grounding(image, [Box(x1=20, y1=40, x2=120, y2=160)])
    colour = PALETTE[0]
    assert out.getpixel((20, 100)) == colour  # left edge
    assert out.getpixel((119, 100)) == colour  # right edge: last pixel column inside the box
    assert out.getpixel((70, 40)) == colour  # top edge
    assert out.getpixel((70, 159)) == colour  # bottom edge
    assert out.getpixel((70, 100)) == WHITE  # interior
    assert out.getpixel((121, 100)) == WHITE  # outside


def test_input_image_is_not_modified_and_a_new_image_is_returned():
    image = _white()
    before = image.tobytes()
    out = draw_grounding(image, [Box(x1=20, y1=40, x2=120, y2=160, label="cat")], [Point(x=150, y=50, label="eye")])
    assert image.tobytes() == before
    assert out is not image
    assert out.tobytes() != before


def test_non_rgb_input_gives_rgb_copy():
    image = _white(mode="L")
    out = draw_grounding(image, [Box(x1=10, y1=10, x2=50, y2=50)])
    assert out.mode == "RGB" and image.mode == "L"
    assert out.getpixel((10, 30)) == PALETTE[0]
    assert image.getpixel((10, 30)) == 255


def test_default_line_width_scales_with_image_size():
    image = _white((1000, 1000))
    out = draw_grounding(image, [Box(x1=100, y1=100, x2=900, y2=900)])  # width = 1000 / 200 = 5
    assert [out.getpixel((100 + i, 500)) for i in range(6)] == [PALETTE[0]] * 5 + [WHITE]
    thin = draw_grounding(image, [Box(x1=100, y1=100, x2=900, y2=900)], width=1)
    assert [thin.getpixel((100 + i, 500)) for i in range(2)] == [PALETTE[0], WHITE]
    small = draw_grounding(_white((100, 100)), [Box(x1=10, y1=10, x2=90, y2=90)])  # at least 2
    assert [small.getpixel((10 + i, 50)) for i in range(3)] == [PALETTE[0]] * 2 + [WHITE]


def test_each_label_gets_its_own_colour_and_repeats_share_it():
    boxes = [Box(x1=10, y1=30, x2=60, y2=90, label="cat"), Box(x1=100, y1=30, x2=150, y2=90, label="dog"),
             Box(x1=10, y1=120, x2=60, y2=190, label="cat")]
    out = draw_grounding(_white(), boxes)
    assert out.getpixel((10, 60)) == PALETTE[0]
    assert out.getpixel((100, 60)) == PALETTE[1]
    assert out.getpixel((10, 160)) == PALETTE[0]


def test_label_has_a_filled_background_above_the_box():
    out = draw_grounding(_white(), [Box(x1=20, y1=60, x2=120, y2=160, label="cat")])
    assert out.getpixel((20, 59)) == PALETTE[0]  # bottom-left corner of the label background
    unlabelled = draw_grounding(_white(), [Box(x1=20, y1=60, x2=120, y2=160)])
    assert unlabelled.getpixel((20, 59)) == WHITE


def test_label_of_a_box_at_the_top_edge_goes_inside():
    out = draw_grounding(_white(), [Box(x1=0, y1=0, x2=200, y2=200, label="everything")])
    assert out.getpixel((0, 0)) == PALETTE[0]
    assert out.getpixel((5, 8)) != WHITE  # label background (or its text) inside the box, below the top edge


def test_point_is_drawn_as_a_filled_dot():
    out = draw_grounding(_white(), points=[Point(x=100, y=100, label="nose")])
    assert out.getpixel((100, 100)) == PALETTE[0]
    assert out.getpixel((60, 140)) == WHITE


def test_box_touching_the_image_border_is_drawn_inside_it():
    out = draw_grounding(_white((100, 50)), [Box(x1=0, y1=0, x2=100, y2=50)])
    assert out.getpixel((99, 25)) == PALETTE[0]
    assert out.getpixel((50, 49)) == PALETTE[0]


def test_custom_font_is_used():
    font = ImageFont.load_default(size=30)
    big = draw_grounding(_white(), [Box(x1=20, y1=100, x2=120, y2=160, label="cat")], font=font)
    small = draw_grounding(_white(), [Box(x1=20, y1=100, x2=120, y2=160, label="cat")])
    # A 30 px label background reaches higher above the box than the default ~10 px one.
    assert big.getpixel((21, 78)) != WHITE
    assert small.getpixel((21, 78)) == WHITE


def test_not_an_image_raises_usage_error():
    with pytest.raises(UsageError):
        draw_grounding("photo.jpg", [])  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        draw_grounding(_white(), [], width=0)
