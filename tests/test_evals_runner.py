"""mmkit.evals: the evaluate() loop with a fake model (resume, limit, ranks, outputs) and the SVG/markdown
reports. The real tiny-model runs are in test_evals_end_to_end.py."""
import json
import xml.etree.ElementTree as ET

import pytest

from mmkit.evals import evaluate, load_result
from mmkit.evals.readers import GroundingSample
from mmkit.evals.report import bar_chart_svg, histogram_svg
from mmkit.evals.results import MetricValue
from mmkit.evals.sample_log import ProcessInfo, read_records, shard_range
from mmkit.exceptions import UsageError
from mmkit.understand.answer import Answer, Box


class FakeVLM:
    """Answers `ground` with a box chosen per expression; records every call."""

    model_id = None

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, []

    def ground(self, image, expression, **kwargs):
        self.calls.append(expression)
        box = self.boxes.get(expression)
        return Answer(text="", boxes=(box,) if box else ())


TARGET = Box(x1=0, y1=0, x2=10, y2=10)
BOXES = {"e0": Box(x1=0, y1=0, x2=10, y2=10), "e1": Box(x1=0, y1=0, x2=10, y2=6), "e2": Box(x1=0, y1=0, x2=10, y2=2)}


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "refs.jsonl"
    rows = [{"id": f"s{i}", "image": "x.png", "expression": f"e{i}", "box": [0, 0, 10, 10],
             "category": "ab"[i % 2]} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_result_structure_and_files(tmp_path, data):
    model = FakeVLM(BOXES)
    result = evaluate("grounding", model, data=data, limit=3, output_dir=tmp_path / "run", progress=False)
    assert result.n_samples == 3 and model.calls == ["e0", "e1", "e2"]
    assert result.metrics["acc@0.5"].value == pytest.approx(2 / 3) and result.metrics["acc@0.5"].stderr == pytest.approx(1 / 3)
    assert result.metrics["mean_iou"].value == pytest.approx(0.6) and result.score == pytest.approx(2 / 3)
    assert result.categories["a"]["mean_iou"].value == pytest.approx(0.6) and result.categories["b"]["mean_iou"].n == 1
    assert result.config.task_version == "1.0" and result.config.limit == 3 and result.model.note.startswith("no model_id")
    assert load_result(tmp_path / "run" / "result.json") == result
    for name in ("samples.jsonl", "summary.md", "run.json", "plots/histogram_iou.svg", "plots/categories_acc@0.5.svg"):
        assert (tmp_path / "run" / name).is_file(), name
    assert "| acc@0.5 ↑ | 0.6667 | 0.3333 | 3 |" in (tmp_path / "run" / "summary.md").read_text()


def test_resume_skips_scored_samples(tmp_path, data):
    out = tmp_path / "run"
    first = FakeVLM(BOXES)
    evaluate("grounding", first, data=data, limit=2, output_dir=out, progress=False)
    second = FakeVLM(BOXES)
    result = evaluate("grounding", second, data=data, output_dir=out, progress=False)
    assert first.calls == ["e0", "e1"] and second.calls == ["e2", "e3"]
    assert result.n_samples == 4 and result.timings.resumed_samples == 2
    with open(out / "samples.jsonl", "a") as handle:  # a run killed in the middle of writing a line
        handle.write('{"id": "s9", "categ')
    third = FakeVLM(BOXES)
    assert evaluate("grounding", third, data=data, output_dir=out, progress=False).n_samples == 4
    assert third.calls == [] and (out / "samples.jsonl").read_text().endswith("}\n")
    with pytest.raises(UsageError, match="different seed"):
        evaluate("grounding", FakeVLM(BOXES), data=data, output_dir=out, seed=1, progress=False)
    fresh = FakeVLM(BOXES)
    evaluate("grounding", fresh, data=data, output_dir=out, seed=1, resume=False, progress=False)
    assert len(fresh.calls) == 4 and len(read_records(out / "samples.jsonl")) == 4


def test_resume_refuses_retrained_weights_in_the_same_folder(tmp_path, data):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "model"
    folder.mkdir()
    save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    model = FakeVLM(BOXES)
    model.model_id = str(folder)
    out = tmp_path / "run"
    evaluate("grounding", model, data=data, limit=2, output_dir=out, progress=False)
    assert evaluate("grounding", model, data=data, output_dir=out, progress=False).timings.resumed_samples == 2
    save_file({"w": torch.ones(2)}, str(folder / "model.safetensors"))  # retrained in place
    with pytest.raises(UsageError, match="model weights"):
        evaluate("grounding", model, data=data, output_dir=out, progress=False)
    assert evaluate("grounding", model, data=data, output_dir=out, resume=False, progress=False).n_samples == 4


def test_shard_rule_matches_accelerate():
    from types import SimpleNamespace

    from accelerate import PartialState

    for n, count in [(10, 3), (2, 4), (7, 1), (0, 2)]:
        for index in range(count):
            with PartialState.split_between_processes(SimpleNamespace(num_processes=count, process_index=index),
                                                      list(range(n))) as part:
                assert list(shard_range(n, index, count)) == list(part)


def test_simulated_ranks_split_and_merge(tmp_path, data):
    out = tmp_path / "run"
    barrier_calls = []
    rank1, rank0 = FakeVLM(BOXES), FakeVLM(BOXES)
    assert evaluate("grounding", rank1, data=data, output_dir=out, progress=False,
                    process=ProcessInfo(1, 2, lambda: barrier_calls.append(1))) is None
    assert (out / "samples.rank1.jsonl").is_file() and not (out / "result.json").exists()
    result = evaluate("grounding", rank0, data=data, output_dir=out, progress=False,
                      process=ProcessInfo(0, 2, lambda: barrier_calls.append(0)))
    assert rank0.calls == ["e0", "e1"] and rank1.calls == ["e2", "e3"] and result.n_samples == 4
    assert [r.id for r in read_records(out / "samples.jsonl")] == ["s0", "s1", "s2", "s3"]
    assert not list(out.glob("samples.rank*.jsonl")) and barrier_calls.count(0) == 2
    assert result.metrics["mean_iou"].value == pytest.approx((1 + 0.6 + 0.2 + 0) / 4)


def test_bad_inputs(tmp_path, data):
    with pytest.raises(UsageError, match="did you mean 'vqa'"):
        evaluate("vqaa", FakeVLM({}), data=data, output_dir=tmp_path)
    with pytest.raises(UsageError, match="bad options"):
        evaluate("grounding", FakeVLM({}), data=data, output_dir=tmp_path, options={"box_fromat": "xywh"})
    with pytest.raises(UsageError, match="limit"):
        evaluate("grounding", FakeVLM({}), data=data, output_dir=tmp_path, limit=0)
    twice = [GroundingSample(id="x", image="i.png", expression="e", box=TARGET)] * 2
    with pytest.raises(UsageError, match="ids repeat"):
        evaluate("grounding", FakeVLM({}), data=twice, output_dir=tmp_path)


def test_svg_plots_are_valid_and_count():
    svg = histogram_svg("iou", [0.0, 0.05, 0.55, 1.0, 1.0])
    root = ET.fromstring(svg)
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 10 and [r.find("{http://www.w3.org/2000/svg}title").text.split(": ")[1] for r in rects] == \
        ["2", "0", "0", "0", "0", "1", "0", "0", "0", "2"]
    bars = bar_chart_svg("acc by category", [("a & b", MetricValue(value=0.5, stderr=0.1, n=4)),
                                             ("c", MetricValue(value=1.0, stderr=None, n=1))])
    root = ET.fromstring(bars)
    widths = [float(r.get("width")) for r in root.findall("{http://www.w3.org/2000/svg}rect")]
    assert widths[1] == pytest.approx(2 * widths[0]) and len(root.findall("{http://www.w3.org/2000/svg}line")) == 2


class FakeChat:
    """`chat` answering from a function of the prompt; records prompts and media."""

    model_id = None

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def chat(self, text, **kwargs):
        self.calls.append((text, kwargs))
        return self.answer(text)


def test_builtin_temporal_and_vqa_with_fakes(tmp_path):
    from mmkit.understand.answer import TimeSpan

    spans = FakeChat(lambda text: Answer(text="1.0 - 2.0", spans=(TimeSpan(start=1.0, end=2.0),)))
    result = evaluate("temporal_grounding", spans, limit=3, output_dir=tmp_path / "t", cache_dir=tmp_path / "c",
                      progress=False)
    records = read_records(tmp_path / "t" / "samples.jsonl")
    assert result.n_samples == 3 and all(kw["videos"][0].endswith(".mp4") for _, kw in spans.calls)
    for r in records:  # the score is the IoU of [1, 2] with the target span, computed by hand here
        start, end = r.target
        inter = max(0.0, min(2.0, end) - max(1.0, start))
        assert r.scores["mean_tiou"] == pytest.approx(inter / (max(2.0, end) - min(1.0, start)) if inter else 0.0)
    letters = FakeChat(lambda text: Answer(text="A"))
    result = evaluate("vqa", letters, limit=4, output_dir=tmp_path / "v", cache_dir=tmp_path / "c", progress=False)
    prompts = [text for text, _ in letters.calls]
    assert prompts[0].endswith("Answer with the option's letter from the given choices directly.") and "\nA. " in prompts[0]
    assert prompts[1].endswith("Answer the question using a single word or phrase.")
    records = read_records(tmp_path / "v" / "samples.jsonl")
    assert [r.scores["accuracy"] for r in records] == [float(r.extra["format"] == "multiple_choice" and r.target == "A")
                                                       for r in records]
    assert result.metrics["accuracy"].n == 4
