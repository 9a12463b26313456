"""mmkit.evals: readers of the public formats, built-in sets, GenEval layout and judges."""
import base64
import io
import json

import pytest
from PIL import Image

from mmkit.evals.builtin_data import build_geneval, build_vqa
from mmkit.evals.judges import OracleJudge, VLMJudge, judge_questions, relative_position
from mmkit.evals.readers import read_geneval, read_grounding, read_temporal, read_vqa
from mmkit.evals.task_geneval import write_geneval_sample
from mmkit.exceptions import UsageError
from mmkit.shapes import render, scene_from_prompt
from mmkit.understand.answer import Answer


def test_grounding_jsonl_tsv_and_coco_boxes(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"image": "im/1.png", "sentence": "the cat", "bbox": [10, 20, 30, 40]}) + "\n")
    xyxy = read_grounding(tmp_path / "a.jsonl")[0]
    assert xyxy.box.as_tuple() == (10, 20, 30, 40) and xyxy.image == str(tmp_path / "im/1.png") and xyxy.id == "1"
    xywh = read_grounding(tmp_path / "a.jsonl", box_format="xywh")[0]
    assert xywh.box.as_tuple() == (10, 20, 40, 60)
    (tmp_path / "b.tsv").write_text("id\timage\texpression\tbox\tcategory\nr7\t/abs/x.jpg\tleft dog\t1,2,3,4\ttestA\n")
    row = read_grounding(tmp_path / "b.tsv")[0]
    assert (row.id, row.image, row.expression, row.box.as_tuple(), row.category) == ("r7", "/abs/x.jpg", "left dog", (1, 2, 3, 4), "testA")
    (tmp_path / "c.jsonl").write_text(json.dumps({"image": "x.png", "expression": "e", "box": [10, 20, 5, 8]}) + "\n")
    with pytest.raises(UsageError, match="box_format='xywh'"):  # x2 < x1: a COCO box read as xyxy
        read_grounding(tmp_path / "c.jsonl")


def test_vqa_tsv_base64_and_options(tmp_path):
    name = build_vqa(tmp_path, n=4)
    samples = read_vqa(tmp_path / name)
    assert len(samples) == 4 and samples[0].image.startswith("data:image/png;base64,")
    assert sorted(samples[0].options) in (["A", "B"], ["A", "B", "C", "D"])  # yes/no questions have 2
    assert samples[0].answer in samples[0].options
    assert samples[1].options == {}  # every other question is open
    image = Image.open(io.BytesIO(base64.b64decode(samples[0].image.split(",", 1)[1])))
    assert image.size == (96, 96)
    (tmp_path / "q.jsonl").write_text(json.dumps({"index": 3, "image_path": "p.png", "question": "q?",
                                                  "options": ["x", "y"], "answer": "B"}) + "\n")
    row = read_vqa(tmp_path / "q.jsonl")[0]
    assert row.options == {"A": "x", "B": "y"} and row.id == "3"


def test_temporal_charades_and_jsonl(tmp_path):
    (tmp_path / "charades_sta_test.txt").write_text("3MSZA 24.3 30.4##person turn a light on.\n")
    row = read_temporal(tmp_path / "charades_sta_test.txt", video_root="/videos")[0]
    assert (row.video, row.query, row.span.start, row.span.end) == ("/videos/3MSZA.mp4", "person turn a light on.", 24.3, 30.4)
    (tmp_path / "t.jsonl").write_text(json.dumps({"video": "v.mp4", "query": "q", "start": 5, "end": 2}) + "\n")
    with pytest.raises(UsageError, match="start < end"):
        read_temporal(tmp_path / "t.jsonl")


def test_geneval_metadata_and_layout(tmp_path):
    name = build_geneval(tmp_path, per_tag=1)
    prompts = read_geneval(tmp_path / name)
    assert [p.tag for p in prompts] == ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    assert [p.id for p in prompts[:2]] == ["00000", "00001"]
    counting = prompts[2]
    assert counting.exclude[0].count == counting.include[0].count + 1
    line = json.loads((tmp_path / name).read_text().splitlines()[4])
    assert prompts[4].metadata() == line  # round trip, GenEval's keys ("class", "position": [rel, index])
    images = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    paths = write_geneval_sample(tmp_path / "run", prompts[4], images)
    folder = tmp_path / "run" / "geneval" / "outputs" / "00004"
    assert paths == [folder / "samples" / "0000.png", folder / "samples" / "0001.png"]
    assert json.loads((folder / "metadata.jsonl").read_text()) == line
    assert Image.open(paths[1]).getpixel((0, 0)) == (0, 0, 255)


def test_relative_position_geneval_rule():
    assert relative_position([0, 0, 10, 10], [20, 0, 30, 10]) == {"left of"}
    assert relative_position([0, 20, 10, 30], [0, 0, 10, 10]) == {"below"}
    assert relative_position([0, 0, 10, 10], [1, 0, 11, 10]) == set()  # within 0.1 x (sum of widths)


def _prompt(tmp_path, line):
    (tmp_path / "m.jsonl").write_text(json.dumps(line) + "\n")
    return read_geneval(tmp_path / "m.jsonl")[0]


def test_oracle_judge_on_rendered_scenes(tmp_path):
    image = render(scene_from_prompt("a red circle on the left and a blue square on the right", size=96))
    left = {"tag": "position", "prompt": "p", "include": [{"class": "square", "count": 1, "color": "blue"},
                                                         {"class": "circle", "count": 1, "color": "red", "position": ["left of", 0]}]}
    assert OracleJudge()(image, _prompt(tmp_path, left)).correct
    right = json.loads(json.dumps(left))
    right["include"][1]["position"] = ["right of", 0]
    verdict = OracleJudge()(image, _prompt(tmp_path, right))
    assert not verdict.correct and "expected circle right of target" in verdict.reason
    wrong_colour = {"tag": "colors", "prompt": "p", "include": [{"class": "circle", "count": 1, "color": "green"}]}
    assert not OracleJudge()(image, _prompt(tmp_path, wrong_colour)).correct
    two = render(scene_from_prompt("a red circle on the left and a blue circle on the right", size=96))
    count_one = {"tag": "counting", "prompt": "p", "include": [{"class": "circle", "count": 1}],
                 "exclude": [{"class": "circle", "count": 2}]}
    verdict = OracleJudge()(two, _prompt(tmp_path, count_one))
    assert not verdict.correct and "expected circle<2, found 2" in verdict.reason


class _YesNo:
    """Answers yes to questions containing any of `yes_words`; records every question."""

    def __init__(self, yes_words):
        self.yes_words, self.asked = yes_words, []

    def chat(self, text, **kwargs):
        self.asked.append(text)
        return Answer(text="Yes." if any(w in text for w in self.yes_words) else "No")


def test_vlm_judge_questions_and_dsg_dependencies(tmp_path):
    prompt = _prompt(tmp_path, {"tag": "position", "prompt": "p", "include": [
        {"class": "square", "count": 1}, {"class": "circle", "count": 2, "color": "red", "position": ["left of", 0]}]})
    questions = [q for q, _ in judge_questions(prompt)]
    assert questions == ["Is there a square in the image?", "Is there a circle in the image?",
                         "Are there 2 circles in the image?", "Are the circles red?",
                         "Is the circle left of the square?"]
    model = _YesNo(["a square", "circle in", "2 circles", "red"])
    verdict = VLMJudge(model)(Image.new("RGB", (8, 8)), prompt)
    assert not verdict.correct and verdict.score == pytest.approx(4 / 5) and len(model.asked) == 5
    model = _YesNo(["a square"])  # "is there a circle" fails: its 3 children are not asked
    verdict = VLMJudge(model)(Image.new("RGB", (8, 8)), prompt)
    assert verdict.score == pytest.approx(1 / 5) and len(model.asked) == 2
    assert verdict.questions[2] == ("Are there 2 circles in the image?", "(parent failed)", False)
