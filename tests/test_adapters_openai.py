"""RemoteVisionLanguageModel against a fake OpenAI-compatible server on 127.0.0.1 (http.server in a thread).

The fake server records every request body and answers with canned completions, so the tests check both
directions: what mmkit sends (model, data URLs at the smart-resized size, sampling fields) and how it
reads the answer (thinking, coordinates converted to the ORIGINAL image, usage, streaming, errors).
"""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest
from PIL import Image

from mmkit.adapters.openai_backend import RemoteVisionLanguageModel
from mmkit.adapters.openai_http import split_base_url
from mmkit.exceptions import ModelOutputError, ServerError, UnsafeSourceError, UsageError
from mmkit.understand.families import family_for_model_type


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; bytes -> as is; list[str] -> SSE events ("data: ..." each)
    delay_s: float = 0.0
    content_length: bool = True


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fake:
    requests: list[Seen] = field(default_factory=list)
    reply: Callable[[Seen], Reply] = lambda seen: Reply(body=completion("ok"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        seen = Seen(method, self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw) if raw else None)
        fake: Fake = self.server.fake  # type: ignore[attr-defined]
        fake.requests.append(seen)
        reply = fake.reply(seen)
        time.sleep(reply.delay_s)
        if isinstance(reply.body, list):
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in reply.body:
                self.wfile.write(f"data: {event}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True
            return
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        if reply.content_length:
            self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def do_POST(self) -> None:
        try:
            self._handle("POST")
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first (timeout, size tests)
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle("GET")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.fake = Fake()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake(server) -> Fake:
    server.fake.requests.clear()
    server.fake.reply = lambda seen: Reply(body=completion("ok"))
    return server.fake


@pytest.fixture
def url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def completion(content: Any, *, reasoning: dict | None = None, finish: str = "stop", usage: dict | None = None) -> dict:
    message = {"role": "assistant", "content": content, **(reasoning or {})}
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "served",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def connect(url: str, family: str = "qwen2_5_vl", **kwargs: Any) -> RemoteVisionLanguageModel:
    kwargs.setdefault("allow_private_addresses", True)
    return RemoteVisionLanguageModel.connect(url, "served", family=family, **kwargs)


def sent_image(seen: Seen, index: int = 0) -> Image.Image:
    parts = [p for p in seen.body["messages"][-1]["content"] if p["type"] == "image_url"]
    data_url = parts[index]["image_url"]["url"]
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def solid(width: int, height: int, color=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", (width, height), color)


# ------------------------------------------------------------------------------------------------ requests
def test_chat_with_image_sends_resized_png_data_url_and_sampling(fake, url):
    fake.reply = lambda seen: Reply(body=completion("A red rectangle."))
    model = connect(url, api_key="sk-test")
    answer = model.chat("What is this?", images=solid(100, 60), max_new_tokens=32, temperature=0.5, top_p=0.9,
                        top_k=20, seed=3)
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-test"
    body = seen.body
    assert body["model"] == "served"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (32, 0.5, 0.9, 20, 3)
    assert "stream" not in body and "chat_template_kwargs" not in body
    content = body["messages"][0]["content"]
    assert [p["type"] for p in content] == ["image_url", "text"]
    assert content[1]["text"] == "What is this?"
    # smart_resize(60, 100, factor 28) = (56, 112): the size the server's processor keeps unchanged
    image = sent_image(seen)
    assert image.size == (112, 56)
    assert image.getpixel((50, 20)) == (200, 30, 30)
    assert answer.text == "A red rectangle." and answer.thinking is None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 7)
    assert (answer.finish_reason, answer.truncated, answer.model, answer.family) == ("stop", False, "served", "qwen2_5_vl")
    assert answer.timings.generate_s > 0 and answer.timings.preprocess_s > 0


def test_text_only_and_multi_turn_messages_are_plain_strings(fake, url):
    model = connect(url)
    model.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": [{"type": "text", "text": "Again"}]}],
               do_sample=False)
    body = fake.requests[0].body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}]
    assert body["temperature"] == 0 and "top_p" not in body


def test_ground_qwen2_5_vl_pixels_convert_to_original_size(fake, url):
    # original 1000x500; with max_pixels=200_000 smart_resize gives 616x308 (beta = sqrt(500000/200000),
    # floor(632.46/28)*28 = 616, floor(316.23/28)*28 = 308). The model writes pixels on that input.
    fake.reply = lambda seen: Reply(body=completion('```json\n[{"bbox_2d": [154, 77, 462, 231], "label": "car"}]\n```'))
    model = connect(url, family="qwen2_5_vl", max_pixels=200_000)
    answer = model.ground(solid(1000, 500), "car")
    seen = fake.requests[0]
    assert sent_image(seen).size == (616, 308)
    assert seen.body["temperature"] == 0  # grounding is greedy unless asked otherwise
    assert "car" in seen.body["messages"][0]["content"][1]["text"]
    (box,) = answer.boxes
    # 154*1000/616 = 250, 77*500/308 = 125, 462*1000/616 = 750, 231*500/308 = 375
    assert box.as_tuple() == pytest.approx((250.0, 125.0, 750.0, 375.0))
    assert (box.label, box.raw, box.raw_convention) == ("car", (154.0, 77.0, 462.0, 231.0), "resized_pixels")


def test_ground_per_call_max_pixels_changes_the_sent_size_and_the_conversion(fake, url):
    fake.reply = lambda seen: Reply(body=completion("[0, 0, 280, 140]"))
    model = connect(url, family="qwen2_5_vl")
    answer = model.ground(solid(1000, 500), ["car", "bus"], max_pixels=50_000)
    # beta = sqrt(500000/50000) = 3.162: floor(316.2/28)*28 = 308, floor(158.1/28)*28 = 140
    assert sent_image(fake.requests[0]).size == (308, 140)
    assert '"car, bus"' in fake.requests[0].body["messages"][0]["content"][1]["text"]
    assert answer.boxes[0].as_tuple() == pytest.approx((0.0, 0.0, 280 * 1000 / 308, 500.0))


def test_qwen3_vl_relative_1000_boxes_and_points(fake, url):
    fake.reply = lambda seen: Reply(body=completion(
        '[{"bbox_2d": [100, 200, 500, 800], "label": "cat"}, {"point_2d": [500, 500], "label": "eye"}]'))
    model = connect(url, family="qwen3_vl")
    answer = model.ground(solid(640, 480), "cat")
    assert sent_image(fake.requests[0]).size == (640, 480)  # already multiples of 32: sent as is
    (box,) = answer.boxes
    assert box.as_tuple() == pytest.approx((64.0, 96.0, 320.0, 384.0))
    assert box.raw_convention == "relative_1000"
    (point,) = answer.points
    assert (point.x, point.y, point.label) == (320.0, 240.0, "eye")


# ---------------------------------------------------------------------------------------------- thinking
def test_reasoning_content_becomes_thinking_and_thinking_switch_is_sent(fake, url):
    fake.reply = lambda seen: Reply(body=completion("The answer is 4.", reasoning={"reasoning_content": "2+2=4"}))
    model = connect(url, family="qwen3_vl")
    answer = model.chat("2+2?", thinking=True)
    assert fake.requests[0].body["chat_template_kwargs"] == {"enable_thinking": True}
    assert (answer.thinking, answer.text) == ("2+2=4", "The answer is 4.")
    assert answer.raw_text == "<think>\n2+2=4\n</think>\n\nThe answer is 4."


def test_new_reasoning_field_is_not_doubled_and_inline_think_tags_are_split(fake, url):
    model = connect(url, family="qwen3_vl")
    fake.reply = lambda seen: Reply(body=completion("Four.", reasoning={"reasoning": "add", "reasoning_content": "add"}))
    assert model.chat("2+2?").thinking == "add"
    fake.reply = lambda seen: Reply(body=completion("<think>add them</think>Four."))  # no reasoning parser
    answer = model.chat("2+2?")
    assert (answer.thinking, answer.text) == ("add them", "Four.")


def test_cut_while_thinking_is_truncated(fake, url):
    fake.reply = lambda seen: Reply(body=completion(None, reasoning={"reasoning_content": "let me see"}, finish="length"))
    answer = connect(url, family="qwen3_vl").chat("2+2?", max_new_tokens=4)
    assert (answer.thinking, answer.text, answer.truncated, answer.finish_reason) == ("let me see", "", True, "length")


# --------------------------------------------------------------------------------------------- streaming
def _chunk(delta: dict, finish: str | None = None) -> str:
    return json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_stream_yields_deltas_and_the_same_answer(fake, url):
    events = [
        _chunk({"role": "assistant"}), _chunk({"reasoning_content": "look "}), _chunk({"reasoning_content": "closer"}),
        _chunk({"content": '[{"bbox_2d": [0, 0, '}), _chunk({"content": '500, 1000], "label": "left"}]'}),
        _chunk({}, finish="stop"),
        json.dumps({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9}}),
        "[DONE]",
    ]
    fake.reply = lambda seen: Reply(body=events)
    stream = connect(url, family="qwen3_vl").stream("Where?", images=solid(640, 320), max_new_tokens=64)
    deltas = list(stream)
    body = fake.requests[0].body
    assert (body["stream"], body["stream_options"], body["max_tokens"]) == (True, {"include_usage": True}, 64)
    assert deltas[0] == "<think>\nlook " and deltas[2].startswith("\n</think>\n\n")
    answer = stream.answer
    assert "".join(deltas) == answer.raw_text == stream.text
    assert (answer.thinking, answer.finish_reason) == ("look closer", "stop")
    assert answer.boxes[0].as_tuple() == pytest.approx((0.0, 0.0, 320.0, 320.0))
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (30, 9)
    assert answer.timings.first_token_s is not None and answer.timings.first_token_s <= answer.timings.generate_s


def test_stream_read_partly_then_answer_keeps_every_delta(fake, url):
    events = [_chunk({"reasoning": "hm"}), _chunk({"content": "Yes"}), _chunk({"content": "."}, finish="stop"), "[DONE]"]
    fake.reply = lambda seen: Reply(body=events)
    stream = connect(url, family="qwen3_vl").stream("Really?")
    for delta in stream:
        assert delta == "<think>\nhm"
        break
    answer = stream.answer
    assert (answer.raw_text, answer.thinking, answer.text) == ("<think>\nhm\n</think>\n\nYes.", "hm", "Yes.")


def test_stream_error_event_and_missing_done_raise(fake, url):
    model = connect(url)
    fake.reply = lambda seen: Reply(body=[_chunk({"content": "a"}), json.dumps({"error": {"message": "engine died"}})])
    with pytest.raises(ModelOutputError, match="engine died"):
        list(model.stream("hi"))
    fake.reply = lambda seen: Reply(body=[_chunk({"content": "a"})])
    with pytest.raises(ModelOutputError, match=r"\[DONE\]"):
        model.stream("hi").answer


# ------------------------------------------------------------------------------------------------ errors
def test_http_500_surfaces_the_server_message(fake, url):
    fake.reply = lambda seen: Reply(status=500, body={"object": "error", "message": "CUDA out of memory", "code": 500})
    with pytest.raises(ServerError, match="HTTP 500: CUDA out of memory") as info:
        connect(url).chat("hi")
    assert "check its log" in str(info.value)
    fake.reply = lambda seen: Reply(status=401, body={"error": {"message": "Invalid API key", "type": "auth"}})
    with pytest.raises(ServerError, match="HTTP 401: Invalid API key.*api_key="):
        connect(url).chat("hi")


def test_oversize_response_is_refused(fake, url):
    big = completion("x" * 5000)
    fake.reply = lambda seen: Reply(body=big)
    with pytest.raises(ModelOutputError, match="max_response_bytes=2000"):
        connect(url, max_response_bytes=2000).chat("hi")
    fake.reply = lambda seen: Reply(body=big, content_length=False)  # no Content-Length: counted while reading
    with pytest.raises(ModelOutputError, match="max_response_bytes=2000"):
        connect(url, max_response_bytes=2000).chat("hi")
    fake.reply = lambda seen: Reply(body=[_chunk({"content": "y" * 300}) for _ in range(10)] + ["[DONE]"])
    with pytest.raises(ModelOutputError, match="max_response_bytes=2000"):
        list(connect(url, max_response_bytes=2000).stream("hi"))


def test_json_garbage_and_wrong_shape_raise_model_output_error(fake, url):
    fake.reply = lambda seen: Reply(body=b"<html>not json</html>")
    with pytest.raises(ModelOutputError, match="not JSON"):
        connect(url).chat("hi")
    fake.reply = lambda seen: Reply(body={"choices": []})
    with pytest.raises(ModelOutputError, match="choices"):
        connect(url).chat("hi")


def test_timeout(fake, url):
    fake.reply = lambda seen: Reply(body=completion("late"), delay_s=1.0)
    start = time.monotonic()
    with pytest.raises(ModelOutputError, match="timeout_s=0.3"):
        connect(url, timeout_s=0.3).chat("hi")
    assert time.monotonic() - start < 0.9


def test_private_address_refused_by_default_and_allowed_with_the_flag(fake, url):
    for host_url in (url, url.replace("127.0.0.1", "localhost")):
        with pytest.raises(UnsafeSourceError, match="allow_private_addresses=True") as info:
            RemoteVisionLanguageModel.connect(host_url, "served", family="qwen2_5_vl")
        assert "loopback" in str(info.value)
    assert fake.requests == []  # refused before any byte was sent
    assert connect(url, allow_private_addresses=True).chat("hi").text == "ok"


def test_connection_refused_and_tls_failure_are_typed(url):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelOutputError, match="Connection refused.*vllm serve"):
        connect(f"http://127.0.0.1:{port}").chat("hi")
    with pytest.raises(ModelOutputError, match="TLS"):  # https to a plain-http server: the handshake fails
        connect(url.replace("http://", "https://")).chat("hi")


# ------------------------------------------------------------------------------------- connect / surface
def test_family_from_models_endpoint_or_a_clear_usage_error(fake, url):
    fake.reply = lambda seen: Reply(body={"object": "list", "data": [{"id": "served", "object": "model", "model_type": "qwen3_vl"}]})
    model = RemoteVisionLanguageModel.connect(url, "served", allow_private_addresses=True)
    assert model.family == family_for_model_type("qwen3_vl")
    assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/v1/models")
    fake.reply = lambda seen: Reply(body={"object": "list", "data": [{"id": "served", "root": "Qwen/Qwen2.5-VL-7B-Instruct"}]})
    with pytest.raises(UsageError, match="family="):
        RemoteVisionLanguageModel.connect(url, "served", allow_private_addresses=True)
    with pytest.raises(UsageError, match="does not serve"):
        RemoteVisionLanguageModel.connect(url, "other", allow_private_addresses=True)
    with pytest.raises(UsageError, match="family"):
        connect(url, family="llava")


def test_chat_batch_keeps_order(fake, url):
    fake.reply = lambda seen: Reply(body=completion(seen.body["messages"][-1]["content"].upper()), delay_s=0.05)
    answers = connect(url).chat_batch(["one", "two", "three"], max_new_tokens=8)
    assert [a.text for a in answers] == ["ONE", "TWO", "THREE"]
    assert all(r.body["max_tokens"] == 8 for r in fake.requests)


def test_video_frames_are_sent_as_one_multi_frame_video_url(fake, url):
    model = connect(url, family="qwen3_vl")
    model.chat("What happens?", videos=[[solid(64, 64), solid(64, 64, (0, 0, 255))]])
    part = fake.requests[0].body["messages"][0]["content"][0]
    assert part["type"] == "video_url"
    header, frames = part["video_url"]["url"].split(",", 1)
    assert header == "data:video/jpeg;base64"
    decoded = [Image.open(io.BytesIO(base64.b64decode(f))) for f in frames.split(",")]
    assert [im.size for im in decoded] == [(64, 64), (64, 64)]
    with pytest.raises(UsageError, match="fps"):
        model.chat("x", videos=[{"video": [solid(64, 64)] * 2, "fps": 1.0}])


def test_bad_arguments_are_usage_errors(url):
    with pytest.raises(UsageError, match="http"):
        RemoteVisionLanguageModel.connect("ftp://host/v1", "served", family="qwen2_5_vl")
    with pytest.raises(UsageError, match="ca_file"):
        connect(url, ca_file="/nonexistent/ca.pem")
    model = connect(url)
    with pytest.raises(UsageError, match="max_new_tokens"):
        model.chat("hi", max_new_tokens=0)
    with pytest.raises(UsageError, match="Unknown argument"):
        model.stream("hi", beams=2)
    assert split_base_url("http://localhost:8000") == ("http", "localhost", 8000, "/v1")
    assert split_base_url("https://h/api/v1/")[3] == "/api/v1"
    assert "sk-" not in repr(connect(url, api_key="sk-secret").client)
