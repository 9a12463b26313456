"""Normalising user input into one checked conversation (no pixels loaded, no model)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmkit.exceptions import UsageError
from mmkit.understand.messages import to_conversation

RED = Image.new("RGB", (40, 30), "red")


def test_plain_string_with_attached_media():
    conv = to_conversation("What is this?", images=RED, videos="clip.mp4")
    assert len(conv.messages) == 1
    assert conv.messages[0]["content"] == [
        {"type": "image", "image": RED},
        {"type": "video", "video": "clip.mp4"},
        {"type": "text", "text": "What is this?"},
    ]
    assert conv.images == ({"type": "image", "image": RED},)
    assert conv.videos == ({"type": "video", "video": "clip.mp4"},)


def test_qwen_vl_utils_format_is_accepted_as_is():
    image = {"type": "image", "image": "file:///tmp/a.jpg", "min_pixels": 1000, "max_pixels": 50000}
    video = {"type": "video", "video": "file:///tmp/v.mp4", "fps": 1.0, "video_start": 2.0, "video_end": 4.5,
             "max_pixels": 20000, "total_pixels": 100000, "nframes": 4}
    resized = {"image": "b.png", "resized_height": 280, "resized_width": 420}  # no "type": qwen-vl-utils allows it
    conv = to_conversation([{"role": "user", "content": [image, video, resized, {"text": "Compare."}]}])
    parts = conv.messages[0]["content"]
    assert parts[0] == image and parts[1] == video
    assert parts[2] == {"type": "image", "image": "b.png", "resized_height": 280, "resized_width": 420}
    assert parts[3] == {"type": "text", "text": "Compare."}
    assert [p["image"] for p in conv.images] == ["file:///tmp/a.jpg", "b.png"]


def test_openai_hf_and_object_sources():
    array = np.zeros((8, 9, 3), dtype=np.uint8)
    conv = to_conversation([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png", "detail": "high"}},
            {"type": "image", "url": "https://example.com/y.png"},
            {"type": "image", "path": Path("/tmp/z.png")},
            {"type": "image", "image": array},
            RED,
            {"type": "video", "video": [RED, RED, "f.png"]},
            "plain text part",
        ]},
    ])
    sources = [p["image"] for p in conv.images]
    assert sources[:3] == ["https://example.com/x.png", "https://example.com/y.png", "/tmp/z.png"]
    assert sources[3] is array and sources[4] is RED
    assert conv.videos[0]["video"] == [RED, RED, "f.png"]
    assert conv.messages[0]["content"] == [{"type": "text", "text": "Be brief."}]
    assert conv.messages[1]["content"][-1] == {"type": "text", "text": "plain text part"}


def test_multi_turn_and_template_messages():
    conv = to_conversation(
        [
            {"role": "user", "content": [{"type": "image", "image": RED}, {"type": "text", "text": "Color?"}]},
            {"role": "assistant", "content": "Red."},
            {"role": "user", "content": "And the size?"},
        ],
        images=["second.png"],
    )
    assert [m["role"] for m in conv.messages] == ["user", "assistant", "user"]
    assert len(conv.images) == 2  # attached media go to the LAST user message
    assert conv.template_messages() == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Color?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Red."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "And the size?"}]},
    ]


def test_videos_kwarg_takes_frame_lists_and_dicts():
    conv = to_conversation("Describe.", videos=[[RED, RED], {"video": "c.mp4", "fps": 1.0}])
    assert conv.videos == (
        {"type": "video", "video": [RED, RED]},
        {"type": "video", "video": "c.mp4", "fps": 1.0},
    )
    with pytest.raises(UsageError, match="videos=\\[\\[frame0"):
        to_conversation("Describe.", videos=[RED, RED])


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([{"role": "robot", "content": "hi"}], "unknown role"),
        ([{"role": "user"}], "no 'content'"),
        ([{"role": "user", "content": [{"type": "audio", "audio": "a.wav"}]}], "unknown content part type 'audio'"),
        ([{"role": "user", "content": [{"type": "text"}]}], "needs a string 'text'"),
        ([{"role": "user", "content": [{"type": "image"}]}], "exactly one of"),
        ([{"role": "user", "content": [{"type": "image", "image": "a.png", "max_pixel": 5}]}], "unknown key"),
        ([{"role": "user", "content": [{"type": "image", "image": "a.png", "resized_height": 28}]}], "go together"),
        ([{"role": "user", "content": [{"type": "image", "image": "a.png", "max_pixels": "big"}]}], "non-negative"),
        ([{"role": "user", "content": [{"type": "image", "image": 3.5}]}], "an image must be"),
        ([{"role": "user", "content": [{"type": "video", "video": []}]}], "a video must be"),
        ([{"role": "user", "content": []}], "non-empty list"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "end with a user message"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}],
         "system message may only come first"),
        ([{"role": "assistant", "content": [{"type": "image", "image": "a.png"}]}, {"role": "user", "content": "x"}],
         "only user messages"),
        ([], "non-empty list of messages"),
    ],
)
def test_bad_input_is_refused_with_received_and_fix(messages, match):
    with pytest.raises(UsageError, match=match) as info:
        to_conversation(messages)
    assert info.value.received is not None or info.value.fix


def test_empty_prompt_is_refused():
    with pytest.raises(UsageError, match="empty"):
        to_conversation("   ")
    assert to_conversation("", images=RED).images[0]["image"] is RED  # media alone is a valid question
