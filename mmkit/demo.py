"""The main job: a scripted assistant session, in English and in Chinese, through `mmkit.agents.Assistant`.

The script, once per language: generate a two-shape scene, ask where the red circle is (boxes drawn),
replace it with a green triangle (ground -> mask -> inpaint -> the edit loop's verdict), and ask a
question about a short shapes-world clip (an mp4 written here with PyAV, attached as a session video).

Models: the trained shapes-world models when their folders hold model files
(`mmkit/shapes/weights/shapes-sd`, `mmkit/shapes/weights/shapes-qwen2.5-vl`), else the tiny built-in
random checkpoints, and then the terminal and the report say so prominently; `vlm=` / `generator=`
override either with a hub id or a folder.

Writes into the output folder: `session/` (the Session's images, masks, attempts, video and
session.json), `trace.json` (every turn: route, tool, parameters, seeds, timings, verdicts),
`report.html` (see `demo_report.py`), and the clip (`clip.mp4`, `clip-frames.png`). Knows only the public API and the agent layer.
"""
from __future__ import annotations

import io
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .bundled import BUNDLED
from .files import atomic_write, atomic_write_bytes, atomic_write_json

__all__ = ["run_demo", "DemoModel", "pick_models", "tiny_banner", "SCRIPT", "TRAINED_GENERATOR", "TRAINED_VLM", "TINY_BANNER"]

TRAINED_GENERATOR = BUNDLED["mmkit/shapes-sd"].path
TRAINED_VLM = BUNDLED["mmkit/shapes-qwen2.5-vl"].path

TINY_BANNER = {
    ("vlm", "generator"): (
        "THIS RUN USES TINY BUILT-IN CHECKPOINTS (random weights, real Qwen2.5-VL / SD 1.5 architectures):\n"
        "the whole pipeline runs, but the pictures are noise, the answers are gibberish and the verdicts are\n"
        "meaningless (grounding rarely yields a box, so edits usually stop there)."),
    ("vlm",): (
        "THE VISION-LANGUAGE MODEL OF THIS RUN IS A TINY BUILT-IN CHECKPOINT (random weights, real Qwen2.5-VL\n"
        "architecture): its answers are gibberish and its verdicts meaningless (grounding rarely yields a box,\n"
        "so edits usually stop there)."),
    ("generator",): (
        "THE GENERATOR OF THIS RUN IS A TINY BUILT-IN CHECKPOINT (random weights, real SD 1.5 architecture):\n"
        "its pictures are noise, so the answers and verdicts about them are meaningless."),
}
"""The warning shown when roles fall back to tiny random checkpoints, keyed by those roles."""

Lang = Literal["en", "zh"]


@dataclass(frozen=True)
class Request:
    """One scripted request; `video=True` attaches the demo clip, `truth` is what a right answer says."""

    lang: Lang
    text: str
    video: bool = False
    truth: str | None = None


# "mark it:" before the question makes the rule router draw the boxes; a trailing "? mark it" would be
# read as part of the object's name.
SCRIPT: tuple[tuple[Lang, str], ...] = (
    ("en", "draw a red circle on the left and a blue square on the right"),
    ("en", "mark it: where is the red circle?"),
    ("en", "replace the red circle with a green triangle"),
    ("zh", "画左边一个红色的圆，右边一个蓝色的正方形"),
    ("zh", "红色的圆在哪里？请框出来"),
    ("zh", "把红色的圆换成绿色的三角形"),
)


@dataclass(frozen=True)
class DemoModel:
    """Which model plays a role, and where it came from."""

    role: Literal["vlm", "generator"]
    source: str  # hub id or folder
    kind: Literal["trained", "tiny", "override"]


def _has_model_files(folder: Path, marker: str) -> bool:
    return (folder / marker).is_file() and any(folder.rglob("*.safetensors"))


def pick_models(vlm: str | Path | None = None, generator: str | Path | None = None) -> tuple[DemoModel, DemoModel]:
    """The (vlm, generator) the demo runs: the overrides, else the trained shapes-world folders when they hold
    a complete model (`config.json` / `model_index.json` plus safetensors), else the tiny checkpoints."""
    from .testing.tiny_diffusion import tiny_diffusion_checkpoint
    from .testing.tiny_qwen import tiny_checkpoint

    if vlm is not None:
        v = DemoModel("vlm", str(vlm), "override")
    elif _has_model_files(TRAINED_VLM, "config.json"):
        v = DemoModel("vlm", str(TRAINED_VLM), "trained")
    else:
        v = DemoModel("vlm", str(tiny_checkpoint("qwen2_5_vl")), "tiny")
    if generator is not None:
        g = DemoModel("generator", str(generator), "override")
    elif _has_model_files(TRAINED_GENERATOR, "model_index.json"):
        g = DemoModel("generator", str(TRAINED_GENERATOR), "trained")
    else:
        g = DemoModel("generator", str(tiny_diffusion_checkpoint("sd15")), "tiny")
    return v, g


def tiny_banner(vlm: DemoModel, generator: DemoModel) -> str | None:
    """The warning for the roles that fell back to tiny random checkpoints (None when none did)."""
    tiny = tuple(m.role for m in (vlm, generator) if m.kind == "tiny")
    if not tiny:
        return None
    missing = [str(folder) for m, folder in ((vlm, TRAINED_VLM), (generator, TRAINED_GENERATOR)) if m.kind == "tiny"]
    return TINY_BANNER[tiny] + "\nThe trained shapes-world models are not there yet: no model files in " + \
        " nor in ".join(missing) + "."


def _settings(vlm: DemoModel, generator: DemoModel):
    """Loop knobs per model kind: the shapes world is 64 px; tiny models get few steps and tokens."""
    from mmkit.agents import AgentSettings, Budget

    gen = {"tiny": dict(steps=8, width=64, height=64),
           "trained": dict(steps=20, width=64, height=64, guidance_scale=5.0),
           "override": dict(steps=30)}[generator.kind]
    tokens = {"tiny": 24, "trained": 64, "override": 256}[vlm.kind]
    attempts = 2 if "tiny" in (vlm.kind, generator.kind) else 3
    single_turn = {"chat_history": 0} if vlm.kind == "trained" else {}  # the bundled VLM saw single turns only
    return AgentSettings(seed=0, chat_tokens=tokens, **single_turn, **gen), Budget(attempts=attempts)


def _quiet_library_logs() -> None:
    """The demo prints its own lines; library progress bars and info logs would bury them."""
    import diffusers
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()


def _write_clip(out: Path, seed: int = 3) -> dict[str, Any]:
    """A shapes-world clip as `clip.mp4` (PyAV, mpeg4) and a frame strip `clip-frames.png`; returns its facts
    and one temporal question per language with the true span."""
    import av
    from fractions import Fraction
    from PIL import Image

    from .shapes.video import render_video, sample_video, temporal_queries

    scene = sample_video(np.random.default_rng(seed), n_tracks=1, n_frames=12)
    frames = render_video(scene)

    def mux(handle) -> None:
        with av.open(handle, "w", format="mp4") as container:
            stream = container.add_stream("mpeg4", rate=Fraction(scene.fps).limit_denominator(1000))
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt, stream.bit_rate = "yuv420p", 1_000_000
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())

    atomic_write(out / "clip.mp4", mux)
    strip = Image.fromarray(np.concatenate(list(frames[::2]), axis=1))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    atomic_write_bytes(out / "clip-frames.png", buffer.getvalue())
    questions = {lang: temporal_queries(scene, lang)[0] for lang in ("en", "zh")}
    return {"file": "clip.mp4", "strip": "clip-frames.png", "fps": scene.fps, "frames": scene.n_frames,
            "seconds": scene.duration_s,
            "questions": {lang: {"text": q.question, "truth": [q.span.start, q.span.end]} for lang, q in questions.items()}}


def _requests(clip: dict[str, Any]) -> list[Request]:
    """The script with each language's video question after its edit turn."""
    requests: list[Request] = []
    for lang in ("en", "zh"):
        requests += [Request(lang, text) for code, text in SCRIPT if code == lang]
        q = clip["questions"][lang]
        requests.append(Request(lang, q["text"], video=True, truth=f"{q['truth'][0]:g}-{q['truth'][1]:g} s"))
    return requests


def _turn_record(request: Request, result: Any, seconds: float) -> dict[str, Any]:
    """One turn of trace.json: the decision, reply, steps (tool, params, seeds, timings, verdicts) and files."""
    turn, decision = result.turn, result.decision
    verdicts = [s.verdict for s in turn.steps if s.verdict is not None]
    return {
        "index": turn.index, "language": request.lang, "request": request.text, "route": decision.route,
        "intent": decision.intent, "reason": decision.reason, "target": decision.target,
        "replacement": decision.replacement, "prompt": decision.prompt, "status": turn.status,
        "reply": result.reply, "truth": request.truth, "seconds": seconds, "inputs": list(turn.inputs),
        "outputs": list(turn.outputs), "verdict": verdicts[-1].model_dump(mode="json") if verdicts else None,
        "steps": [s.model_dump(mode="json") for s in turn.steps],
    }


def _summary_line(record: dict[str, Any]) -> str:
    verdict = record["verdict"]
    judged = "" if verdict is None else f" verdict={'pass' if verdict['passed'] else 'fail' if verdict['passed'] is False else 'n/a'}"
    reply = record["reply"].replace("\n", " ")
    return (f"[{record['index']}] {record['language']} {record['route']}/{record['intent']:<13} {record['status']:<12}"
            f" {record['seconds']:6.2f} s{judged}  {record['request']!r} -> {reply[:60]!r}")


def _load(vlm: DemoModel, generator: DemoModel) -> tuple[Any, Any, dict[str, Any]]:
    from .generate.generator import ImageGenerator
    from .understand.model import VisionLanguageModel

    t0 = time.perf_counter()
    gen = ImageGenerator.from_pretrained(generator.source, progress=False)
    t1 = time.perf_counter()
    model = VisionLanguageModel.from_pretrained(vlm.source, progress=False)
    t2 = time.perf_counter()
    info = {"generator": {"source": generator.source, "kind": generator.kind, "family": gen.family, "load_s": t1 - t0},
            "vlm": {"source": vlm.source, "kind": vlm.kind, "family": model.family.name, "load_s": t2 - t1}}
    return model, gen, info


def _fresh_session_folder(out: Path) -> Path:
    """`out/session`, emptied when it holds an earlier demo session (a Session refuses an existing one)."""
    from mmkit.agents.session import SESSION_FILE

    folder = out / "session"
    if (folder / SESSION_FILE).is_file():
        shutil.rmtree(folder)
    return folder


def run_demo(output_dir: str | Path = "outputs/demo", *, vlm: str | Path | None = None,
             generator: str | Path | None = None) -> dict[str, Any]:
    """Run the scripted assistant session and write its session folder, `trace.json` and `report.html`.

    Args:
        output_dir: the output folder (created if missing; an earlier demo session in it is replaced).
        vlm: hub id or folder of a vision-language model; default: the trained shapes VLM, else tiny.
        generator: hub id, folder or .safetensors of a diffusion model; default: shapes-sd, else tiny.

    Returns:
        The trace (what `trace.json` holds).
    """
    import torch

    from mmkit.agents import Assistant, Session

    from .demo_report import write_report

    started = time.perf_counter()
    _quiet_library_logs()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = pick_models(vlm, generator)
    tiny = tuple(m.role for m in chosen if m.kind == "tiny")
    # The bundled models (tiny or shapes-world) gain little from a second thread, and on a 2-core machine
    # shared with another job two OpenMP threads spin-wait on each other (measured with the tiny models:
    # a generate turn 0.9 s with one thread, 14 s with two). Overrides keep torch's default.
    if all(m.kind != "override" for m in chosen):
        torch.set_num_threads(1)
    banner = tiny_banner(*chosen)
    if tiny:
        print("!" * 100 + "\n" + banner + "\n" + "!" * 100)
    model, gen, models = _load(*chosen)
    for role in ("vlm", "generator"):
        print(f"{role}: {models[role]['kind']} {models[role]['family']} from {models[role]['source']}"
              f" (loaded in {models[role]['load_s']:.2f} s)")
    settings, budget = _settings(*chosen)
    clip = _write_clip(out)
    session_folder = _fresh_session_folder(out)
    assistant = Assistant(model, gen, session=Session(session_folder), budget=budget, settings=settings)
    turns = []
    for request in _requests(clip):
        t0 = time.perf_counter()
        result = assistant.ask(request.text, videos=[out / clip["file"]] if request.video else ())
        turns.append(_turn_record(request, result, time.perf_counter() - t0))
        print(_summary_line(turns[-1]))
    trace = {"note": banner, "tiny": list(tiny), "models": models,
             "settings": settings.model_dump(mode="json"), "budget": budget.model_dump(mode="json"),
             "session": session_folder.name, "media": {m.handle: m.file for m in assistant.session.media},
             "video": clip, "turns": turns, "seconds": time.perf_counter() - started}
    atomic_write_json(out / "trace.json", trace)
    write_report(out / "report.html", trace)
    print(f"done in {time.perf_counter() - started:.1f} s -> {(out / 'report.html').resolve()}")
    if tiny:
        print(f"(tiny random checkpoints for: {', '.join(tiny)}; see the banner at the top)")
    return trace


if __name__ == "__main__":
    run_demo()
