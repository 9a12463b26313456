"""The small sample datasets every task ships with, built from the shapes world.

Each is generated deterministically (fixed seeds, the "test" split of `mmkit.shapes.make_dataset`) on
first use into a cache folder, in the public file format its task reads, so every task runs offline end
to end and exercises the same reader real data goes through. A folder is built beside its final name
and renamed into place, so a half-built set is never used. This module knows the shapes world and the
file formats; it knows nothing about models or metrics.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmkit.files import atomic_write_text

__all__ = ["eval_cache_dir", "builtin_dataset", "build_grounding", "build_vqa", "build_temporal", "build_geneval",
           "SEED"]

SEED = 20240601  # every built-in set derives from this seed


def eval_cache_dir() -> Path:
    """`$MMKIT_EVAL_CACHE`, else `~/.cache/mmkit/evals`."""
    return Path(os.environ.get("MMKIT_EVAL_CACHE") or Path.home() / ".cache" / "mmkit" / "evals")


def builtin_dataset(name: str, version: str, build: Callable[[Path], str], cache_dir: Path | None = None) -> Path:
    """The data file of a built-in set, building `<cache>/<name>-v<version>/` on first use.

    Args:
        name: the task name.
        version: the task version (a new version builds a new folder).
        build: writes the set into the folder it gets and returns the data file's name.
        cache_dir: the cache root (default `eval_cache_dir()`).
    """
    root = Path(cache_dir) if cache_dir is not None else eval_cache_dir()
    target = root / f"{name}-v{version}"
    marker = target / "data_file.txt"
    if marker.is_file():
        return target / marker.read_text().strip()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        (tmp / "data_file.txt").write_text(build(tmp))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: use its copy
            if not marker.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / marker.read_text().strip()


def _grounding_category(expression: str) -> str:
    if expression.startswith("the shape "):
        return "position"
    if expression.endswith(" shape"):
        return "colour"
    return "colour_kind" if len(expression.split()) == 3 else "kind"


def build_grounding(folder: Path, n: int = 24) -> str:
    """RefCOCO-style JSONL: image path, expression, [x1, y1, x2, y2] box, category (expression type)."""
    from mmkit.shapes import make_dataset

    lines = []
    for i, ex in enumerate(make_dataset("grounding", n, SEED, "test", size=96)):
        name = f"images/{i:04d}.png"
        (folder / "images").mkdir(exist_ok=True)
        ex.image.save(folder / name)
        lines.append({"id": f"g{i:04d}", "image": name, "expression": ex.text, "box": list(ex.box.as_tuple()),
                      "category": _grounding_category(ex.text)})
    atomic_write_text(folder / "grounding.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    return "grounding.jsonl"


def _options_for(qa, rng: np.random.Generator) -> dict[str, str]:
    from mmkit.shapes import COLOURS, SHAPES

    pool = {"colour_of": list(COLOURS), "colour_at": list(COLOURS), "kind_at": list(SHAPES)}.get(
        qa.kind, [str(v) for v in range(1, 10)] if qa.kind.startswith("count") else ["yes", "no"])
    others = [v for v in pool if v != qa.answer]
    picks = list(rng.choice(others, size=min(3, len(others)), replace=False)) + [qa.answer]
    rng.shuffle(picks)
    return {chr(65 + i): str(v) for i, v in enumerate(picks)}


def build_vqa(folder: Path, n: int = 24) -> str:
    """VLMEvalKit-style TSV with base64 images; every other question is multiple choice (A-D)."""
    from mmkit.shapes import make_dataset, sample_question

    rng = np.random.default_rng([SEED, 1])
    header = ["index", "image", "question", "A", "B", "C", "D", "answer", "category"]
    rows = ["\t".join(header)]
    for i, ex in enumerate(make_dataset("caption", n, SEED + 1, "test", size=96)):
        qa = sample_question(ex.scene, rng)
        buffer = io.BytesIO()
        ex.image.save(buffer, format="PNG")
        options = _options_for(qa, rng) if i % 2 == 0 else {}
        answer = next((k for k, v in options.items() if v == qa.answer), qa.answer)
        cells = [str(i), base64.b64encode(buffer.getvalue()).decode(), qa.question,
                 *(options.get(k, "") for k in "ABCD"), answer, qa.kind]
        rows.append("\t".join(cells))
    atomic_write_text(folder / "vqa.tsv", "\n".join(rows) + "\n")
    return "vqa.tsv"


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 1_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def build_temporal(folder: Path, n: int = 12) -> str:
    """Charades-STA-like JSONL (video, query, start, end seconds) with mp4 clips of the shapes world."""
    from mmkit.shapes import make_dataset

    (folder / "videos").mkdir(exist_ok=True)
    lines = []
    for i, ex in enumerate(make_dataset("video", n, SEED + 2, "test", size=64)):
        name = f"videos/{i:04d}.mp4"
        _write_mp4(folder / name, ex.frames, ex.scene.fps)
        category = "moves" if " move" in ex.text else "appears"
        lines.append({"id": f"t{i:04d}", "video": name, "query": ex.text, "start": ex.span.start,
                      "end": ex.span.end, "category": category})
    atomic_write_text(folder / "temporal.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    return "temporal.jsonl"


def _geneval_prompts(rng: np.random.Generator, per_tag: int) -> list[dict]:
    from mmkit.shapes import BASE_KINDS, COLOURS, SHAPES

    colours, kinds, words = list(COLOURS), list(BASE_KINDS), {2: "two", 3: "three"}
    out = []
    for _ in range(per_tag):
        (k1, k2), (c1, c2) = rng.choice(kinds, 2, replace=False), rng.choice(colours, 2, replace=False)
        n = int(rng.integers(2, 4))
        art, art2 = ("an" if c[0] in "aeiou" else "a" for c in (c1, c2))
        out += [
            {"tag": "single_object", "include": [{"class": k1, "count": 1}], "prompt": f"a {k1}"},
            {"tag": "two_object", "include": [{"class": k1, "count": 1}, {"class": k2, "count": 1}],
             "prompt": f"a {k1} and a {k2}"},
            {"tag": "counting", "include": [{"class": k1, "count": n}], "exclude": [{"class": k1, "count": n + 1}],
             "prompt": f"{words[n]} {SHAPES[k1].plural}"},
            {"tag": "colors", "include": [{"class": k1, "count": 1, "color": c1}], "prompt": f"{art} {c1} {k1}"},
            {"tag": "position", "include": [{"class": k2, "count": 1, "color": c2},
                                            {"class": k1, "count": 1, "color": c1, "position": ["left of", 0]}],
             "prompt": f"{art} {c1} {k1} on the left and {art2} {c2} {k2} on the right"},
            {"tag": "color_attr", "include": [{"class": k1, "count": 1, "color": c1},
                                              {"class": k2, "count": 1, "color": c2}],
             "prompt": f"{art} {c1} {k1} and {art2} {c2} {k2}"},
        ]
    return out


def build_geneval(folder: Path, per_tag: int = 2) -> str:
    """GenEval-format prompt metadata over the shapes world: the six GenEval tags, `per_tag` prompts each."""
    prompts = _geneval_prompts(np.random.default_rng([SEED, 3]), per_tag)
    atomic_write_text(folder / "evaluation_metadata.jsonl", "".join(json.dumps(p) + "\n" for p in prompts))
    return "evaluation_metadata.jsonl"
