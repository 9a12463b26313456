"""Sessions: handles, persistence after each step, resume, and a crash mid-turn losing nothing saved."""
import json

import pytest
from PIL import Image

from mmkit.agents import Assistant, Budget, OracleChecker, Session
from mmkit.agents.fakes import ShapesGenerator, ShapesVLM
from mmkit.exceptions import UsageError
from mmkit.shapes import detect, render, scene_from_prompt


def test_save_and_resume(tmp_path):
    folder = tmp_path / "chat"
    assistant = Assistant(ShapesVLM(), ShapesGenerator(), checker=OracleChecker(), session=Session(folder))
    assistant.ask("draw a red circle")
    assistant.ask("replace the red circle with a blue square")
    saved = json.loads((folder / "session.json").read_text())
    assert [t["status"] for t in saved["turns"]] == ["done", "done"]
    assert [m["file"] for m in saved["media"]] == ["images/image-1.png", "images/image-2.png"]
    assert saved["turns"][1]["decision"]["target"] == "the red circle"
    assert {p.name for p in (folder / "steps").iterdir()} == {
        "t001-s02-attempt1.png", "t002-s02-ground.png", "t002-s03-mask.png", "t002-s04-attempt1.png"}

    resumed = Assistant(ShapesVLM(), ShapesGenerator(), checker=OracleChecker(), session=Session.resume(folder))
    assert resumed.session.handles() == ("image 1", "image 2")
    assert [(d.colour, d.kind) for d in detect(resumed.session.image("image 2"))] == [("blue", "square")]
    answer = resumed.ask("what colour is the square in the last image?")
    assert answer.reply == "blue" and answer.turn.inputs == ("image 2",)
    assert len(Session.resume(folder).turns) == 3


def test_new_session_refuses_an_existing_folder(tmp_path):
    Session(tmp_path)
    with pytest.raises(UsageError, match="already holds a session"):
        Session(tmp_path)
    with pytest.raises(UsageError, match="no session"):
        Session.resume(tmp_path / "elsewhere")


def test_handles_and_references(tmp_path):
    session = Session(tmp_path / "s")
    image = render(scene_from_prompt("a red circle"))
    assert session.add_image(image) == "image 1"
    assert session.add_image(image, origin="annotated") == "image 2"
    assert session.resolve("last") == "image 1"  # annotated copies are not "the last image"
    assert session.resolve("image 2") == "image 2"
    with pytest.raises(UsageError, match="no such media handle") as err:
        session.resolve("image 9")
    assert "image 1" in str(err.value)
    assert Image.open(tmp_path / "s" / "images" / "image-1.png").size == (64, 64)


class Crash(RuntimeError):
    pass


class CrashingGenerator(ShapesGenerator):
    def inpaint(self, *args, **kwargs):
        raise Crash("the generator process died")


def test_crash_mid_turn_keeps_completed_steps(tmp_path):
    folder = tmp_path / "chat"
    session = Session(folder)
    session.add_image(render(scene_from_prompt("a red circle")))
    assistant = Assistant(ShapesVLM(), CrashingGenerator(), checker=OracleChecker(), session=session,
                          budget=Budget(attempts=2))
    with pytest.raises(Crash):
        assistant.ask("replace the red circle with a blue square")
    # steps 1 (route) and 2 (ground) and 3 (mask) completed before the crash in the inpaint call
    saved = json.loads((folder / "session.json").read_text())
    assert saved["turns"][0]["status"] == "running"
    assert [s["kind"] for s in saved["turns"][0]["steps"]] == ["route", "ground", "mask"]
    assert (folder / "steps" / "t001-s02-ground.png").is_file() and (folder / "steps" / "t001-s03-mask.png").is_file()
    resumed = Session.resume(folder)
    assert resumed.turns[0].status == "interrupted" and len(resumed.turns[0].steps) == 3
    assert resumed.handles() == ("image 1",)


def test_crash_after_step_two_of_generation(tmp_path):
    class DiesOnCheck(OracleChecker):
        def check(self, image, expectation):
            raise Crash("checker died")

    folder = tmp_path / "g"
    assistant = Assistant(ShapesVLM(), ShapesGenerator(), checker=DiesOnCheck(), session=Session(folder))
    with pytest.raises(Crash):
        assistant.ask("draw a red circle")
    resumed = Session.resume(folder)
    steps = resumed.turns[0].steps
    assert [s.kind for s in steps] == ["route", "generate"] and steps[1].seeds == (0,)
    saved = Image.open(folder / steps[1].files[0])
    assert [(d.colour, d.kind) for d in detect(saved.convert("RGB"))] == [("red", "circle")]
