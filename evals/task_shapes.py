"""The shapes-world quality table as named tasks: generator fidelity, inpainting, ControlNet layouts, a LoRA
concept, and the VLM's grounding, VQA and video temporal grounding, each judged by the pixel oracle or the
world's ground truth on held-out (test-split) samples.

Their data is not a file of pictures but a seeded recipe: `builtin_data` writes `spec.json` (kind, n, seed)
and `read` rebuilds the same held-out samples from it with `mmkit.shapes.make_dataset`, so the set is
identical on every machine. Each trial is the one the training scripts report (`evaluate_generator`,
`evaluate_controlnet`, `evaluate_concept_lora`, `vlm_evaluate`): the numbers of `mmkit quality` and of the
scripts are the same measurements. This module knows the tasks; the trials live beside the training code.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmkit.files import atomic_write_text

from .metrics import register_metric
from .results import SampleRecord
from .tasks import Task, TaskOptions, register_task

__all__ = ["ShapesTextToImageTask", "ShapesInpaintTask", "ShapesControlNetTask", "ShapesLoraTask",
           "ShapesGroundingTask", "ShapesVQATask", "ShapesTemporalTask"]

register_metric("pass", "fraction of generated images the pixel oracle passes for their prompt")
register_metric("success", "fraction of inpainting trials with the oracle passing and unmasked PSNR >= 30 dB")
register_metric("oracle_pass", "fraction of inpainted images the oracle passes for the wanted caption")
register_metric("psnr_db", "PSNR (dB) of the unmasked pixels against the input image")
register_metric("layout_match", "fraction of layouts whose every shape the oracle finds at box IoU >= 0.7")
register_metric("with_lora", "fraction of images with the LoRA in which the oracle finds the concept")
register_metric("without_lora", "fraction of images without the LoRA in which the oracle finds the concept",
                higher_is_better=False)

EVAL_SEED = 0  # the held-out samples the committed numbers were measured on


@dataclass(frozen=True)
class ShapesSample:
    id: str
    category: str
    item: Any  # a prompt, an InpaintCase, a layout scene or a `make_dataset` Example
    index: int  # position in the held-out set: image seeds are `seed + sample.index`


class _ShapesTask(Task):
    """Common part: a spec file instead of data, samples rebuilt from it."""

    default_n: int = 100

    def builtin_data(self, cache_dir: Path) -> Path:
        folder = Path(cache_dir) / f"{self.name}-v{self.version}"
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(folder / "spec.json", json.dumps({"task": self.name, "n": self.default_n,
                                                                   "seed": EVAL_SEED, "split": "test"}))

    def read(self, path: Path) -> list[ShapesSample]:
        spec = json.loads(Path(path).read_text())
        return self.build(int(spec["n"]), int(spec["seed"]))

    def build(self, n: int, seed: int) -> list[ShapesSample]:
        raise NotImplementedError


class GeneratorOptions(TaskOptions):
    steps: int = 20
    guidance_scale: float = 5.0


@register_task
class ShapesTextToImageTask(_ShapesTask):
    """Single-object prompts and two-object prompts with positions, judged by the pixel oracle."""

    name = "shapes_text_to_image"
    version = "1.0"
    model_kind = "generator"
    metrics = ("pass",)
    primary_metric = "pass"
    description = "shapes world: oracle-judged prompt fidelity, categories single / pair (with positions)"
    Options = GeneratorOptions
    default_n = 200  # per category

    def build(self, n: int, seed: int) -> list[ShapesSample]:
        from mmkit.shapes.training.evaluate_generator import pair_prompts, single_prompts

        # interleaved, so that `limit` keeps both categories
        return [ShapesSample(f"{cat}-{i}", cat, p, i) for i, pair in enumerate(zip(single_prompts(n, seed),
                                                                                     pair_prompts(n, seed)))
                for cat, p in zip(("single", "pair"), pair)]

    def score(self, model: Any, sample: ShapesSample, *, seed: int, output_dir: Path) -> SampleRecord:
        from mmkit.shapes.training.evaluate_generator import prompt_trial

        start = time.perf_counter()
        passed, _ = prompt_trial(model, sample.item, seed + sample.index, steps=self.options.steps,
                                 guidance_scale=self.options.guidance_scale)
        return SampleRecord(id=sample.id, category=sample.category, scores={"pass": float(passed)},
                            target=sample.item, seconds=time.perf_counter() - start, extra={"seed": seed + sample.index})


@register_task
class ShapesInpaintTask(_ShapesTask):
    """A masked shape replaced by another colour and class; success = oracle passes and unmasked PSNR >= 30 dB."""

    name = "shapes_inpaint"
    version = "1.0"
    model_kind = "generator"
    metrics = ("success", "oracle_pass", "psnr_db")
    primary_metric = "success"
    description = "shapes world: inpainting success (oracle + unmasked PSNR >= 30 dB)"
    Options = GeneratorOptions

    def build(self, n: int, seed: int) -> list[ShapesSample]:
        from mmkit.shapes.training.evaluate_generator import inpaint_cases

        return [ShapesSample(f"inpaint-{i}", "inpaint", case, i) for i, case in enumerate(inpaint_cases(n, seed))]

    def score(self, model: Any, sample: ShapesSample, *, seed: int, output_dir: Path) -> SampleRecord:
        from mmkit.shapes.training.evaluate_generator import inpaint_trial

        start = time.perf_counter()
        ok, psnr, _ = inpaint_trial(model, sample.item, seed + sample.index, steps=self.options.steps,
                                    guidance_scale=self.options.guidance_scale)
        return SampleRecord(id=sample.id, category=sample.category,
                            scores={"success": float(ok and psnr >= 30), "oracle_pass": float(ok), "psnr_db": psnr},
                            target=sample.item.prompt, seconds=time.perf_counter() - start)


class ControlNetOptions(GeneratorOptions):
    controlnet: str = "mmkit/shapes-controlnet-canny"


@register_task
class ShapesControlNetTask(_ShapesTask):
    """Canny edge maps of held-out layouts: every shape of the layout found by the oracle at box IoU >= 0.7."""

    name = "shapes_controlnet"
    version = "1.0"
    model_kind = "generator"
    metrics = ("layout_match", "mean_iou")
    primary_metric = "layout_match"
    description = "shapes world: ControlNet (canny) layout fidelity, oracle box IoU >= 0.7 for every shape"
    Options = ControlNetOptions

    def build(self, n: int, seed: int) -> list[ShapesSample]:
        from mmkit.shapes.training.evaluate_controlnet import layout_scenes

        return [ShapesSample(f"layout-{i}", f"{len(case[0].shapes)}_shapes", case, i)
                for i, case in enumerate(layout_scenes(n, seed))]

    def prepare(self, model: Any, output_dir: Path) -> None:
        model.add_controlnet(self.options.controlnet, name="canny")

    def score(self, model: Any, sample: ShapesSample, *, seed: int, output_dir: Path) -> SampleRecord:
        from mmkit.shapes.training.evaluate_controlnet import layout_trial

        start = time.perf_counter()
        scene, text, image = sample.item
        result = layout_trial(model, scene, text, image, seed + sample.index, steps=self.options.steps,
                              guidance_scale=self.options.guidance_scale)
        return SampleRecord(id=sample.id, category=sample.category,
                            scores={"layout_match": float(result.followed),
                                    "mean_iou": sum(result.ious) / max(1, len(result.ious))},
                            prediction=list(result.ious), target=text, seconds=time.perf_counter() - start)


class LoraOptions(GeneratorOptions):
    lora: str = "mmkit/shapes-lora-star"
    concept: str = "star"


@register_task
class ShapesLoraTask(_ShapesTask):
    """Prompts naming a concept the base model never saw, with and without the LoRA (same seeds)."""

    name = "shapes_lora"
    version = "1.0"
    model_kind = "generator"
    metrics = ("with_lora", "without_lora")
    primary_metric = "with_lora"
    description = "shapes world: LoRA concept presence (oracle) with the adapter and without it"
    Options = LoraOptions

    def build(self, n: int, seed: int) -> list[ShapesSample]:
        from mmkit.shapes.training.train_concept_lora import concept_prompts

        return [ShapesSample(f"concept-{i}", p.lang, p, i) for i, p in enumerate(concept_prompts(self.options.concept, n, seed))]

    def prepare(self, model: Any, output_dir: Path) -> None:
        model.loras.load(self.options.lora, name="concept")

    def score(self, model: Any, sample: ShapesSample, *, seed: int, output_dir: Path) -> SampleRecord:
        from mmkit.shapes.oracle import detect
        from mmkit.shapes.vocab import SHAPES

        start = time.perf_counter()
        found = {}
        for state in ("with_lora", "without_lora"):  # same seed, only the adapter differs
            model.loras.enable() if state == "with_lora" else model.loras.disable()
            image = model.text_to_image(sample.item.text, seed=seed + sample.index, steps=self.options.steps,
                                        guidance_scale=self.options.guidance_scale, width=64, height=64).image
            found[state] = any(d.kind == self.options.concept for d in detect(image, kinds=tuple(SHAPES)))
        model.loras.enable()
        return SampleRecord(id=sample.id, category=sample.category, scores={k: float(v) for k, v in found.items()},
                            target=sample.item.text, seconds=time.perf_counter() - start)


class _ShapesVlmTask(_ShapesTask):
    """The VLM tasks: one trial per sample (`vlm_evaluate`), timed and recorded the same way."""

    model_kind = "vlm"
    dataset: str

    def build(self, n: int, seed: int) -> list[ShapesSample]:
        from mmkit.shapes.training.vlm_evaluate import halves

        return [ShapesSample(f"{self.dataset}-{i}", ex.lang, ex, i) for i, ex in enumerate(halves(self.dataset, n, seed, "test"))]

    def trial(self, model: Any, example: Any) -> tuple[dict[str, float], Any, Any]:
        """(scores, the answer, the target as JSON) of one example."""
        raise NotImplementedError

    def score(self, model: Any, sample: ShapesSample, *, seed: int, output_dir: Path) -> SampleRecord:
        start = time.perf_counter()
        scores, answer, target = self.trial(model, sample.item)
        return SampleRecord(id=sample.id, category=sample.category, scores=scores, prediction=answer.text,
                            target=target, seconds=time.perf_counter() - start)


@register_task
class ShapesGroundingTask(_ShapesVlmTask):
    """Referring expressions on held-out scenes; the first box in original pixels against the true box."""

    name = "shapes_grounding"
    version = "1.0"
    metrics = ("acc@0.5", "mean_iou")
    primary_metric = "acc@0.5"
    description = "shapes world: VLM grounding Acc@IoU0.5 (native format parsed and converted by the SDK)"
    dataset = "grounding"

    def trial(self, model: Any, example: Any) -> tuple[dict[str, float], Any, Any]:
        from mmkit.shapes.training.vlm_evaluate import grounding_iou

        value, answer = grounding_iou(model, example)
        return {"acc@0.5": float(value >= 0.5), "mean_iou": value}, answer, list(example.box.as_tuple())


@register_task
class ShapesVQATask(_ShapesVlmTask):
    """Questions about colour, count and which shape where; exact match with the canonical short answer."""

    name = "shapes_vqa"
    version = "1.0"
    metrics = ("accuracy",)
    primary_metric = "accuracy"
    description = "shapes world: VLM question answering, exact match"
    dataset = "vqa"

    def trial(self, model: Any, example: Any) -> tuple[dict[str, float], Any, Any]:
        from mmkit.shapes.training.vlm_evaluate import exact_answer

        right, answer = exact_answer(model, example)
        return {"accuracy": float(right)}, answer, example.answer


@register_task
class ShapesTemporalTask(_ShapesVlmTask):
    """When a shape appears / moves / disappears in a held-out clip; interval IoU of the answered span."""

    name = "shapes_temporal"
    version = "1.0"
    metrics = ("mean_tiou", "r1@0.5")
    primary_metric = "mean_tiou"
    description = "shapes world: VLM video temporal grounding, mean IoU of the answered span"
    dataset = "video"

    def trial(self, model: Any, example: Any) -> tuple[dict[str, float], Any, Any]:
        from mmkit.shapes.training.vlm_evaluate import temporal_iou

        value, answer = temporal_iou(model, example)
        return {"mean_tiou": value, "r1@0.5": float(value >= 0.5)}, answer, [example.span.start, example.span.end]
