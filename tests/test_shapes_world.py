"""The shapes world: determinism, scene invariants, bilingual language, video timing, splits."""
import numpy as np
import pytest

from mmkit.exceptions import UsageError
from mmkit.shapes import (BASE_KINDS, COLOURS, NEW_KINDS, SHAPES, caption, frame_scene,
                          grounding_targets, layout_scene, make_dataset, parse_prompt, questions, render,
                          render_video, sample_scene, sample_video, sample_yes_no, scene_from_prompt, split_of,
                          temporal_queries)
from mmkit.shapes.render import coverage, shape_stats
from mmkit.understand.grounding import iou


def test_same_seed_same_scene_and_pixels():
    a = sample_scene(np.random.default_rng(7), backgrounds=("white", "sky"))
    b = sample_scene(np.random.default_rng(7), backgrounds=("white", "sky"))
    c = sample_scene(np.random.default_rng(8), backgrounds=("white", "sky"))
    assert a == b and a.key() == b.key()
    assert np.array_equal(np.asarray(render(a)), np.asarray(render(b)))
    assert a.key() != c.key()


@pytest.mark.parametrize("size", [32, 64, 96, 128])
def test_scene_invariants_at_every_size(size):
    rng = np.random.default_rng(size)
    for _ in range(40):
        scene = sample_scene(rng, size=size, n_shapes=3)
        assert len(scene.shapes) == 3
        assert len({s.position for s in scene.shapes}) == 3  # one shape per grid cell
        for i, s in enumerate(scene.shapes):
            assert s.kind in BASE_KINDS and s.colour in COLOURS
            assert s.box.width == s.box.height and s.box.x1 >= 1 and s.box.x2 <= size - 1
            for t in scene.shapes[i + 1:]:
                assert iou(s.box, t.box) == 0.0
        image = render(scene)
        assert image.size == (size, size) and image.mode == "RGB"


def test_held_out_concepts_only_when_asked():
    rng = np.random.default_rng(0)
    base = {s.kind for _ in range(200) for s in sample_scene(rng).shapes}
    assert base == set(BASE_KINDS)
    new = {s.kind for _ in range(50) for s in sample_scene(rng, kinds=NEW_KINDS).shapes}
    assert new == set(NEW_KINDS)


def test_render_colours_and_exact_geometry():
    scene = scene_from_prompt("a red square")
    pixels = np.asarray(render(scene)).astype(int)
    box = scene.shapes[0].box
    inside = pixels[int(box.y1):int(box.y2), int(box.x1):int(box.x2)]
    assert (inside == COLOURS["red"].rgb).all()  # a square fills its integer box exactly
    assert (pixels[0, 0] == 255).all()
    for kind, fill in [("circle", np.pi / 4), ("triangle", 0.5), ("square", 1.0), ("cross", 5 / 9)]:
        assert shape_stats(kind).fill == pytest.approx(fill, abs=1e-9)
        cov = coverage(kind, (10, 10, 50, 50), 64, 64)
        assert cov.sum() == pytest.approx(fill * 1600, rel=0.01)
    assert shape_stats("triangle").cy == pytest.approx(2 / 3)


def test_captions_english_and_chinese():
    scene = scene_from_prompt("a red circle on the left and a blue square on the right")
    assert caption(scene) == "a red circle on the left and a blue square on the right"
    assert caption(scene, "zh") == "左边一个红色的圆，右边一个蓝色的正方形"
    single = scene_from_prompt("an orange triangle")
    assert caption(single) == "an orange triangle" and caption(single, "zh") == "一个橙色的三角形"
    assert single.shapes[0].position == "centre"
    three = sample_scene(np.random.default_rng(3), n_shapes=3)
    assert caption(three).count(",") == 1 and " and " in caption(three)


def test_parse_prompt_round_trips_both_languages():
    rng = np.random.default_rng(11)
    for _ in range(50):
        scene = sample_scene(rng, kinds=tuple(SHAPES))
        for lang in ("en", "zh"):
            spec = parse_prompt(caption(scene, lang, positions=True))
            assert [(o.colour, o.kind, o.position) for o in spec.objects] == [
                (s.colour, s.kind, s.position) for s in scene.shapes]
    with pytest.raises(UsageError, match="could not read"):
        parse_prompt("a magenta hexagon")


def test_questions_consistent_with_scene_in_both_languages():
    scene = scene_from_prompt("a red circle at the top left, a red square in the centre and a green circle on the right")
    en = {q.question: q.answer for q in questions(scene)}
    zh = {q.question: q.answer for q in questions(scene, "zh")}
    assert en["How many shapes are there?"] == "3" and zh["图中有几个形状？"] == "3"
    assert en["How many red shapes are there?"] == "2" and zh["图中有几个红色的形状？"] == "2"
    assert en["How many circles are there?"] == "2"
    assert en["What colour is the square?"] == "red" and zh["正方形是什么颜色？"] == "红色"
    assert "What colour is the circle?" not in en  # two circles: ambiguous, not asked
    assert en["What shape is on the right?"] == "circle" and zh["右边是什么形状？"] == "圆"
    assert en["Is there a red circle?"] == "yes" and zh["图中有红色的圆吗？"] == "有"
    assert en["Is there an orange circle?"] == "no" and zh["图中有橙色的圆吗？"] == "没有"
    assert len(en) == len(zh) == len(questions(scene))


def test_yes_no_questions_are_balanced_and_ask_every_absent_object():
    scene = scene_from_prompt("a red circle on the left and a blue square on the right")
    rng = np.random.default_rng(0)
    drawn = [sample_yes_no(scene, rng, lang) for lang in ("en", "zh") for _ in range(300)]
    assert all(qa.kind == "exists" for qa in drawn)
    yes = [qa for qa in drawn if qa.answer in ("yes", "有")]
    assert 0.4 < len(yes) / len(drawn) < 0.6
    for qa in yes:  # a "yes" names a shape of the scene and is read from it
        (shape,) = qa.about
        assert shape in scene.shapes and qa.question in {"Is there a red circle?", "Is there a blue square?",
                                                         "图中有红色的圆吗？", "图中有蓝色的正方形吗？"}
    no = {qa.question for qa in drawn if qa.answer == "no"}
    assert all(qa.about == () for qa in drawn if qa.answer in ("no", "没有"))
    assert "Is there a red circle?" not in no and "Is there a blue square?" not in no
    assert {"Is there a red square?", "Is there a blue circle?"} <= no  # present colours on the other kind
    assert "Is there a green triangle?" in no  # an absent kind
    assert "图中有红色的正方形吗？" in {qa.question for qa in drawn if qa.answer == "没有"}


def test_each_answer_names_the_shapes_it_is_read_from():
    scene = scene_from_prompt("a red circle at the top left, a red square in the centre and a green circle on the right")
    circle, square, green = scene.shapes
    about = {q.question: q.about for q in questions(scene)}
    assert about["How many shapes are there?"] == scene.shapes
    assert about["How many red shapes are there?"] == (circle, square)
    assert about["How many circles are there?"] == (circle, green)
    assert about["What colour is the square?"] == (square,) and about["What shape is on the right?"] == (green,)
    assert about["Is there a red circle?"] == (circle,) and about["Is there an orange circle?"] == ()
    for qa in questions(scene, "zh"):  # the answer follows from the shapes named
        if qa.kind.startswith("count"):
            assert qa.answer == str(len(qa.about))
        elif qa.kind == "exists":
            assert (qa.answer == "有") == bool(qa.about)
        else:
            assert len(qa.about) == 1


def test_grounding_targets_are_unambiguous():
    scene = scene_from_prompt("a red circle on the left and a red square on the right")
    en = {t.expression: t.box for t in grounding_targets(scene)}
    assert en["the red circle"] == scene.shapes[0].box
    assert en["the shape on the right"] == scene.shapes[1].box
    assert "the red shape" not in en
    zh = {t.expression: t.box for t in grounding_targets(scene, "zh")}
    assert zh["左边的形状"] == scene.shapes[0].box and zh["红色的正方形"] == scene.shapes[1].box


def test_layout_rejects_collisions():
    with pytest.raises(UsageError, match="same position"):
        scene_from_prompt("a red circle on the left and a blue square on the left")
    assert layout_scene(parse_prompt("a red circle and a blue square"), size=96).shapes[1].position == "right"


def test_video_events_match_frames():
    rng = np.random.default_rng(5)
    for _ in range(20):
        video = sample_video(rng, fps=4.0)
        frames = render_video(video)
        assert frames.shape == (video.n_frames, 64, 64, 3) and frames.dtype == np.uint8
        for q, track in zip([q for q in temporal_queries(video) if "appear" in q.question], video.tracks):
            visible = [any(s.colour == track.colour and s.kind == track.kind for s in frame_scene(video, i).shapes)
                       for i in range(video.n_frames)]
            shown_times = video.times()[visible]
            assert shown_times.min() == pytest.approx(q.span.start)
            assert shown_times.max() + 1 / video.fps == pytest.approx(q.span.end)
        for track in video.tracks:
            if track.event == "moves":
                first, last = track.box_at(0.0), track.box_at(video.duration_s - 1e-9)
                assert (first.x1, last.x1) == (track.start[0], track.end[0]) and first.x1 != last.x1
    zh = temporal_queries(video, "zh")[0].question
    assert zh.endswith("什么时候出现？")


def test_splits_are_disjoint_and_deterministic():
    train = make_dataset("caption", 300, seed=0, split="train")
    test = make_dataset("caption", 60, seed=0, split="test")
    assert {e.scene.key() for e in train}.isdisjoint({e.scene.key() for e in test})
    assert all(split_of(e.scene) == "test" for e in test)
    again = make_dataset("caption", 60, seed=0, split="test")
    assert [e.text for e in again] == [e.text for e in test]
    vqa = make_dataset("vqa", 20, seed=1, split="val", lang="zh")
    assert all(e.answer and e.text.endswith("？") for e in vqa)
    grounding = make_dataset("grounding", 20, seed=1, split="train")
    assert all(e.box in [s.box for s in e.scene.shapes] for e in grounding)
    video = make_dataset("video", 3, seed=1, split="test")
    assert all(e.frames.ndim == 4 and e.span.end > e.span.start for e in video)
