"""The deterministic rule router: one request -> one `RouteDecision` (understand, generate or edit).

Rules, checked in this order (English and Chinese; the language is "zh" when the text has CJK):

1. Replace: "replace X with Y", "change/turn X into/to Y", "swap X for Y", "把X换成/改成/变成/替换成Y",
   "将X替换为Y" -> edit/replace with target X, replacement Y. Remove: "remove/delete/erase X",
   "去掉/删除/删掉X", "把X去掉" -> edit/remove.
2. Locate: "where is X", "find/locate/point to X", "show me X", "X在哪(里)", "找到/框出/标出X" -> understand/ground
   (drawn when the user asks to show/mark/框出/标出).
3. Describe: "describe", "what is in", "caption", "描述", "图里有什么" -> understand/describe.
4. Draw: "draw/generate/create/paint/render/make an image of X", "画/生成/来一张/给我画X" -> generate.
5. Adjust with an image: "make it darker", "brighter", "more blue", "把它变暗/调亮" -> edit/img2img.
6. Questions ("?", "？", what/how/is/are/does/which/why, 吗/几/什么/哪/是否) -> understand/answer, or
   understand/video when the only media are videos.
7. Anything else: with an image attached -> edit/img2img (the text is the prompt); otherwise generate.

An image "is available" when one is attached to the request, referenced ("image 2", "the last image",
"这张图", "上一张图"), or already in the session. When a route needs an image (edit, ground, describe,
answer) and none is available, the decision is understand/clarify: the assistant answers with a question
back, calls no model, and the turn is recorded (a conversation should not end in an exception because a
user forgot the picture). References to handles that do not exist are resolved by the session, which
raises `UsageError` naming the handles it has.

This module knows text only: no images, no models, no sessions.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .phrases import Language, canonical_prompt, detect_language

__all__ = ["Route", "Intent", "RouteRequest", "RouteDecision", "RuleRouter", "find_references"]

Route = Literal["understand", "generate", "edit"]
Intent = Literal["describe", "answer", "ground", "video", "clarify", "text_to_image", "replace", "remove", "img2img"]


class RouteRequest(BaseModel):
    """What the router sees: the text and how many media are at hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    attached_images: int = Field(0, ge=0, description="images attached to this request")
    attached_videos: int = Field(0, ge=0)
    session_images: int = Field(0, ge=0, description="images already in the session")
    session_videos: int = Field(0, ge=0)

    @property
    def has_image(self) -> bool:
        return self.attached_images > 0 or self.session_images > 0

    @property
    def has_video(self) -> bool:
        return self.attached_videos > 0 or self.session_videos > 0


class RouteDecision(BaseModel):
    """Where a request goes and what was read from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    route: Route
    intent: Intent
    target: str | None = Field(None, description="the object to find / replace / remove, as the user wrote it")
    replacement: str | None = Field(None, description="what the target becomes (edit/replace)")
    prompt: str | None = Field(None, description="the text for the generator (generate, img2img, replace)")
    reason: str = Field(description="which rule decided, in words")
    language: Language = "en"
    draw: bool = Field(False, description="draw grounding boxes on the image (understand/ground)")
    references: tuple[str, ...] = Field((), description="media handles the text names ('image 2', 'last')")
    source: Literal["rules", "model"] = "rules"


_I = re.IGNORECASE
_EN_REPLACE = [
    re.compile(r"\breplace\s+(?P<target>.+?)\s+(?:with|by)\s+(?P<replacement>.+)", _I),
    re.compile(r"\b(?:change|turn|convert|make)\s+(?P<target>.+?)\s+(?:into|to)\s+(?P<replacement>.+)", _I),
    re.compile(r"\bswap\s+(?P<target>.+?)\s+(?:for|with)\s+(?P<replacement>.+)", _I),
]
_ZH_REPLACE = [
    re.compile(r"[把将](?P<target>.+?)(?:换成|改成|变成|替换成|替换为|改为|换为|画成)(?P<replacement>.+)"),
    re.compile(r"用(?P<replacement>.+?)(?:替换|代替|替代)(?P<target>.+)"),
]
_EN_REMOVE = re.compile(r"\b(?:remove|delete|erase|get rid of)\s+(?P<target>.+)", _I)
_ZH_REMOVE = [re.compile(r"(?:去掉|删除|删掉|移除|擦掉)(?P<target>.+)"),
              re.compile(r"[把将](?P<target>.+?)(?:去掉|删除|删掉|移除|擦掉)")]
# A target ends at sentence punctuation: "where is the red circle? mark it" -> "the red circle".
_EN_GROUND = [re.compile(r"\bwhere(?:'s| is| are)\s+(?P<target>[^?!.;]+)", _I),
              re.compile(r"\b(?P<draw>show me|mark|highlight|box|circle)\s+(?P<target>(?:the|all|every)\b.+)", _I),
              re.compile(r"\b(?:find|locate|point to|point at|detect|ground)\s+(?P<target>[^?!.;]+)", _I)]
_ZH_GROUND = [re.compile(r"(?P<target>.+?)在哪"),
              re.compile(r"(?P<draw>框出|标出|圈出)(?P<target>[^？?。！!；;]+)"),
              re.compile(r"(?:找到|找出|定位|指出)(?P<target>[^？?。！!；;]+)")]
_EN_DESCRIBE = re.compile(r"\b(?:describe|caption|what(?:'s| is) (?:in|on|shown in) (?:this|the|that|it)|"
                          r"what do you see|what does (?:it|this|the image) show)\b", _I)
_ZH_DESCRIBE = re.compile(r"描述|图里有什么|图中有什么|图片里有什么|画面里有什么|这是什么图|说说这张")
_EN_DRAW = re.compile(r"^\s*(?:please\s+)?(?:draw|generate|create|paint|render|sketch|make|produce)\b"
                      r"(?:\s+(?:me|us))?(?:\s+(?:an?\s+)?(?:new\s+)?(?:image|picture|photo)\s+(?:of|with|showing))?\s*", _I)
_ZH_DRAW = re.compile(r"^\s*(?:请)?(?:给我|帮我)?(?:画|生成|来|绘制|做)(?:一张|一幅|张|幅)?(?:图片?|画)?[，,：:]?\s*")
_EN_ADJUST = re.compile(r"\b(?:make (?:it|this|the image|the picture)|more|less|darker|brighter|lighter|"
                        r"sharper|blurr?ier|add|increase|decrease|adjust)\b", _I)
_ZH_ADJUST = re.compile(r"变暗|变亮|调暗|调亮|亮一点|暗一点|更亮|更暗|加上|添加|增加|减少|调整|让它|使它|把它")
_EN_QUESTION = re.compile(r"\?\s*$|^\s*(?:what|how|is|are|does|do|which|why|who|can you tell|count|tell me)\b", _I)
_ZH_QUESTION = re.compile(r"[？?]\s*$|吗|几个|几种|什么|哪|是否|多少|有没有")
_EN_REFS = re.compile(r"\b(?:image|picture|photo|img)\s*#?\s*(\d+)\b|\b(?:the\s+)?(last|previous|latest|this|that)"
                      r"\s+(?:image|picture|photo|one)\b|\b(video)\s*#?\s*(\d+)\b", _I)
_ZH_REFS = re.compile(r"(?:图|图片|第)\s*(\d+)|(这张图|这张图片|这幅图|上一张|最后一张|刚才的图|刚才那张)")
_LEADING = re.compile(r"^(?:the|a|an|all|every|all the)\s+", _I)


def find_references(text: str) -> tuple[str, ...]:
    """Media handles the text names: "image 2", "video 1", or "last" for the latest image."""
    refs: list[str] = []
    for found in _EN_REFS.finditer(text):
        if found.group(1):
            refs.append(f"image {int(found.group(1))}")
        elif found.group(2):
            refs.append("last")
        elif found.group(3):
            refs.append(f"video {int(found.group(4))}")
    for found in _ZH_REFS.finditer(text):
        refs.append(f"image {int(found.group(1))}" if found.group(1) else "last")
    return tuple(dict.fromkeys(refs))


def _clean(phrase: str) -> str:
    """Trim punctuation, trailing references ("in image 2", "在这张图里"), and filler around a phrase."""
    phrase = re.split(r"\s+(?:in|on|from)\s+(?:the\s+)?(?:image|picture|photo|last|this|that|it)\b", phrase, flags=_I)[0]
    phrase = re.sub(r"^(?:在)?(?:这张图|图片?\s*\d*|上一张图?)(?:里|中|上)?的?", "", phrase)
    return phrase.strip().strip(" .,!?;:，。！？；：\"'“”").strip()


class RuleRouter:
    """The default router: keyword and pattern rules in English and Chinese (see the module docstring).

    Deterministic and model-free: the same request always gets the same decision.
    """

    def decide(self, request: RouteRequest) -> RouteDecision:
        """Route one request.

        Args:
            request: the text and the media counts.

        Returns:
            A `RouteDecision`; `understand/clarify` when the route needs an image and none is available.
        """
        text, lang = request.text.strip(), detect_language(request.text)
        refs = find_references(text)
        common = {"language": lang, "references": refs}
        for rule in (self._edit, self._ground, self._describe, self._draw, self._adjust, self._question):
            decision = rule(text, lang, request, common)
            if decision is not None:
                return self._needs_media(decision, request, refs)
        if request.attached_images or (refs and request.session_images):
            return RouteDecision(route="edit", intent="img2img", prompt=_clean(text),
                                 reason="plain description with an image attached: redraw it (img2img)", **common)
        return RouteDecision(route="generate", intent="text_to_image", prompt=canonical_prompt(_clean(text), lang),
                             reason="plain description and no image attached: generate", **common)

    # ------------------------------------------------------------------------------------------ rules
    def _edit(self, text: str, lang: Language, request: RouteRequest, common: dict) -> RouteDecision | None:
        for pattern in (_ZH_REPLACE if lang == "zh" else _EN_REPLACE):
            found = pattern.search(text)
            if found:
                target, replacement = _clean(found["target"]), _clean(found["replacement"])
                if target and replacement:
                    return RouteDecision(route="edit", intent="replace", target=target, replacement=replacement,
                                         prompt=canonical_prompt(_LEADING.sub("", replacement), lang),
                                         reason=f"replace pattern {pattern.pattern[:24]!r}", **common)
        for pattern in (_ZH_REMOVE if lang == "zh" else [_EN_REMOVE]):
            found = pattern.search(text)
            if found and _clean(found["target"]):
                return RouteDecision(route="edit", intent="remove", target=_clean(found["target"]),
                                     reason="remove pattern", **common)
        return None

    def _ground(self, text: str, lang: Language, request: RouteRequest, common: dict) -> RouteDecision | None:
        for pattern in (_ZH_GROUND if lang == "zh" else _EN_GROUND):
            found = pattern.search(text)
            if found and _clean(found["target"]):
                draw = bool(found.groupdict().get("draw")) or bool(re.search(r"\b(?:draw|mark|show)\b|画出|标出|框出", text, _I))
                return RouteDecision(route="understand", intent="ground", target=_clean(found["target"]), draw=draw,
                                     reason="locate pattern", **common)
        return None

    def _describe(self, text: str, lang: Language, request: RouteRequest, common: dict) -> RouteDecision | None:
        if (_ZH_DESCRIBE if lang == "zh" else _EN_DESCRIBE).search(text):
            intent = "video" if request.has_video and not (request.has_image or _refs_image(common)) else "describe"
            return RouteDecision(route="understand", intent=intent, reason="describe keyword", **common)
        return None

    def _draw(self, text: str, lang: Language, request: RouteRequest, common: dict) -> RouteDecision | None:
        found = (_ZH_DRAW if lang == "zh" else _EN_DRAW).match(text)
        if not found or not text[found.end():].strip():
            return None
        rest = _clean(text[found.end():])
        if lang == "en" and re.match(r"(?:it|this|the image|the picture)\b", rest, _I):
            return None  # "make it darker" is an adjustment, not a new picture
        return RouteDecision(route="generate", intent="text_to_image", prompt=canonical_prompt(rest, lang),
                             reason="drawing verb", **common)

    def _adjust(self, text: str, lang: Language, request: RouteRequest, common: dict) -> RouteDecision | None:
        if (request.has_image or common["references"]) and (_ZH_ADJUST if lang == "zh" else _EN_ADJUST).search(text):
            if not (_ZH_QUESTION if lang == "zh" else _EN_QUESTION).search(text):
                return RouteDecision(route="edit", intent="img2img", prompt=_clean(text),
                                     reason="adjustment of an existing image", **common)
        return None

    def _question(self, text: str, lang: Language, request: RouteRequest, common: dict) -> RouteDecision | None:
        if not (_ZH_QUESTION if lang == "zh" else _EN_QUESTION).search(text):
            return None
        says_video = bool(re.search(r"\bvideos?\b|\bclip\b|视频|影片", text, _I))
        only_video = says_video or request.has_video and not (request.attached_images or _refs_image(common)) and (
            request.attached_videos or not request.session_images or any(r.startswith("video") for r in common["references"]))
        return RouteDecision(route="understand", intent="video" if only_video else "answer",
                             reason="question form", **common)

    # ----------------------------------------------------------------------------------------- checks
    @staticmethod
    def _needs_media(decision: RouteDecision, request: RouteRequest, refs: tuple[str, ...]) -> RouteDecision:
        if decision.route == "generate":
            return decision
        if decision.intent == "video" and request.has_video:
            return decision
        if decision.intent == "answer" and not (request.has_image or request.has_video or refs):
            # a question with no media at all is still a question: the VLM answers it from text
            return decision
        if request.has_image:
            return decision
        missing = "a video" if decision.intent == "video" else "an image"
        return decision.model_copy(update={
            "route": "understand", "intent": "clarify",
            "reason": f"{decision.intent} needs {missing} and the session has none (rule decision was {decision.route})"})


def _refs_image(common: dict) -> bool:
    return any(not r.startswith("video") for r in common["references"])
