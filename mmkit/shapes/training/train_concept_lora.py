"""Teach the bundled shapes generator one concept its training never showed it (a held-out shape of
`vocab.NEW_KINDS`, e.g. the star) with a LoRA trained by the project's own entry point,
`mmkit.generate.train_lora`, and measure the concept with the pixel oracle.

Four steps, one function each:

1. `write_concept_dataset`: train-split scenes that contain the concept (mostly one shape of it, sometimes next
   to a base shape), rendered at 64 px, captioned with the world's captions (`data.scene_caption`: English,
   some Chinese, single shapes sometimes with their position) into a folder with `metadata.jsonl`.
2. `train_lora(TrainLoraConfig(...))`, unchanged; `cast_adapter_fp16` then halves the saved adapter in place
   (`train_lora` saves the fp32 training weights) and puts its UNet keys in one layout (see there).
3. `evaluate_concept_lora`: held-out (test-split) prompts naming the concept, generated through the SDK
   (`ImageGenerator.from_pretrained` + `loras.load`) with and without the LoRA from the same seeds; the
   oracle (`detect`, every kind the world knows) says whether the concept is there and in which colour.
4. `write_model_card`: README.md and training.json next to the adapter.

Run: `python -m mmkit.shapes.training.train_concept_lora --base DIR --concept star --out DIR --steps N
--threads 1 [--eval-n N]`. This module knows the shapes world, `TrainLoraConfig` and the SDK's generation
API; it knows nothing about how LoRA layers are trained, saved or loaded (that is `mmkit.generate`'s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...exceptions import ModelLoadError, ModelOutputError, UsageError
from ..datasets import make_dataset
from ..oracle import detect, judge_caption
from ..render import render
from ..scene import Scene
from ..vocab import BASE_KINDS, SHAPES
from .data import scene_caption, train_scenes
from .train_generator import DEFAULT_OUT as DEFAULT_BASE

__all__ = ["ConceptLoraConfig", "write_concept_dataset", "cast_adapter_fp16", "concept_prompts",
           "evaluate_concept_lora", "train_concept_lora", "write_model_card", "main"]

WEIGHTS = DEFAULT_BASE.parent
ADAPTER_FILE = "pytorch_lora_weights.safetensors"  # what train_lora writes (diffusers' save_lora_weights)
SIZE, STEPS, GUIDANCE = 64, 20, 5.0  # sampling settings of evaluate_generator, so the numbers compare
BARS = {"with_lora": 0.8, "without_lora": 0.2}  # presence: at least / at most (the requirement)


@dataclass(frozen=True)
class ConceptLoraConfig:
    """The seeded recipe: the dataset, and the `TrainLoraConfig` fields this script sets."""

    concept: str = "star"  # a shape kind the base never saw (vocab.NEW_KINDS)
    seed: int = 0  # dataset scenes and captions; train_lora's data order, noise and LoRA init
    images: int = 1000  # rendered training scenes
    pair_share: float = 0.3  # share of two-shape scenes (the concept and another shape, with positions)
    zh_share: float = 0.25  # share of Chinese captions (the base saw 15%)
    # 1000 x 16 = 16 passes over the images. Measured on the real architecture (CPU, 1 thread, the other core
    # busy): 0.74 s/step at batch 16, 0.50 at batch 8, so ~12 minutes of training.
    steps: int = 1000  # optimizer steps
    batch: int = 16
    rank: int = 16
    alpha: float = 16.0  # update scale alpha / rank = 1
    learning_rate: float = 1e-3  # 10x diffusers' example default, for a ~12-minute budget (not yet tuned)
    warmup: int = 50  # linear warm-up, then cosine decay (capped at steps // 10)
    caption_dropout: float = 0.1  # as the base (keeps the unconditional branch for guidance)
    # Min-SNR-5, as the base. None = plain MSE: for a v-prediction base on zero-terminal-SNR betas, Min-SNR's
    # v weight min(SNR, 5) / (SNR + 1) is ~0 over the noisiest steps, where the outline is laid down.
    snr_gamma: float | None = 5.0
    # Beyond the attention projections: the convolutions of this small UNet only ever drew circles, squares
    # and triangles, and a new outline is drawn there, so the resnet convolutions and the transformer blocks'
    # projections and feed-forwards get LoRA layers too (peft LoRA on Conv2d, which diffusers loads). A
    # design choice, not a measured comparison with attention-only targets.
    targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                                "ff.net.2", "conv1", "conv2")
    train_text_encoder: bool = True  # the concept word's embedding was never trained: let the encoder adapt


def _check_concept(concept: str) -> None:
    if concept not in SHAPES or concept in BASE_KINDS:
        raise UsageError("The concept must be a shape kind the base generator never saw", received=concept,
                         fix=f"Use one of {[k for k in SHAPES if k not in BASE_KINDS]}")


def _check_base(base: str | os.PathLike) -> Path:
    folder = Path(base)
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError("The base is not a saved shapes generator (no model_index.json)", received=str(base),
                             fix="Train one: python -m mmkit.shapes.training.train_generator --out DIR")
    return folder


# --- 1. dataset ---------------------------------------------------------------------------------------------


def concept_scenes(rng: np.random.Generator, concept: str, n: int, *, pair_share: float) -> list[Scene]:
    """`n` train-split scenes that contain `concept`: one shape of it, or (`pair_share` of them) two shapes
    drawn from the concept and the base kinds, at least one of them the concept."""
    n_pairs = round(n * pair_share)
    scenes = train_scenes(rng, n - n_pairs, kinds=(concept,), n_shapes=1)
    while n_pairs:
        drawn = train_scenes(rng, n_pairs, kinds=(concept, *BASE_KINDS), n_shapes=2)
        kept = [s for s in drawn if any(shape.kind == concept for shape in s.shapes)]
        scenes += kept
        n_pairs -= len(kept)
    return scenes


def write_concept_dataset(folder: str | os.PathLike, concept: str, n: int, seed: int, *, pair_share: float = 0.3,
                          zh_share: float = 0.25) -> list[Scene]:
    """Render `n` concept scenes of the train split into `folder` (PNGs + `metadata.jsonl`, the layout
    `train_lora` reads) and return them in file order.

    Args:
        folder: a new or empty folder.
        concept: the shape kind to teach (see `vocab.NEW_KINDS`).
        n: number of images.
        seed: picks the scenes and the caption of each.
        pair_share: share of two-shape scenes.
        zh_share: share of Chinese captions.
    """
    _check_concept(concept)
    if n < 1 or not 0 <= pair_share <= 1 or not 0 <= zh_share <= 1:
        raise UsageError("Bad dataset request", received={"n": n, "pair_share": pair_share, "zh_share": zh_share},
                         fix="n >= 1, shares in [0, 1]")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise UsageError("The dataset folder is not empty", received=str(folder), fix="Pass a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 11])
    scenes = concept_scenes(rng, concept, n, pair_share=pair_share)
    rows = []
    for index, scene in enumerate(scenes):
        name = f"{index:05d}.png"
        render(scene).save(folder / name)
        rows.append(json.dumps({"file_name": name, "text": scene_caption(scene, rng, zh_share=zh_share)},
                               ensure_ascii=False))
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return scenes


# --- 2. training --------------------------------------------------------------------------------------------


def cast_adapter_fp16(path: str | os.PathLike) -> None:
    """Rewrite a safetensors adapter in float16, in place, with the same header metadata (diffusers keeps
    the peft LoRA config there) and the same keys."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(path)
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    largest = max((float(t.abs().max()) for t in tensors.values() if t.is_floating_point() and t.numel()), default=0)
    if largest >= torch.finfo(torch.float16).max:
        raise ModelOutputError("The adapter holds values too large for float16", received=largest,
                               fix="Train with a lower learning rate")
    halved = {key: t.to(torch.float16) if t.is_floating_point() else t
              for key, t in tensors.items()}
    temporary = path.with_name(f".{path.name}.fp16")
    save_file(halved, str(temporary), metadata=metadata)
    os.replace(temporary, path)


def train_config(config: ConceptLoraConfig, base: Path, data_dir: Path, out: Path):
    """The `TrainLoraConfig` of one run (64 px, CPU, fp32 training)."""
    from ...generate.training.config import make_config

    return make_config(
        base=str(base), data_dir=data_dir, output_dir=out, family="sd15", rank=config.rank, alpha=config.alpha,
        target_modules=config.targets, train_text_encoder=config.train_text_encoder,
        learning_rate=config.learning_rate, lr_scheduler="cosine",
        lr_warmup_steps=min(config.warmup, config.steps // 10),
        max_steps=config.steps, batch_size=config.batch, mixed_precision="no", resolution=SIZE, center_crop=True,
        random_flip=False,  # a flip would swap "left" and "right" in the captions
        caption_dropout=config.caption_dropout, snr_gamma=config.snr_gamma, seed=config.seed, device="cpu")


def train_concept_lora(config: ConceptLoraConfig = ConceptLoraConfig(), *, base: str | os.PathLike = DEFAULT_BASE,
                       out: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
                       eval_n: int = 100, progress: bool = True, argv: Sequence[str] | None = None,
                       log=print) -> dict:
    """Write the dataset, train the LoRA with `train_lora`, cast it to fp16, evaluate it, write the card.

    Args:
        config: the recipe.
        base: the saved shapes generator (a diffusers folder).
        out: where the adapter, README.md and training.json go (default weights/shapes-lora-<concept>).
        data_dir: keep the rendered dataset here (default: a temporary folder, deleted afterwards).
        eval_n: held-out prompts for `evaluate_concept_lora` (0 only checks that the SDK loads the adapter).
        progress: show train_lora's progress bar.
        argv: the command line, for the model card's "reproduce" line.
        log: where progress lines go.

    Returns:
        The report written to training.json (config, train_lora config, seconds, losses, metrics); README.md
        is written beside it.
    """
    from ...generate.train_lora import train_lora

    _check_concept(config.concept)
    base = _check_base(base)
    out = Path(out) if out is not None else WEIGHTS / f"shapes-lora-{config.concept}"
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="concept-data-") as scratch:
        data = Path(data_dir) if data_dir is not None else Path(scratch)
        started = time.perf_counter()
        write_concept_dataset(data, config.concept, config.images, config.seed, pair_share=config.pair_share,
                              zh_share=config.zh_share)
        seconds["dataset"] = time.perf_counter() - started
        log(f"dataset: {config.images} images in {data} ({seconds['dataset']:.0f}s)")
        lora_config = train_config(config, base, data, out)
        result = train_lora(lora_config, progress=progress)
    cast_adapter_fp16(result.adapter_path)
    seconds["train"], seconds["per_step"] = result.seconds, result.seconds_per_step
    log(f"trained {result.steps} steps, {result.seconds_per_step:.2f} s/step, final loss {result.final_loss:.4f}")
    started = time.perf_counter()
    if eval_n:
        metrics = evaluate_concept_lora(base, out, config.concept, n=eval_n, seed=0, show=True)
    else:
        _load_with_lora(base, out)
        metrics = {}
    seconds["eval"] = time.perf_counter() - started
    report = {"config": _jsonable(asdict(config)), "train_lora_config": lora_config.model_dump(mode="json"),
              "base": str(base), "out": str(out), "threads": torch.get_num_threads(), "seconds": seconds,
              "final_loss": result.final_loss,
              "loss_every_10_steps": [round(x, 5) for x in result.loss_history[::10]], "metrics": metrics}
    (out / "training.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    write_model_card(out, report, argv=argv)
    return report


def _jsonable(value):
    return json.loads(json.dumps(value, default=list))


# --- 3. evaluation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    text: str
    colour: str  # the colour the prompt asks for
    lang: str


def concept_prompts(concept: str, n: int, seed: int, *, zh_share: float = 0.25) -> list[Prompt]:
    """`n` single-shape test-split captions naming the concept ("a red star", "一个红色的五角星"); the
    last `round(n * zh_share)` are Chinese."""
    _check_concept(concept)
    n_zh = round(n * zh_share)
    out = []
    for lang, count, offset in (("en", n - n_zh, 0), ("zh", n_zh, 1)):
        for example in make_dataset("caption", count, seed + offset, "test", lang=lang, kinds=(concept,), n_shapes=1):
            out.append(Prompt(example.text, example.scene.shapes[0].colour, lang))
    return out


def _load_with_lora(base: Path, lora_dir: Path, generator=None):
    from ...generate import ImageGenerator

    generator = generator or ImageGenerator.from_pretrained(base, device="cpu", progress=False)
    generator.loras.load(lora_dir, name="concept")
    return generator


def _rates(images, prompts: Sequence[Prompt], concept: str) -> dict:
    found = [[d for d in detect(image, kinds=tuple(SHAPES)) if d.kind == concept] for image in images]
    present = [bool(hits) for hits in found]
    coloured = [any(d.colour == p.colour for d in hits) for hits, p in zip(found, prompts)]
    exact = [judge_caption(image, p.text).passed for image, p in zip(images, prompts)]

    def share(flags, lang=None) -> float:
        picked = [f for f, p in zip(flags, prompts) if lang in (None, p.lang)]
        return sum(picked) / max(1, len(picked))

    return {"presence": share(present), "colour_correct": share(coloured), "exact": share(exact),
            "presence_en": share(present, "en"), "presence_zh": share(present, "zh")}


@torch.no_grad()
def evaluate_concept_lora(base_dir: str | os.PathLike, lora_dir: str | os.PathLike, concept: str, n: int = 100,
                          seed: int = 0, *, base_n: int | None = None, steps: int = STEPS,
                          guidance_scale: float = GUIDANCE, show: bool = False) -> dict:
    """How often the concept appears with and without the LoRA, judged by the oracle.

    Image i of each condition uses seed `seed + i`, so the two conditions differ only by the LoRA. Both go
    through the SDK: `ImageGenerator.from_pretrained(base_dir)`, then `loras.load(lora_dir)`.

    Args:
        base_dir: the saved shapes generator.
        lora_dir: the adapter folder (or file).
        concept: the shape kind the LoRA teaches.
        n: held-out prompts naming the concept (a quarter of them Chinese).
        seed: picks the prompts and the image seeds.
        base_n: also judge this many single base-shape prompts with and without the LoRA (what the LoRA
            costs the shapes the base already drew); default n // 4.
        steps, guidance_scale: sampling settings (those of `evaluate_generator`).
        show: print a table.

    Returns:
        {"with_lora": rates, "without_lora": rates, "base_prompts": {...}, "n", "passed", ...}; rates are
        shares in [0, 1]: "presence" (the oracle finds a shape of the concept's kind), "colour_correct" (one
        in the asked colour), "exact" (`judge_caption` passes: that shape and nothing else), and presence per
        language.
    """
    from ...generate import ImageGenerator

    if n < 1:
        raise UsageError("n must be at least 1", received=n)
    base_dir, lora_dir = _check_base(base_dir), Path(lora_dir)
    prompts = concept_prompts(concept, n, seed)
    base_n = n // 4 if base_n is None else base_n
    base_prompts = [e.text for e in make_dataset("caption", base_n, seed + 2, "test", n_shapes=1)]
    generator = ImageGenerator.from_pretrained(base_dir, device="cpu", progress=False)
    common = dict(steps=steps, guidance_scale=guidance_scale, width=SIZE, height=SIZE)

    def draw(texts):
        return [generator.text_to_image(t, seed=seed + i, **common).images[0] for i, t in enumerate(texts)]

    plain, plain_base = draw([p.text for p in prompts]), draw(base_prompts)
    _load_with_lora(base_dir, lora_dir, generator)
    adapted, adapted_base = draw([p.text for p in prompts]), draw(base_prompts)

    def passed(images) -> float:
        return sum(judge_caption(im, t).passed for im, t in zip(images, base_prompts)) / max(1, base_n)

    out = {"concept": concept, "n": n, "n_zh": sum(p.lang == "zh" for p in prompts), "seed": seed, "steps": steps,
           "guidance_scale": guidance_scale, "with_lora": _rates(adapted, prompts, concept),
           "without_lora": _rates(plain, prompts, concept),
           "base_prompts": {"n": base_n, "with_lora": passed(adapted_base), "without_lora": passed(plain_base)}}
    out["passed"] = (out["with_lora"]["presence"] >= BARS["with_lora"]
                     and out["without_lora"]["presence"] <= BARS["without_lora"])
    if show:
        _print_table(out)
    return out


def _print_table(out: dict) -> None:
    print(f"{out['concept']} LoRA, {out['n']} test prompts ({out['n_zh']} zh), steps {out['steps']}, "
          f"guidance {out['guidance_scale']}")
    print(f"{'metric':<22}{'with LoRA':>10}{'without':>10}")
    for key in ("presence", "colour_correct", "exact", "presence_en", "presence_zh"):
        print(f"{key:<22}{out['with_lora'][key]:>10.3f}{out['without_lora'][key]:>10.3f}")
    base = out["base_prompts"]
    print(f"{'base shapes pass':<22}{base['with_lora']:>10.3f}{base['without_lora']:>10.3f}   (n={base['n']})")
    print(f"bar: presence >= {BARS['with_lora']} with, <= {BARS['without_lora']} without -> "
          f"{'PASS' if out['passed'] else 'FAIL'}")


# --- 4. model card ------------------------------------------------------------------------------------------


def write_model_card(out: Path, report: dict, *, argv: Sequence[str] | None = None) -> None:
    """README.md beside the adapter: what it teaches, how to load it, how it was trained, what it scores."""
    cfg, lora, sec, metrics = report["config"], report["train_lora_config"], report["seconds"], report["metrics"]
    concept = cfg["concept"]
    size = (out / ADAPTER_FILE).stat().st_size
    lines = [
        f"# shapes-lora-{concept}: a LoRA that teaches the shapes generator the {concept}", "",
        f"The bundled shapes generator (`shapes-sd`) was trained on circles, squares and triangles only; this",
        f"adapter (`{ADAPTER_FILE}`, diffusers LoRA format, fp16, {size} bytes) teaches it the {concept}.",
        "It was trained with mmkit's own LoRA entry point, `mmkit.generate.train_lora`. Load it through the SDK:", "",
        "```py", "from mmkit.generate import ImageGenerator", "",
        "generator = ImageGenerator.from_pretrained(\"mmkit/shapes/weights/shapes-sd\")",
        f"generator.loras.load(\"mmkit/shapes/weights/shapes-lora-{concept}\", name=\"{concept}\")",
        f"image = generator.text_to_image(\"a red {concept}\", width=64, height=64, steps=20, guidance_scale=5.0,",
        "                                 seed=0).images[0]", "```", "",
        "## Training (reproduce: `python -m mmkit.shapes.training.train_concept_lora"
        + (" " + " ".join(argv) if argv else "") + "`)", "",
        f"- data: {cfg['images']} train-split scenes rendered at 64 px, each with a {concept}"
        f" ({cfg['pair_share']:.0%} with a second shape), captioned with the world's captions"
        f" ({cfg['zh_share']:.0%} Chinese); seed {cfg['seed']}.",
        f"- LoRA rank {lora['rank']}, alpha {lora['alpha']}, on UNet modules {', '.join(lora['target_modules'])}"
        + ("; text encoder q/k/v/out_proj too" if lora["train_text_encoder"] else "") + ".",
        f"- {lora['max_steps']} steps, batch {lora['batch_size']}, AdamW lr {lora['learning_rate']} "
        f"({lora['lr_scheduler']}, {lora['lr_warmup_steps']} warm-up steps), "
        + (f"Min-SNR-{lora['snr_gamma']}, " if lora["snr_gamma"] else "plain MSE loss, ")
        + f"caption dropout {lora['caption_dropout']}, fp32 on CPU; the saved adapter was cast to fp16.",
        f"- seconds: dataset {sec['dataset']:.0f}, training {sec['train']:.0f} ({sec['per_step']:.2f} s/step), "
        f"evaluation {sec['eval']:.0f} (CPU, {report['threads']} thread(s)); final loss "
        f"{report['final_loss']:.4f}.", "",
    ]
    if metrics:
        lines += [
            "## Oracle evaluation (`evaluate_concept_lora`: test-split prompts, same seeds with and without)", "",
            "| metric | with LoRA | without | bar |", "| --- | --- | --- | --- |",
            f"| {concept} present | {metrics['with_lora']['presence']:.3f} | {metrics['without_lora']['presence']:.3f}"
            f" | >= {BARS['with_lora']} with, <= {BARS['without_lora']} without |",
        ]
        for key in ("colour_correct", "exact", "presence_en", "presence_zh"):
            lines.append(f"| {key} | {metrics['with_lora'][key]:.3f} | {metrics['without_lora'][key]:.3f} | |")
        base = metrics["base_prompts"]
        lines += [f"| base-shape prompts pass | {base['with_lora']:.3f} | {base['without_lora']:.3f} | |", "",
                  f"n = {metrics['n']} prompts ({metrics['n_zh']} Chinese), steps {metrics['steps']}, guidance "
                  f"{metrics['guidance_scale']}; present = the oracle, considering every shape kind, finds a "
                  f"{concept}; colour_correct = one in the asked colour; exact = `judge_caption` passes. Base-shape "
                  f"prompts: {base['n']} single circle / square / triangle prompts judged by `judge_caption`.", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    defaults = ConceptLoraConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=str(DEFAULT_BASE), help="the saved shapes generator")
    parser.add_argument("--concept", default=defaults.concept, choices=[k for k in SHAPES if k not in BASE_KINDS])
    parser.add_argument("--out", default=None, help="default: mmkit/shapes/weights/shapes-lora-<concept>")
    parser.add_argument("--data-dir", default=None, help="keep the rendered dataset here (default: temporary)")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--rank", type=int, default=defaults.rank)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--images", type=int, default=defaults.images)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval-n", type=int, default=100, help="held-out prompts to evaluate (0: none)")
    parser.add_argument("--snr-gamma", type=lambda v: None if v.lower() == "none" else float(v),
                        default=defaults.snr_gamma, help="Min-SNR gamma, or 'none' for plain MSE")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (one: see train_generator)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ConceptLoraConfig(concept=args.concept, steps=args.steps, batch=args.batch, rank=args.rank,
                               alpha=float(args.rank), learning_rate=args.lr, images=args.images, seed=args.seed,
                               snr_gamma=args.snr_gamma)
    report = train_concept_lora(config, base=args.base, out=args.out, data_dir=args.data_dir, eval_n=args.eval_n,
                                argv=sys.argv[1:] if argv is None else list(argv))
    print(json.dumps({"seconds": report["seconds"], "metrics": report["metrics"]}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
