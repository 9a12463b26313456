"""The generate / edit / understand loops with the shipped fakes: real images, real oracle verdicts."""
import numpy as np
import pytest

from mmkit.agents import AgentSettings, Assistant, Budget, OracleChecker, Session, VlmChecker, box_mask
from mmkit.agents.checks import Expectation, ObjectQuery
from mmkit.agents.fakes import ScriptedVLM, ShapesGenerator, ShapesVLM
from mmkit.shapes import detect, render, scene_from_prompt
from mmkit.understand.answer import Answer, Box


def _assistant(faults=(), budget=Budget(attempts=3), checker=None, vlm=None, **kw):
    vlm = vlm or ShapesVLM()
    return Assistant(vlm, ShapesGenerator(faults=faults), checker=checker or OracleChecker(), budget=budget,
                     settings=AgentSettings(seed=10, guidance_scale=7.0, guidance_step=2.0), **kw)


def _kinds(turn):
    return [(s.kind, s.attempt) for s in turn.steps]


def test_generate_passes_first_try():
    result = _assistant().ask("draw a red circle on the left")
    assert result.route == "generate" and result.turn.status == "done"
    assert _kinds(result.turn) == [("route", None), ("generate", 1), ("check", 1)]
    assert [(d.colour, d.kind, d.position) for d in detect(result.images[0])] == [("red", "circle", "left")]
    assert result.handles == ("image 1",)
    assert result.turn.steps[2].verdict.passed is True


def test_generate_retries_with_new_seed_and_more_guidance():
    assistant = _assistant(faults=["wrong_colour", "wrong_kind"])
    result = assistant.ask("画一个红色的圆")
    gens = [s for s in result.turn.steps if s.kind == "generate"]
    checks = [s for s in result.turn.steps if s.kind == "check"]
    assert result.turn.status == "done"
    assert [s.seeds for s in gens] == [(10,), (11,), (12,)]
    assert [s.params["guidance_scale"] for s in gens] == [7.0, 9.0, 11.0]
    assert [c.verdict.passed for c in checks] == [False, False, True]
    assert "orange circle" in checks[0].verdict.items[0].observed  # the fault drew the next palette colour
    assert assistant.generator.calls[0][1] == "一个红色的圆"


def test_generate_budget_exhausted_keeps_best_image():
    assistant = _assistant(faults=["missing", "wrong_colour"], budget=Budget(attempts=2))
    result = assistant.ask("draw a red circle on the left and a blue square on the right")
    assert result.turn.status == "budget_spent"
    checks = [s.verdict for s in result.turn.steps if s.kind == "check"]
    assert [[i.passed for i in v.items] for v in checks] == [[False, False], [False, True]]
    assert "Budget spent" in result.reply and "expected present" in result.reply
    # the best attempt (half right) is kept, not the empty first one
    assert [(d.colour, d.kind) for d in detect(result.images[0])] == [("orange", "circle"), ("blue", "square")]


def test_generate_seconds_budget_stops_before_second_attempt():
    result = _assistant(faults=["wrong_colour"], budget=Budget(attempts=5, seconds=1e-6)).ask("draw a red circle")
    assert result.turn.status == "budget_spent"
    assert [k for k, _ in _kinds(result.turn)] == ["route", "generate", "check"]


def test_generate_unparseable_prompt_skips_checks():
    result = _assistant().ask("draw a cat on a sofa")
    check = result.turn.steps[-1]
    assert result.turn.status == "done" and check.verdict.passed is None and check.verdict.items == ()


def _with_scene(assistant, prompt):
    return assistant.session.add_image(render(scene_from_prompt(prompt)), origin="user")


def test_edit_replace_success_en_and_zh():
    for text in ("replace the red circle with a blue square", "把红色的圆换成蓝色的方块"):
        assistant = _assistant()
        _with_scene(assistant, "a red circle on the left and a green triangle on the right")
        result = assistant.ask(text)
        assert result.route == "edit" and result.turn.status == "done", result.reply
        assert _kinds(result.turn) == [("route", None), ("ground", None), ("mask", None), ("inpaint", 1), ("check", 1)]
        found = {(d.colour, d.kind, d.position) for d in detect(result.images[0])}
        assert found == {("blue", "square", "left"), ("green", "triangle", "right")}
        verdict = result.turn.steps[-1].verdict
        assert [i.expected for i in verdict.items] == ["present", "absent"] and verdict.passed
        # the inpainting prompt says where the grounded box is, in the request's language
        inpaint = next(s for s in result.turn.steps if s.kind == "inpaint")
        assert inpaint.params["prompt"] == ("a blue square on the left" if text.startswith("replace") else "左边一个蓝色的正方形")


def test_edit_retry_grows_dilation_then_budget_spent():
    assistant = _assistant(faults=["wrong_colour", "missing"], budget=Budget(attempts=2))
    _with_scene(assistant, "a red circle")
    result = assistant.ask("replace the red circle with a blue square")
    inpaints = [s for s in result.turn.steps if s.kind == "inpaint"]
    assert [s.params["mask_dilate"] for s in inpaints] == [4, 6]
    assert [s.seeds for s in inpaints] == [(10,), (11,)]
    assert result.turn.status == "budget_spent"


def test_edit_target_not_found_fails_without_inpainting():
    assistant = _assistant()
    _with_scene(assistant, "a red circle")
    result = assistant.ask("replace the purple star with a blue square")
    assert result.turn.status == "failed" and "could not find the purple star" in result.reply
    assert [k for k, _ in _kinds(result.turn)] == ["route", "ground"]
    assert result.turn.steps[-1].error == "no box for the target" and result.handles == ()


def test_edit_remove_and_img2img():
    assistant = _assistant()
    _with_scene(assistant, "a red circle on the left and a blue square on the right")
    removed = assistant.ask("去掉蓝色的方块")
    assert removed.turn.status == "done"
    assert [(d.colour, d.kind) for d in detect(removed.images[0])] == [("red", "circle")]
    darker = assistant.ask("make it darker")
    assert darker.decision.intent == "img2img" and darker.turn.inputs == ("image 2",)
    before, after = assistant.session.image("image 2"), darker.images[0]
    assert np.asarray(after.convert("L")).mean() < 0.7 * np.asarray(before.convert("L")).mean()


def test_understand_multi_turn_and_ground_drawn(tmp_path):
    vlm = ShapesVLM()
    assistant = _assistant(vlm=vlm)
    assistant.ask("draw a green triangle on the right")
    answer = assistant.ask("what colour is the triangle?")
    assert answer.route == "understand" and answer.reply == "green"
    assert assistant.ask("三角形是什么颜色？").reply == "绿色"
    located = assistant.ask("show me the triangle")
    assert located.decision.draw and located.handles == ("image 2",)
    assert assistant.session.entry("image 2").origin == "annotated"
    # later implicit references skip the annotated copy
    assert assistant.ask("how many shapes are there?").turn.inputs == ("image 1",)
    assert assistant.session.history()[0] == ("what colour is the triangle?", "green")


def test_understand_passes_history_to_the_vlm():
    vlm = ScriptedVLM(["a red circle", "it is red"])
    assistant = Assistant(vlm, ShapesGenerator(), checker=OracleChecker())
    image = render(scene_from_prompt("a red circle"))
    assistant.ask("describe this image", images=[image])
    assistant.ask("what colour is it?")
    assert vlm.calls == [("chat", "describe this image"), ("chat", "what colour is it?")]
    chat = assistant.session.turns[-1].steps[-1]
    assert chat.params["history_turns"] == 1 and chat.text == "it is red"


def test_understand_sends_no_history_when_told_not_to():
    sent = []

    class Recording(ScriptedVLM):
        def chat(self, messages_or_text, **kwargs):
            sent.append(messages_or_text)
            return super().chat(messages_or_text, **kwargs)

    vlm = Recording(["a red circle", "it is red"])
    assistant = Assistant(vlm, ShapesGenerator(), checker=OracleChecker(), settings=AgentSettings(chat_history=0))
    image = render(scene_from_prompt("a red circle"))
    assistant.ask("describe this image", images=[image])
    assistant.ask("what colour is it?")
    assert [len(m) for m in sent] == [1, 1] and sent[1][0]["content"][-1]["text"] == "what colour is it?"
    assert assistant.session.turns[-1].steps[-1].params["history_turns"] == 0
    assert assistant.session.history(0) == [] and len(assistant.session.history()) == 2


def test_clarify_without_image_calls_no_model():
    vlm = ScriptedVLM([])
    result = Assistant(vlm, ShapesGenerator()).ask("describe")
    assert result.decision.intent == "clarify" and result.turn.status == "clarify"
    assert "Attach one" in result.reply and vlm.calls == []


def test_video_question(make_video, tmp_path):
    video = make_video(tmp_path / "clip.mp4", 8)
    vlm = ShapesVLM()
    result = Assistant(vlm, ShapesGenerator(), session=Session(tmp_path / "s")).ask(
        "what happens in the video?", videos=[video])
    assert result.decision.intent == "video" and result.reply == "Shapes move in the video."
    assert result.turn.steps[-1].params["videos"] == ["video 1"]
    assert (tmp_path / "s" / "videos" / "video-1.mp4").read_bytes() == video.read_bytes()


def test_vlm_checker_with_scripted_answers():
    image = render(scene_from_prompt("a red circle on the left"))
    box = Box(x1=2, y1=23, x2=20, y2=41)
    vlm = ScriptedVLM(["Yes.", Answer(text="[]", boxes=(box,)), "没有"])
    expectation = Expectation(present=(ObjectQuery(colour="red", kind="circle", position="left"),),
                              absent=(ObjectQuery(colour="blue", kind="square"),))
    verdict = VlmChecker(vlm).check(image, expectation)
    assert verdict.passed and [i.observed for i in verdict.items] == ["yes", "left", "no"]
    assert vlm.calls[0][1] == "Is there a red circle in the image? Answer yes or no."  # position: by grounding
    assert vlm.calls[2][1] == "Is there a blue square in the image? Answer yes or no."


def test_vlm_checker_absent_with_position_accepts_one_elsewhere():
    image = render(scene_from_prompt("a red circle on the left"))
    left, right = Box(x1=2, y1=23, x2=20, y2=41), Box(x1=44, y1=23, x2=62, y2=41)
    absent = Expectation(absent=(ObjectQuery(colour="red", kind="circle", position="right"),))
    verdict = VlmChecker(ScriptedVLM(["yes", Answer(text="[]", boxes=(left,))])).check(image, absent)
    assert verdict.passed and [i.observed for i in verdict.items] == ["left"]
    verdict = VlmChecker(ScriptedVLM(["yes", Answer(text="[]", boxes=(right,))])).check(image, absent)
    assert verdict.passed is False and verdict.items[0].expected == "not right"


def test_vlm_checker_fails_on_no():
    vlm = ScriptedVLM(["no"])
    verdict = VlmChecker(vlm).check(render(scene_from_prompt("a red circle")),
                                    Expectation(present=(ObjectQuery(colour="red", kind="circle"),)))
    assert verdict.passed is False and verdict.reasons == (verdict.items[0].question + ": expected yes, observed no",)


def test_box_mask_rounds_outward():
    mask = box_mask((16, 16), Box(x1=2.5, y1=3.2, x2=7.1, y2=9.0))
    ys = [y for y in range(16) if mask.getpixel((4, y))]
    xs = [x for x in range(16) if mask.getpixel((x, 5))]
    assert (min(xs), max(xs), min(ys), max(ys)) == (2, 7, 3, 8)


def test_unknown_handle_is_a_usage_error():
    from mmkit.exceptions import UsageError

    assistant = _assistant()
    _with_scene(assistant, "a red circle")
    with pytest.raises(UsageError, match="no such media handle"):
        assistant.ask("replace the red circle in image 5 with a blue square")
