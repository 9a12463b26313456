"""One smoke run of every loop with the tiny real checkpoints (random weights: structure and records only)."""
import pytest

from mmkit.agents import AgentSettings, Assistant, Budget, Session
from mmkit.understand.answer import Box


@pytest.mark.slow
def test_every_loop_with_tiny_checkpoints(tmp_path):
    from mmkit.generate.generator import ImageGenerator
    from mmkit.testing import tiny_checkpoint, tiny_diffusion_checkpoint
    from mmkit.understand.model import VisionLanguageModel

    vlm = VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"), device="cpu", dtype="float32")
    generator = ImageGenerator.from_pretrained(str(tiny_diffusion_checkpoint("sd15")), progress=False)
    settings = AgentSettings(width=64, height=64, steps=2, chat_tokens=8)
    assistant = Assistant(vlm, generator, session=Session(tmp_path / "s"), budget=Budget(attempts=2),
                          settings=settings)

    generated = assistant.ask("draw a red circle")
    kinds = [s.kind for s in generated.turn.steps]
    assert kinds[0] == "route" and kinds[1:3] == ["generate", "check"] and len(kinds) in (3, 5)
    assert generated.turn.status in ("done", "budget_spent") and generated.images[0].size == (64, 64)
    assert generated.turn.steps[1].seeds == (0,) and generated.turn.steps[2].verdict.checker == "vlm"

    darker = assistant.ask("make it darker")
    assert darker.decision.intent == "img2img" and darker.turn.steps[1].tool == "generator.image_to_image"

    replaced = assistant.ask("replace the red circle with a blue square")
    assert [s.kind for s in replaced.turn.steps][:2] == ["route", "ground"]
    assert replaced.turn.status in ("failed", "done", "budget_spent")

    answered = assistant.ask("what colour is the square?")
    assert answered.route == "understand" and answered.turn.steps[-1].tool == "vlm.chat"
    assert isinstance(answered.reply, str)

    # pin the grounding so the real inpainting path runs too
    class Pinned:
        def __getattr__(self, name):
            return getattr(vlm, name)

        def ground(self, image, query, **kw):
            answer = vlm.ground(image, query, **kw)
            return answer.model_copy(update={"boxes": (Box(x1=16, y1=16, x2=40, y2=40, label=query),)})

    assistant.vlm = Pinned()
    inpainted = assistant.ask("replace the red circle in image 1 with a blue square")
    inpaints = [s for s in inpainted.turn.steps if s.kind == "inpaint"]
    assert inpaints and inpaints[0].params["mask_dilate"] == 4 and inpaints[0].tool == "generator.inpaint"
    assert inpainted.images[0].size == (64, 64)
    assert len(Session.resume(tmp_path / "s").turns) == 5
