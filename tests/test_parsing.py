"""Parsing of real-looking Qwen-VL outputs: thinking, boxes/points in every style seen, video time spans."""

import pytest

from mmkit.understand.answer import TimeSpan
from mmkit.understand.parsing import ParsedGeometry, RawBox, RawPoint, parse_grounding
from mmkit.understand.thinking import ThinkingSplit, split_thinking
from mmkit.understand.time_spans import parse_time_spans

# ----------------------------------------------------------------------------------------------------------
# split_thinking
# ----------------------------------------------------------------------------------------------------------

THINKING_CASES = [
    pytest.param("There are two cats on the sofa.", {}, (None, "There are two cats on the sofa.", True),
                 id="no-tags"),
    pytest.param("<think>\nThe user asks about cats. I see two.\n</think>\n\nThere are two cats.", {},
                 ("The user asks about cats. I see two.", "There are two cats.", True), id="full-block"),
    pytest.param("Okay, let me look at the image. Two cats.\n</think>\n\nThere are two cats.", {},
                 ("Okay, let me look at the image. Two cats.", "There are two cats.", True),
                 id="only-close-tag-qwen3-thinking-template"),
    pytest.param("<think>\n\n</think>\n\nThere are two cats.", {}, ("", "There are two cats.", True),
                 id="empty-block-is-empty-string"),
    pytest.param("<think>\nFirst, count the cats. One on the left, one", {},
                 ("First, count the cats. One on the left, one", "", False), id="unclosed-open-tag"),
    pytest.param("First, count the cats. One on the left", {"prompt_opened_think": True},
                 ("First, count the cats. One on the left", "", False), id="prompt-opened-cut-while-thinking"),
    pytest.param("Counting...\n</think>\nTwo.", {"prompt_opened_think": True}, ("Counting...", "Two.", True),
                 id="prompt-opened-closed"),
    pytest.param("<think>\nCounting...\n</think>\nTwo.", {"prompt_opened_think": True},
                 ("Counting...", "Two.", True), id="prompt-opened-model-repeats-open-tag"),
    pytest.param("", {"prompt_opened_think": True}, ("", "", False), id="prompt-opened-nothing-generated"),
    pytest.param("  \n\n  Two cats. \n", {}, (None, "Two cats.", True), id="whitespace-stripped"),
    pytest.param("<think>a</think>first <think>b</think>second", {}, ("a\n\nb", "first second", True),
                 id="two-blocks-joined"),
    pytest.param("<think>  </think>", {}, ("", "", True), id="only-empty-block"),
    pytest.param("", {}, (None, "", True), id="empty-text"),
]


@pytest.mark.parametrize("text, kwargs, expected", THINKING_CASES)
def test_split_thinking(text, kwargs, expected):
    result = split_thinking(text, **kwargs)
    assert isinstance(result, ThinkingSplit)
    assert tuple(result) == expected


def test_split_thinking_fields_are_named():
    result = split_thinking("<think>why</think>because")
    assert (result.thinking, result.answer, result.closed) == ("why", "because", True)


# ----------------------------------------------------------------------------------------------------------
# parse_grounding: boxes and points
# ----------------------------------------------------------------------------------------------------------

QWEN25_FENCED = """```json
[
\t{"bbox_2d": [135, 114, 1016, 672], "label": "person"},
\t{"bbox_2d": [4, 287, 392, 859], "label": "dog"}
]
```"""

B = RawBox
P = RawPoint

BOX_CASES = [
    pytest.param(QWEN25_FENCED, [B((135, 114, 1016, 672), "person"), B((4, 287, 392, 859), "dog")],
                 id="qwen2.5-cookbook-fenced"),
    pytest.param('```json\n[\n  {"bbox_2d": [217, 112, 920, 956], "label": "cat"}\n]\n```',
                 [B((217, 112, 920, 956), "cat")], id="qwen3-fenced-single"),
    pytest.param('Sure! Here is the location:\n[{"bbox_2d": [12, 40, 300, 380], "label": "red car"}]\n'
                 "Let me know if you need anything else.", [B((12, 40, 300, 380), "red car")],
                 id="prose-around-json"),
    pytest.param('{"bbox_2d": [10, 20, 30, 40], "label": "cup"}', [B((10, 20, 30, 40), "cup")],
                 id="single-object-not-list"),
    pytest.param('```json\n[\n  {"bbox_2d": [1, 2, 3, 4], "label": "a",},\n'
                 '  {"bbox_2d": [5, 6, 7, 8], "label": "b"},\n]\n```',
                 [B((1, 2, 3, 4), "a"), B((5, 6, 7, 8), "b")], id="trailing-commas"),
    pytest.param("[{'bbox_2d': [1, 2, 3, 4], 'label': 'cat'}]", [B((1, 2, 3, 4), "cat")], id="single-quotes"),
    pytest.param("[{'bbox_2d': [1, 2, 3, 4], 'label': \"person's hat\"}]", [B((1, 2, 3, 4), "person's hat")],
                 id="single-quotes-with-apostrophe"),
    pytest.param("{'bbox_2d': [1, 2, 3, 4], 'visible': true, 'note': null}", [B((1, 2, 3, 4))],
                 id="single-quotes-with-json-literals"),
    pytest.param('[{"bbox": [1, 2, 3, 4], "label": "a"}]', [B((1, 2, 3, 4), "a")], id="key-bbox"),
    pytest.param('[{"box": [1, 2, 3, 4], "label": "a"}]', [B((1, 2, 3, 4), "a")], id="key-box"),
    pytest.param('[{"box_2d": [1, 2, 3, 4], "label": "a"}]', [B((1, 2, 3, 4), "a")], id="key-box_2d"),
    pytest.param('[{"BBox_2D": [1, 2, 3, 4], "Label": "a"}]', [B((1, 2, 3, 4), "a")], id="keys-any-case"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "name": "mug"}]', [B((1, 2, 3, 4), "mug")], id="label-under-name"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "category": "mug"}]', [B((1, 2, 3, 4), "mug")],
                 id="label-under-category"),
    pytest.param('[{"bbox_2d": [10, 20, 110, 40], "text_content": "EXIT"}]', [B((10, 20, 110, 40), "EXIT")],
                 id="ocr-text_content-label"),
    pytest.param('[{"bbox_2d": ["12", "34", "56", "78"], "label": "x"}]', [B((12, 34, 56, 78), "x")],
                 id="numbers-as-strings"),
    pytest.param('[{"bbox_2d": "12, 34, 56, 78", "label": "x"}]', [B((12, 34, 56, 78), "x")],
                 id="coords-as-one-string"),
    pytest.param('[{"bbox_2d": [12.5, 34.25, 56, 78], "label": "x", "score": 0.9, "color": "red"}]',
                 [B((12.5, 34.25, 56, 78), "x")], id="floats-and-extra-keys-ignored"),
    pytest.param("```json\n[[10, 20, 30, 40], [50, 60, 70, 80]]\n```", [B((10, 20, 30, 40)), B((50, 60, 70, 80))],
                 id="keyless-nested-lists-fenced"),
    pytest.param("[[10, 20, 30, 40], [50, 60, 70, 80]]", [B((10, 20, 30, 40)), B((50, 60, 70, 80))],
                 id="keyless-nested-lists-whole-answer"),
    pytest.param("[10, 20, 30, 40]", [B((10, 20, 30, 40))], id="keyless-flat-whole-answer"),
    pytest.param('```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "cat"}]\n```\nand the other one:\n'
                 '```json\n[{"bbox_2d": [5, 6, 7, 8], "label": "dog"}]\n```',
                 [B((1, 2, 3, 4), "cat"), B((5, 6, 7, 8), "dog")], id="two-fenced-blocks"),
    pytest.param('{"bbox_2d": [1, 2, 3, 4], "label": "cat"}\n{"bbox_2d": [5, 6, 7, 8], "label": "dog"}',
                 [B((1, 2, 3, 4), "cat"), B((5, 6, 7, 8), "dog")], id="json-lines"),
    pytest.param('{"objects": [{"bbox_2d": [1, 2, 3, 4], "label": "cat"}], "count": 1}',
                 [B((1, 2, 3, 4), "cat")], id="wrapper-object"),
    pytest.param('[{"bbox_2d": [[1, 2, 3, 4], [5, 6, 7, 8]], "label": "cat"}]',
                 [B((1, 2, 3, 4), "cat"), B((5, 6, 7, 8), "cat")], id="several-boxes-under-one-key"),
    pytest.param('[{"bbox_2d": [[1, 2], [3, 4]], "label": "cat"}]', [B((1, 2, 3, 4), "cat")],
                 id="corner-pairs"),
    pytest.param('[{"bbox_2d": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}, "label": "cat"}]', [B((1, 2, 3, 4), "cat")],
                 id="corner-dict"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "label": "狗"}]', [B((1, 2, 3, 4), "狗")], id="chinese-label"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "label": "a", "image_index": 1}]', [B((1, 2, 3, 4), "a", 1)],
                 id="image-index-key"),
    pytest.param("<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(123,456),(789,912)<|box_end|><|im_end|>",
                 [B((123, 456, 789, 912), "the dog")], id="qwen2-vl-special-tokens"),
    pytest.param("<ref>狗</ref><box>(221,425),(575,908)</box>", [B((221, 425, 575, 908), "狗")],
                 id="qwen-vl-ref-box"),
    pytest.param("<ref>cats</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box>",
                 [B((1, 2, 3, 4), "cats"), B((5, 6, 7, 8), "cats")], id="qwen-vl-ref-two-boxes"),
    pytest.param("<|box_start|>(1, 2), (3, 4)<|box_end|>", [B((1, 2, 3, 4))], id="special-tokens-no-ref-spaces"),
]


@pytest.mark.parametrize("text, expected", BOX_CASES)
def test_parse_boxes(text, expected):
    parsed = parse_grounding(text)
    assert list(parsed.boxes) == expected
    assert parsed.points == ()
    assert parsed.truncated is False
    assert parsed.skipped == 0
    assert all(isinstance(v, float) for box in parsed.boxes for v in box.coords)


POINT_CASES = [
    pytest.param('```json\n[\n  {"point_2d": [378, 212], "label": "the spoon"}\n]\n```', [P((378, 212), "the spoon")],
                 id="qwen-point_2d-fenced"),
    pytest.param('[{"point": [10, 20], "label": "eye"}, {"point": [30, 40], "label": "eye"}]',
                 [P((10, 20), "eye"), P((30, 40), "eye")], id="key-point"),
    pytest.param('{"point_2d": ["10.5", "20"]}', [P((10.5, 20))], id="point-strings"),
    pytest.param('<points x1="105.5" y1="60" x2="200" y2="80" alt="two spoons">two spoons</points>',
                 [P((105.5, 60), "two spoons"), P((200, 80), "two spoons")], id="qwen25-xml-points"),
    pytest.param('The spoon is here: <point x="61.5" y="40.6">spoon</point>', [P((61.5, 40.6), "spoon")],
                 id="xml-single-point"),
    pytest.param("```json\n[[100, 200], [300, 400]]\n```", [P((100, 200)), P((300, 400))], id="keyless-pairs-fenced"),
]


@pytest.mark.parametrize("text, expected", POINT_CASES)
def test_parse_points(text, expected):
    parsed = parse_grounding(text)
    assert list(parsed.points) == expected
    assert parsed.boxes == ()
    assert parsed.truncated is False


def test_boxes_and_points_in_one_answer():
    text = '[{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3], "label": "cup"}, {"point_2d": [9, 9], "label": "pen"}]'
    parsed = parse_grounding(text)
    assert parsed.boxes == (B((1, 2, 3, 4), "cup"),)
    assert parsed.points == (P((2, 3), "cup"), P((9, 9), "pen"))


TRUNCATED_CASES = [
    pytest.param('```json\n[\n  {"bbox_2d": [135, 114, 1016, 672], "label": "person"},\n  {"bbox_2d": [4, 287, 39',
                 [B((135, 114, 1016, 672), "person")], id="cut-in-coords-fence-unclosed"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b',
                 [B((1, 2, 3, 4), "a")], id="cut-in-label-string-keeps-only-complete"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "lab',
                 [B((1, 2, 3, 4), "a")], id="cut-in-key"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "label": "a"},', [B((1, 2, 3, 4), "a")], id="cut-after-comma"),
    pytest.param('[{"bbox_2d": [1, 2, 3, 4], "lab', [], id="cut-in-first-element"),
    pytest.param('{"objects": [{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5,',
                 [B((1, 2, 3, 4), "a")], id="cut-inside-wrapper"),
    pytest.param("```json\n[[10, 20, 30, 40], [50, 60, 7", [B((10, 20, 30, 40))], id="cut-keyless"),
    pytest.param("[[10, 20, 30, 40], [50, 60, 7", [B((10, 20, 30, 40))], id="cut-keyless-whole-answer"),
    pytest.param("<ref>dog</ref><box>(1,2),(3,4)</box><ref>cat</ref><box>(5,6),(7",
                 [B((1, 2, 3, 4), "dog")], id="cut-inside-box-tag"),
    pytest.param("<|box_start|>(1,2),(3,4)<|box_end|><|box_start|>(5,", [B((1, 2, 3, 4))],
                 id="cut-inside-special-token-box"),
]


@pytest.mark.parametrize("text, expected", TRUNCATED_CASES)
def test_truncated_output_keeps_complete_elements(text, expected):
    parsed = parse_grounding(text)
    assert list(parsed.boxes) == expected
    assert parsed.truncated is True


def test_truncated_xml_point_is_flagged():
    parsed = parse_grounding('<points x1="1" y1="2" alt="a">a</points><points x1="5" y1')
    assert parsed.points == (P((1, 2), "a"),)
    assert parsed.truncated is True


NOTHING_CASES = [
    pytest.param("I can't find any cat in this image.", id="plain-refusal"),
    pytest.param("", id="empty"),
    pytest.param("   \n", id="whitespace"),
    pytest.param("{{{[[[ ]]] nonsense", id="bracket-garbage"),
    pytest.param("The ratio in the paper is [1, 2, 3, 4] across runs.", id="number-list-in-prose-is-not-a-box"),
    pytest.param("Coordinates: (10, 20) and (30, 40).", id="parenthesised-numbers-in-prose"),
    pytest.param('{"answer": "yes", "confidence": 0.8}', id="json-without-geometry"),
    pytest.param('{"scaled_size": [640, 480]}', id="keyless-list-under-other-key"),
    pytest.param("<points x y>object</points>", id="echoed-prompt-template"),
    pytest.param("```python\nprint('hello')\n```", id="code-fence-without-json"),
]


@pytest.mark.parametrize("text", NOTHING_CASES)
def test_no_grounding_gives_empty_result(text):
    parsed = parse_grounding(text)
    assert parsed == ParsedGeometry()
    assert parsed.empty is True


def test_bare_lists_in_prose_only_when_asked():
    text = "The bounding box of the cat is [100, 200, 300, 400] and its nose is at [150, 250]."
    assert parse_grounding(text).empty is True
    parsed = parse_grounding(text, bare_lists=True)
    assert parsed.boxes == (B((100, 200, 300, 400)),)
    assert parsed.points == (P((150, 250)),)


def test_non_string_input_gives_empty_result():
    assert parse_grounding(None) == ParsedGeometry()  # type: ignore[arg-type]


SKIPPED_CASES = [
    pytest.param('[{"bbox_2d": [1, 2, 3], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "b"}]', 1,
                 [B((1, 2, 3, 4), "b")], id="three-numbers"),
    pytest.param('[{"bbox_2d": "unknown", "label": "a"}]', 1, [], id="not-numbers"),
    pytest.param('[{"bbox_2d": [true, 2, 3, 4]}]', 1, [], id="booleans-are-not-coordinates"),
    pytest.param("<box>(1,2)</box>", 1, [], id="tag-with-one-corner"),
]


@pytest.mark.parametrize("text, skipped, boxes", SKIPPED_CASES)
def test_unusable_geometry_is_counted_not_invented(text, skipped, boxes):
    parsed = parse_grounding(text)
    assert parsed.skipped == skipped
    assert list(parsed.boxes) == boxes


def test_special_tokens_and_json_in_one_answer_both_found():
    text = '<ref>a</ref><box>(1,2),(3,4)</box> and also ```json\n[{"bbox_2d": [5, 6, 7, 8], "label": "b"}]\n```'
    assert parse_grounding(text).boxes == (B((1, 2, 3, 4), "a"), B((5, 6, 7, 8), "b"))


def test_parsing_a_long_answer_stays_fast():
    import time

    items = ", ".join(f'{{"bbox_2d": [{i}, {i}, {i + 10}, {i + 10}], "label": "obj {i}"}}' for i in range(400))
    text = "Here you go. [see note] " + "```json\n[" + items + "\n```"  # fence and list both cut
    started = time.perf_counter()
    parsed = parse_grounding(text)
    assert time.perf_counter() - started < 1.0
    assert len(parsed.boxes) == 400 and parsed.truncated is True  # the list's "]" never came
    assert parsed.boxes[-1] == B((399, 399, 409, 409), "obj 399")


def test_many_unclosed_brackets_in_prose_do_not_hang():
    import time

    text = "[a note " * 5000 + '{"bbox_2d": [1, 2, 3, 4]}'
    started = time.perf_counter()
    parsed = parse_grounding(text)
    assert time.perf_counter() - started < 2.0
    assert parsed.truncated is False  # prose brackets without numbers are not a cut list


# ----------------------------------------------------------------------------------------------------------
# parse_time_spans
# ----------------------------------------------------------------------------------------------------------

SPAN_CASES = [
    pytest.param("<3.5 seconds>", [(3.5, 3.5)], id="qwen3-timestamp-token"),
    pytest.param("The dog jumps at 3.5 seconds.", [(3.5, 3.5)], id="seconds-word"),
    pytest.param("It happens at 00:12.", [(12.0, 12.0)], id="mm:ss"),
    pytest.param("Starts at 01:05.50", [(65.5, 65.5)], id="mm:ss.ff"),
    pytest.param("at 1:02:03 into the video", [(3723.0, 3723.0)], id="hh:mm:ss"),
    pytest.param("The event lasts 3.5-7.0 seconds.", [(3.5, 7.0)], id="range-dash-seconds"),
    pytest.param("It occurs from 3.5 to 7 seconds.", [(3.5, 7.0)], id="from-to-seconds"),
    pytest.param("The man sits down between 00:03 and 00:07.", [(3.0, 7.0)], id="between-clock"),
    pytest.param("Answer: 3.5s - 7s", [(3.5, 7.0)], id="s-suffix-range"),
    pytest.param("<3.5 seconds> - <7.0 seconds>", [(3.5, 7.0)], id="timestamp-tokens-range"),
    pytest.param("从3.5秒到7秒", [(3.5, 7.0)], id="chinese-from-to"),
    pytest.param("3.5秒至7.0秒", [(3.5, 7.0)], id="chinese-zhi"),
    pytest.param("事件发生在12.0-15.5秒之间", [(12.0, 15.5)], id="chinese-dash"),
    pytest.param("0:03 – 0:07", [(3.0, 7.0)], id="en-dash-single-digit-minutes"),
    pytest.param("from 00:01:05 to 00:01:10.5", [(65.0, 70.5)], id="hh:mm:ss-range"),
    pytest.param("from 7 to 3 seconds", [(3.0, 7.0)], id="reversed-range-reordered"),
    pytest.param("The ball is kicked at 2s and lands at 5s.", [(2.0, 2.0), (5.0, 5.0)],
                 id="and-without-between-is-two-instants"),
    pytest.param("First 0.0-2.5 seconds a car passes, then 10 - 12 seconds a bus.", [(0.0, 2.5), (10.0, 12.0)],
                 id="two-ranges-in-order"),
    pytest.param("A dog runs across the yard.", [], id="no-time"),
    pytest.param("There are 3 dogs and 12 cats.", [], id="bare-numbers-are-not-times"),
    pytest.param("The video is 16:9 widescreen, version 2.5.", [], id="ratio-and-version-not-times"),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize("text, expected", SPAN_CASES)
def test_parse_time_spans(text, expected):
    spans = parse_time_spans(text)
    assert [v for s in spans for v in (s.start, s.end)] == pytest.approx([v for pair in expected for v in pair])
    assert len(spans) == len(expected)
    assert all(isinstance(s, TimeSpan) for s in spans)


def test_span_keeps_raw_text():
    (span,) = parse_time_spans("The cat jumps from 3.5 to 7 seconds, then sleeps.")
    assert span.raw == "from 3.5 to 7 seconds"
    assert span.duration == pytest.approx(3.5)


def test_instants_can_be_left_out():
    text = "The clip is 30 seconds long; the goal is scored between 00:12 and 00:15."
    assert [(s.start, s.end) for s in parse_time_spans(text, include_instants=False)] == [(12.0, 15.0)]
    assert [(s.start, s.end) for s in parse_time_spans(text)] == [(30.0, 30.0), (12.0, 15.0)]


def test_json_events_with_clock_strings_and_descriptions():
    text = """```json
[
  {"start_time": "00:21.00", "end_time": "00:49.00", "description": "A man slices bread."},
  {"start_time": "01:02.50", "end_time": "01:10.00", "description": "He spreads butter."}
]
```"""
    spans = parse_time_spans(text)
    assert [(s.start, s.end, s.label) for s in spans] == [
        (21.0, 49.0, "A man slices bread."),
        (62.5, 70.0, "He spreads butter."),
    ]
    assert '"start_time": "00:21.00"' in spans[0].raw


def test_json_start_end_numbers():
    (span,) = parse_time_spans('{"start": 0.0, "end": 30.0}')
    assert (span.start, span.end, span.label) == (0.0, 30.0, None)


def test_json_seconds_strings_with_units():
    (span,) = parse_time_spans("[{'start': '3.5 seconds', 'end': '7s', 'event': 'jump'}]")
    assert (span.start, span.end, span.label) == (3.5, 7.0, "jump")
