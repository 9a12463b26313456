"""The rule router on an English + Chinese corpus, with and without images, and the phrase reader."""
import pytest

from mmkit.agents import ObjectQuery, RouteRequest, RuleRouter, canonical_prompt, find_references, parse_object

ROUTER = RuleRouter()

# (text, attached images, session images, route, intent)
CORPUS = [
    ("draw a red circle", 0, 0, "generate", "text_to_image"),
    ("画一个红色的圆", 0, 0, "generate", "text_to_image"),
    ("generate an image of a green triangle on the left", 0, 0, "generate", "text_to_image"),
    ("给我画一个左边的绿色三角形", 0, 0, "generate", "text_to_image"),
    ("a red circle", 0, 0, "generate", "text_to_image"),
    ("一个蓝色的正方形", 0, 0, "generate", "text_to_image"),
    ("draw a red circle", 1, 0, "generate", "text_to_image"),
    ("a red circle", 1, 0, "edit", "img2img"),
    ("replace the red circle with a blue square", 0, 1, "edit", "replace"),
    ("把红色的圆换成蓝色的方块", 0, 1, "edit", "replace"),
    ("change the circle into a yellow star", 1, 0, "edit", "replace"),
    ("将红色的圆替换为绿色的三角形", 1, 0, "edit", "replace"),
    ("remove the blue square", 0, 1, "edit", "remove"),
    ("去掉蓝色的方块", 0, 1, "edit", "remove"),
    ("make it darker", 1, 0, "edit", "img2img"),
    ("make it darker", 0, 1, "edit", "img2img"),
    ("把它变暗", 1, 0, "edit", "img2img"),
    ("where is the triangle?", 1, 0, "understand", "ground"),
    ("三角形在哪里？", 1, 0, "understand", "ground"),
    ("show me the red circle", 0, 1, "understand", "ground"),
    ("框出红色的圆", 0, 1, "understand", "ground"),
    ("what colour is the square?", 1, 0, "understand", "answer"),
    ("正方形是什么颜色？", 1, 0, "understand", "answer"),
    ("how many shapes are there?", 0, 2, "understand", "answer"),
    ("describe image 1", 0, 1, "understand", "describe"),
    ("描述这张图", 0, 1, "understand", "describe"),
    ("这张图里有什么？", 1, 0, "understand", "describe"),
    ("What is the capital of France?", 0, 0, "understand", "answer"),
    # routes that need an image, asked with none anywhere: a clarifying answer, no model call
    ("describe", 0, 0, "understand", "clarify"),
    ("描述这张图", 0, 0, "understand", "clarify"),
    ("where is the triangle?", 0, 0, "understand", "clarify"),
    ("replace the red circle with a blue square", 0, 0, "understand", "clarify"),
    ("把红色的圆换成蓝色的方块", 0, 0, "understand", "clarify"),
    ("what happens in the video?", 0, 0, "understand", "clarify"),
]


@pytest.mark.parametrize("text,attached,in_session,route,intent", CORPUS)
def test_corpus(text, attached, in_session, route, intent):
    decision = ROUTER.decide(RouteRequest(text=text, attached_images=attached, session_images=in_session))
    assert (decision.route, decision.intent) == (route, intent), decision.reason
    assert decision.language == ("zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en")
    assert decision.reason and decision.source == "rules"


@pytest.mark.parametrize("text,target,replacement,prompt", [
    ("replace the red circle with a blue square", "the red circle", "a blue square", "a blue square"),
    ("Replace the red circle in image 2 with a blue square.", "the red circle", "a blue square", "a blue square"),
    ("swap the green triangle for a purple star", "the green triangle", "a purple star", "a purple star"),
    ("把红色的圆换成蓝色的方块", "红色的圆", "蓝色的方块", "一个蓝色的正方形"),
    ("把左边的红色的圆改成黄色的星星。", "左边的红色的圆", "黄色的星星", "一个黄色的五角星"),
    ("用绿色的三角形替换红色的圆", "红色的圆", "绿色的三角形", "一个绿色的三角形"),
])
def test_replace_phrases(text, target, replacement, prompt):
    decision = ROUTER.decide(RouteRequest(text=text, session_images=2))
    assert (decision.target, decision.replacement, decision.prompt) == (target, replacement, prompt)


def test_ground_target_and_draw_flag():
    plain = ROUTER.decide(RouteRequest(text="where is the blue square?", attached_images=1))
    shown = ROUTER.decide(RouteRequest(text="show me the blue square", attached_images=1))
    zh = ROUTER.decide(RouteRequest(text="框出红色的圆", attached_images=1))
    assert (plain.target, plain.draw) == ("the blue square", False)
    assert (shown.target, shown.draw) == ("the blue square", True)
    assert (zh.target, zh.draw) == ("红色的圆", True)


def test_generate_prompt_is_canonical_for_the_shapes_world():
    assert ROUTER.decide(RouteRequest(text="draw a red circle")).prompt == "a red circle"
    assert ROUTER.decide(RouteRequest(text="画一个红色的圆")).prompt == "一个红色的圆"
    assert ROUTER.decide(RouteRequest(text="please draw me a cat on a sofa")).prompt == "a cat on a sofa"


def test_video_questions():
    with_video = ROUTER.decide(RouteRequest(text="what happens in the video?", attached_videos=1))
    only_video = ROUTER.decide(RouteRequest(text="what moves first?", session_videos=1))
    assert (with_video.route, with_video.intent) == ("understand", "video")
    assert only_video.intent == "video"


def test_references():
    assert find_references("make image 2 darker") == ("image 2",)
    assert find_references("describe the last image and video 1") == ("last", "video 1")
    assert find_references("描述这张图") == ("last",)
    assert find_references("把图2里的圆换成方块") == ("image 2",)
    assert find_references("draw a red circle") == ()


def test_reference_without_attachment_makes_plain_text_an_edit():
    decision = ROUTER.decide(RouteRequest(text="a blue star in image 1", session_images=1))
    assert (decision.route, decision.intent, decision.references) == ("edit", "img2img", ("image 1",))


@pytest.mark.parametrize("text,expected", [
    ("the red circle", ObjectQuery(colour="red", kind="circle")),
    ("a blue square on the left", ObjectQuery(colour="blue", kind="square", position="left")),
    ("the shape at the top right", None),
    ("the triangle", ObjectQuery(kind="triangle")),
    ("蓝色的方块", ObjectQuery(colour="blue", kind="square")),
    ("左上角的紫色星星", ObjectQuery(colour="purple", kind="star", position="top left")),
    ("a cat", None),
])
def test_parse_object(text, expected):
    assert parse_object(text) == expected


def test_canonical_prompt():
    assert canonical_prompt("蓝色的方块", "zh") == "一个蓝色的正方形"
    assert canonical_prompt("a red circle on the left and a blue square on the right", "en") == \
        "a red circle on the left and a blue square on the right"
    assert canonical_prompt("a cat", "en") == "a cat"


@pytest.mark.parametrize(
    "text, target, draw",
    [
        ("where is the red circle? mark it", "the red circle", True),
        ("where is the red circle?", "the red circle", False),
        ("find the blue square. thanks", "the blue square", False),
        ("框出红色的圆。谢谢", "红色的圆", True),
    ],
)
def test_ground_target_stops_at_sentence_punctuation(text, target, draw):
    decision = RuleRouter().decide(RouteRequest(text=text, attached_images=1))
    assert (decision.route, decision.intent, decision.target, decision.draw) == ("understand", "ground", target, draw)
