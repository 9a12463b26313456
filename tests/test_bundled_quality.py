"""Regression floors of the committed shapes-world models, measured by the same eval tasks as `mmkit quality`
on a small fixed sample (the first samples of each held-out set, fixed seeds). The floors sit below what the
committed weights scored on exactly these samples (`MEASURED`), so a change that breaks a model, its loading
or the SDK path it runs through fails here; they time nothing. The full table with the bars is
`mmkit quality` (README: "Bundled models")."""
import pytest

from mmkit.bundled import available_bundled
from mmkit.evals import evaluate

# task -> (model, limit); each task runs once on the first `limit` held-out samples (shapes_text_to_image
# interleaves its categories, so 40 = 20 single + 20 pair prompts).
RUNS = {
    "shapes_text_to_image": ("mmkit/shapes-sd", 40),
    "shapes_inpaint": ("mmkit/shapes-sd", 20),
    "shapes_controlnet": ("mmkit/shapes-sd", 20),
    "shapes_lora": ("mmkit/shapes-sd", 20),
    "shapes_grounding": ("mmkit/shapes-qwen2.5-vl", 20),
    "shapes_vqa": ("mmkit/shapes-qwen2.5-vl", 20),
    "shapes_temporal": ("mmkit/shapes-qwen2.5-vl", 20),
}
# (task, metric, category or None) -> (what the committed weights scored on exactly this sample, floor)
FLOORS = {
    ("shapes_text_to_image", "pass", "single"): (0.95, 0.75),
    ("shapes_text_to_image", "pass", "pair"): (0.65, 0.45),
    ("shapes_inpaint", "success", None): (1.00, 0.75),
    ("shapes_inpaint", "psnr_db", None): (33.98, 30.0),
    ("shapes_controlnet", "layout_match", None): (0.95, 0.75),
    ("shapes_controlnet", "mean_iou", None): (0.88, 0.75),
    ("shapes_lora", "with_lora", None): (0.90, 0.65),
    ("shapes_grounding", "acc@0.5", None): (0.90, 0.70),
    ("shapes_grounding", "mean_iou", None): (0.86, 0.65),
    ("shapes_vqa", "accuracy", None): (0.90, 0.70),
    ("shapes_temporal", "mean_tiou", None): (0.71, 0.50),
}
# metrics that must stay low: (measured, ceiling)
CEILINGS = {("shapes_lora", "without_lora", None): (0.0, 0.20)}


def test_every_bundled_model_is_installed():
    assert available_bundled() == ["mmkit/shapes-sd", "mmkit/shapes-controlnet-canny", "mmkit/shapes-lora-star",
                                   "mmkit/shapes-qwen2.5-vl"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cache: dict = {}

    def get(task):
        if task not in cache:
            model, limit = RUNS[task]
            cache[task] = evaluate(task, model, limit=limit, output_dir=tmp_path_factory.mktemp(task), device="cpu",
                                   progress=False)
        return cache[task]

    return get


def _value(result, metric, category):
    return (result.metrics if category is None else result.categories[category])[metric].value


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FLOORS), ids=lambda c: "-".join(str(p) for p in c if p))
def test_floor(case, results):
    task, metric, category = case
    measured, floor = FLOORS[case]
    value = _value(results(task), metric, category)
    assert value >= floor, f"{task} {metric} = {value:.3f}, floor {floor} (committed weights scored {measured})"


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CEILINGS) or [None], ids=lambda c: "-".join(str(p) for p in c if p) if c else "none")
def test_ceiling(case, results):
    if case is None:
        pytest.skip("no ceiling metrics")
    task, metric, category = case
    measured, ceiling = CEILINGS[case]
    value = _value(results(task), metric, category)
    assert value <= ceiling, f"{task} {metric} = {value:.3f}, ceiling {ceiling} (committed weights scored {measured})"
