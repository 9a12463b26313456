"""`report.html` for the demo: one self-contained page built from the demo's trace.

At the top: the tiny-model banner (when the run used random checkpoints), the models and a table of turn
latencies; then one section per turn with the request, the route and why, the reply, the images (inputs,
attempts, grounding drawings, masks, outputs), the check verdict and every step's timing. Images are
linked relatively (the page sits beside `session/`), so the folder can be moved or zipped as a whole.

This module knows the trace's layout and HTML; it knows nothing about models or the agent layer.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .files import atomic_write_text

__all__ = ["write_report", "render_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC",sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.banner{background:#b00020;color:#fff;padding:1em 1.2em;border-radius:6px;font-weight:600;white-space:pre-line}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em} td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top} th{background:#f4f4f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.request{font-size:1.25em;background:#eef4ff;padding:.5em .8em;border-radius:6px}
.reply{background:#f6f6f6;padding:.5em .8em;border-radius:6px;white-space:pre-wrap}
.pass{color:#0a7d32;font-weight:600} .fail{color:#b00020;font-weight:600} .na{color:#777}
figure{display:inline-block;margin:.4em .8em .4em 0;text-align:center;vertical-align:top}
figure img{width:192px;image-rendering:pixelated;border:1px solid #ccc;background:#fff}
figure.strip img{width:auto;height:96px}
figcaption{font-size:.8em;color:#555;max-width:192px}
code{font-size:.85em;word-break:break-word}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _verdict_word(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return '<span class="na">none</span>'
    passed = verdict["passed"]
    return {True: '<span class="pass">pass</span>', False: '<span class="fail">fail</span>'}.get(
        passed, '<span class="na">nothing to check</span>')


def _figure(src: str, caption: str, cls: str = "") -> str:
    return (f'<figure class="{cls}"><a href="{_e(src)}"><img src="{_e(src)}" alt="{_e(caption)}"></a>'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _images(turn: dict[str, Any], trace: dict[str, Any]) -> list[str]:
    """(relative path, caption) figures: the turn's input images, its step images, its output images."""
    session, media = trace["session"], trace.get("media", {})
    figures = []
    for handle in turn["inputs"]:
        if handle.startswith("image") and media.get(handle):
            figures.append(_figure(f"{session}/{media[handle]}", f"input: {handle}"))
    for step in turn["steps"]:
        for file in step["files"]:
            name = file.rsplit("-", 1)[-1].removesuffix(".png")
            figures.append(_figure(f"{session}/{file}", f"step {step['index']} {step['kind']}: {name}"))
    for handle in turn["outputs"]:
        if media.get(handle):
            figures.append(_figure(f"{session}/{media[handle]}", f"output: {handle}"))
    return figures


def _verdict_table(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return ""
    rows = "".join(f"<tr><td>{_e(i['question'])}</td><td>{_e(i['expected'])}</td><td>{_e(i['observed'])}</td>"
                   f"<td>{_verdict_word({'passed': i['passed']})}</td></tr>" for i in verdict["items"])
    head = f"<p>Verdict ({_e(verdict['checker'])} checker, final attempt): {_verdict_word(verdict)}</p>"
    return head + ("<table><tr><th>question</th><th>expected</th><th>observed</th><th></th></tr>" + rows + "</table>"
                   if rows else "")


def _steps_table(turn: dict[str, Any]) -> str:
    rows = []
    for s in turn["steps"]:
        note = s["error"] or s["text"] or ""
        rows.append(f"<tr><td class=num>{s['index']}</td><td>{_e(s['kind'])}</td><td><code>{_e(s['tool'])}</code></td>"
                    f"<td class=num>{_e(s['attempt'] or '')}</td><td class=num>{s['seconds']:.3f}</td>"
                    f"<td>{_e(', '.join(map(str, s['seeds'])))}</td>"
                    f"<td><code>{_e(json.dumps(s['params'], ensure_ascii=False))}</code></td><td>{_e(note[:200])}</td></tr>")
    return ("<table><tr><th>#</th><th>step</th><th>tool</th><th>attempt</th><th>seconds</th><th>seeds</th>"
            "<th>parameters</th><th>text / error</th></tr>" + "".join(rows) + "</table>")


def _turn_section(turn: dict[str, Any], trace: dict[str, Any]) -> str:
    parts = [f'<section id="turn-{turn["index"]}"><h2>Turn {turn["index"]} · {_e(turn["language"])} · '
             f'{_e(turn["route"])}/{_e(turn["intent"])}</h2>',
             f'<p class="request" lang="{_e(turn["language"])}">{_e(turn["request"])}</p>',
             f"<p><b>Route</b> {_e(turn['route'])}/{_e(turn['intent'])} — {_e(turn['reason'])}"
             + "".join(f"; {k} <code>{_e(turn[k])}</code>" for k in ("target", "replacement", "prompt") if turn[k])
             + f". <b>Status</b> {_e(turn['status'])}. <b>Time</b> {turn['seconds']:.2f} s.</p>",
             f'<p><b>Reply</b></p><div class="reply">{_e(turn["reply"]) or "(empty)"}</div>']
    if turn["truth"]:
        parts.append(f"<p><b>Right answer</b> {_e(turn['truth'])}</p>")
    if any(h.startswith("video") for h in turn["inputs"]):
        clip = trace["video"]
        parts.append(f'<p>Video: <a href="{_e(clip["file"])}">{_e(clip["file"])}</a> ({clip["frames"]} frames, '
                     f'{clip["fps"]:g} fps; every second frame below)</p>' + _figure(clip["strip"], "clip frames", "strip"))
    parts += _images(turn, trace)
    parts += [_verdict_table(turn["verdict"]), _steps_table(turn), "</section>"]
    return "\n".join(parts)


def _summary(trace: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><td class=num>{t["index"]}</td><td>{_e(t["language"])}</td><td><a href="#turn-{t["index"]}">'
        f'{_e(t["request"])}</a></td><td>{_e(t["route"])}/{_e(t["intent"])}</td><td>{_e(t["status"])}</td>'
        f'<td>{_verdict_word(t["verdict"])}</td><td class=num>{len(t["steps"])}</td>'
        f'<td class=num>{t["seconds"]:.2f}</td></tr>' for t in trace["turns"])
    total = sum(t["seconds"] for t in trace["turns"])
    return ("<h2>Turn latencies</h2><table><tr><th>turn</th><th>lang</th><th>request</th><th>route</th>"
            "<th>status</th><th>verdict</th><th>steps</th><th>seconds</th></tr>" + rows
            + f'<tr><th colspan=7>all turns</th><th class=num>{total:.2f}</th></tr></table>')


def render_report(trace: dict[str, Any]) -> str:
    """The page for `trace` (what `mmkit.demo.run_demo` returns) as an HTML string."""
    models = trace["models"]
    banner = f'<div class="banner">{_e(trace["note"])}</div>' if trace.get("note") else ""
    model_rows = "".join(f"<tr><td>{role}</td><td>{_e(m['kind'])}</td><td>{_e(m['family'])}</td>"
                         f"<td><code>{_e(m['source'])}</code></td><td class=num>{m['load_s']:.2f}</td></tr>"
                         for role, m in models.items())
    return "\n".join([
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mmkit demo</title><style>{_STYLE}</style></head><body>",
        "<h1>mmkit demo: a scripted assistant session</h1>", banner,
        f"<p>{len(trace['turns'])} turns in English and Chinese through <code>mmkit.agents.Assistant</code>; "
        f"total run {trace['seconds']:.1f} s. Files: <a href=\"trace.json\">trace.json</a>, "
        f"<a href=\"{_e(trace['session'])}/session.json\">{_e(trace['session'])}/session.json</a>.</p>",
        "<table><tr><th>role</th><th>kind</th><th>family</th><th>source</th><th>load s</th></tr>" + model_rows + "</table>",
        f"<p><code>{_e(json.dumps(trace['settings']))}</code> budget <code>{_e(json.dumps(trace['budget']))}</code></p>",
        _summary(trace), *(_turn_section(t, trace) for t in trace["turns"]), "</body></html>", ""])


def write_report(path: str | Path, trace: dict[str, Any]) -> Path:
    """Write `render_report(trace)` atomically to `path` (beside the trace's session folder)."""
    return atomic_write_text(path, render_report(trace))
