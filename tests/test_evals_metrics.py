"""mmkit.evals: metrics with hand-computed values, answer matching corpus, registries."""
import math

import pytest

from mmkit.evals import get_metric, get_task, list_tasks
from mmkit.evals.matching import infer_choice, match_choice, match_open, normalize_answer
from mmkit.evals.metrics import aggregate, box_scores, combine_means, mean_stderr, span_scores, temporal_iou
from mmkit.evals.registry import Registry
from mmkit.evals.results import MetricValue, SampleRecord
from mmkit.exceptions import UsageError
from mmkit.understand.answer import Box, TimeSpan

TARGET = Box(x1=0, y1=0, x2=10, y2=10)
PREDS = [Box(x1=0, y1=0, x2=10, y2=10), Box(x1=0, y1=0, x2=10, y2=6), Box(x1=0, y1=0, x2=10, y2=2)]  # IoU 1, .6, .2


def _records(rows):
    return [SampleRecord(id=str(i), category=c, scores=s) for i, (c, s) in enumerate(rows)]


def test_box_metrics_hand_computed():
    scores = [box_scores(p, TARGET) for p in PREDS]
    assert [s["mean_iou"] for s in scores] == pytest.approx([1.0, 0.6, 0.2])
    overall, cats = aggregate(_records([("a", scores[0]), ("a", scores[1]), ("b", scores[2])]),
                              ["acc@0.5", "mean_iou", "acc@0.7", "centre_acc"])
    assert overall["acc@0.5"].value == pytest.approx(2 / 3)
    assert overall["acc@0.5"].stderr == pytest.approx(1 / 3)  # sqrt((1/3) / 3): sample var 1/3, n 3
    assert overall["mean_iou"].value == pytest.approx(0.6)
    assert overall["mean_iou"].stderr == pytest.approx(0.4 / math.sqrt(3))  # std 0.4 (ddof=1)
    assert overall["acc@0.7"].value == pytest.approx(1 / 3)
    assert overall["centre_acc"].value == 1.0  # centres (5,5), (5,3), (5,1) all inside
    assert cats["a"]["acc@0.5"].value == 1.0 and cats["a"]["acc@0.5"].n == 2
    assert cats["b"]["mean_iou"].value == pytest.approx(0.2) and cats["b"]["mean_iou"].stderr is None


def test_missing_box_scores_zero():
    assert box_scores(None, TARGET) == {"acc@0.3": 0.0, "acc@0.5": 0.0, "acc@0.7": 0.0, "mean_iou": 0.0,
                                        "centre_acc": 0.0}


def test_temporal_recall_hand_spans():
    target = TimeSpan(start=2, end=6)
    preds = [TimeSpan(start=2, end=6), TimeSpan(start=3, end=7), TimeSpan(start=0, end=1), None]
    assert temporal_iou(preds[1], target) == pytest.approx(3 / 5)
    scores = [span_scores(p, target) for p in preds]
    overall, _ = aggregate(_records([("all", s) for s in scores]), ["r1@0.3", "r1@0.5", "r1@0.7", "mean_tiou"])
    assert overall["r1@0.5"].value == pytest.approx(2 / 4)
    assert overall["r1@0.7"].value == pytest.approx(1 / 4)
    assert overall["mean_tiou"].value == pytest.approx((1 + 0.6) / 4)


def test_stderr_and_combined_means():
    assert mean_stderr([1.0]) is None
    assert mean_stderr([0.0, 1.0]) == pytest.approx(0.5)
    combined = combine_means([MetricValue(value=1.0, stderr=0.3, n=4), MetricValue(value=0.5, stderr=0.4, n=2)])
    assert combined.value == pytest.approx(0.75) and combined.stderr == pytest.approx(0.25) and combined.n == 6


@pytest.mark.parametrize("text,expected", [
    ("The Two red circles.", "2 red circles"), ("  An  Apple!", "apple"), ("红色。", "红色"), ("Zero", "0")])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


OPTIONS = {"A": "red", "B": "blue", "C": "dark red", "D": "3"}


@pytest.mark.parametrize("prediction,choice", [
    ("B", "B"), ("(B)", "B"), ("B.", "B"), ("B. blue", "B"), ("The answer is B.", "B"), ("Answer: (D)", "D"),
    ("blue", "B"), ("It is blue.", "B"), ("dark red", "C"), ("three", "D"), ("red or blue", None), ("green", None),
    ("", None)])
def test_infer_choice_corpus(prediction, choice):
    assert infer_choice(prediction, OPTIONS) == choice


def test_match_choice_accepts_letter_or_option_text_as_answer():
    assert match_choice("blue", OPTIONS, "B") and match_choice("B", OPTIONS, "blue")
    assert not match_choice("A", OPTIONS, "B")


@pytest.mark.parametrize("prediction,answers,ok", [
    ("Red.", "red", True), ("red, I think", "red", True), ("The answer is red", "red", True), ("not red", "red", False),
    ("Two", "2", True), ("There are 2 circles", "2", False), ("yes", ["yes", "yeah"], True), ("没有", "有", False),
    ("有", "有", True), ("blue", "red", False)])
def test_match_open_corpus(prediction, answers, ok):
    assert match_open(prediction, answers) is ok


def test_registry_did_you_mean():
    with pytest.raises(UsageError, match="did you mean 'grounding'"):
        get_task("grunding")
    with pytest.raises(UsageError, match="did you mean 'acc@0.5'"):
        get_metric("acc@05")
    assert list_tasks() == ["geneval", "grounding", "shapes_controlnet", "shapes_grounding", "shapes_inpaint",
                            "shapes_lora", "shapes_temporal", "shapes_text_to_image", "shapes_vqa",
                            "temporal_grounding", "vqa"]
    assert all(get_task(n).version == "1.0" for n in list_tasks())
    reg = Registry("thing")
    reg.add("x", 1)
    with pytest.raises(UsageError, match="already registered"):
        reg.add("x", 2)
    with pytest.raises(UsageError, match="no close match"):
        reg.get("completely-different")


def test_vqa_soft_score_is_vqav2s_leave_one_out_accuracy():
    from mmkit.evals.matching import vqa_soft_score

    ten = ["red"] * 3 + ["orange"] * 7
    # leave-one-out: dropping one of the 3 "red" leaves 2 (2/3), dropping an "orange" leaves 3 (1.0)
    assert vqa_soft_score("Red.", ten) == pytest.approx((3 * 2 / 3 + 7 * 1.0) / 10)
    assert vqa_soft_score("orange", ten) == 1.0
    assert vqa_soft_score("blue", ten) == 0.0
    assert vqa_soft_score("two", ["2"] * 10) == 1.0  # number words normalised
    assert vqa_soft_score("red", []) == 0.0


def test_vqa_reader_keeps_annotator_answers(tmp_path):
    import json

    from mmkit.evals.readers import read_vqa

    (tmp_path / "a.png").write_bytes(b"")
    rows = [{"index": 1, "image_path": "a.png", "question": "q?", "answer": "red", "answers": ["red", "red", "pink"]},
            {"index": 2, "image_path": "a.png", "question": "q?", "answer": "red"}]
    (tmp_path / "v.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = read_vqa(tmp_path / "v.jsonl")
    assert samples[0].answers == ("red", "red", "pink") and samples[1].answers == ()
