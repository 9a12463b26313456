"""Shared fixtures. Tests never reach the network: the hub is offline and sockets to non-loopback hosts fail."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

_real_connect = socket.socket.connect


def _guarded_connect(self, address):  # a global guard: unit tests can never reach the network
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")) and self.family != socket.AF_UNIX:
        raise OSError(f"tests may not open network connections (tried {address!r})")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield


# -- media test helpers, shared by test_media_resize, test_media_video and test_media_vision_info ---------------

# A fake torchvision just complete enough for `import qwen_vl_utils` and its torchvision video path:
# - io.read_video decodes a real file with PyAV (every frame, like torchvision), and for "fake:T:H:W:fps"
#   returns T black frames at that fps (on the meta device with SHAPE_ONLY);
# - transforms.functional.resize is torchvision's v1 tensor resize for uint8 (float bicubic, clamp, round);
#   with SHAPE_ONLY it just returns an empty tensor of the requested size (sizes are all we compare then).
UPSTREAM_PRELUDE = textwrap.dedent('''
    import json, os, sys, types
    import torch
    os.environ["FORCE_QWENVL_VIDEO_READER"] = "torchvision"
    SHAPE_ONLY = [False]
    tv = types.ModuleType("torchvision"); tv.__version__ = "0.20.0"
    tv_io = types.ModuleType("torchvision.io")
    tv_tr = types.ModuleType("torchvision.transforms")
    tv_fn = types.ModuleType("torchvision.transforms.functional")
    class InterpolationMode:
        BICUBIC = "bicubic"
        BILINEAR = "bilinear"
    def resize(img, size, interpolation=None, antialias=True):
        if SHAPE_ONLY[0]:
            return torch.empty((*img.shape[:-2], *size), dtype=img.dtype, device="meta")
        if list(img.shape[-2:]) == list(size):
            return img
        out = torch.nn.functional.interpolate(img.float(), size=list(size), mode="bicubic",
                                              align_corners=False, antialias=antialias)
        return out.clamp(0, 255).round().to(img.dtype)
    def read_video(path, start_pts=0.0, end_pts=None, pts_unit="sec", output_format="TCHW"):
        if not path.startswith("fake:"):  # a real file: decode every frame, as torchvision.io.read_video does
            import av, numpy
            with av.open(path) as container:
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
                fps = float(container.streams.video[0].average_rate)
            return torch.from_numpy(numpy.stack(frames)).permute(0, 3, 1, 2), None, {"video_fps": fps}
        _, t, h, w, fps = path.split(":")
        device = "meta" if SHAPE_ONLY[0] else "cpu"  # meta tensors have shapes but no memory
        video = torch.zeros((int(t), 3, int(h), int(w)), dtype=torch.uint8, device=device)
        return video, None, {"video_fps": float(fps)}
    tv_fn.resize = resize
    tv_io.read_video = read_video
    tv_tr.functional = tv_fn
    tv_tr.InterpolationMode = InterpolationMode
    tv.io, tv.transforms = tv_io, tv_tr
    sys.modules.update({"torchvision": tv, "torchvision.io": tv_io, "torchvision.transforms": tv_tr,
                        "torchvision.transforms.functional": tv_fn})
    from qwen_vl_utils import vision_process as vp
    assert vp.__file__.endswith("qwen_vl_utils/vision_process.py")
    def outcome(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (AssertionError, ValueError, ZeroDivisionError) as err:
            return "error"
    for line in sys.stdin:  # one JSON request per line: {"code": ..., "input": ...}; one JSON answer per line
        request = json.loads(line)
        space = dict(globals(), INPUT=request["input"])
        try:
            exec(request["code"], space)
            answer = {"result": space["RESULT"]}
        except Exception:
            import traceback
            answer = {"traceback": traceback.format_exc()}
        print(json.dumps(answer), flush=True)
''')


@pytest.fixture(scope="session")
def upstream():
    """`upstream(body, payload)` runs `body` in the upstream interpreter and returns its `RESULT`.

    The interpreter (the real qwen-vl-utils 0.0.14 behind the fake torchvision above) starts on first use and is
    shared by the whole session; `INPUT` holds `payload`. Only that subprocess ever imports the fake torchvision
    and qwen_vl_utils.
    """
    oracle: list[subprocess.Popen] = []

    def run(body: str, payload) -> object:
        if not oracle:
            oracle.append(subprocess.Popen([sys.executable, "-c", UPSTREAM_PRELUDE], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True))
        oracle[0].stdin.write(json.dumps({"code": textwrap.dedent(body), "input": payload}) + "\n")
        oracle[0].stdin.flush()
        line = oracle[0].stdout.readline()
        assert line, "the upstream interpreter died (see stderr above)"
        answer = json.loads(line)
        assert "result" in answer, answer.get("traceback")
        return answer["result"]

    yield run
    if oracle:
        oracle[0].kill()
        oracle[0].wait()


GRID_COLS, GRID_ROWS, BLOCK = 4, 3, 16  # 12 black/white blocks encode the frame index (survives compression)


def _index_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """An RGB frame whose 16x16 blocks spell `index` in binary (block b white = bit b set)."""
    frame = np.full((height, width, 3), 64, dtype=np.uint8)
    for bit in range(GRID_COLS * GRID_ROWS):
        row, col = divmod(bit, GRID_COLS)
        frame[row * BLOCK:(row + 1) * BLOCK, col * BLOCK:(col + 1) * BLOCK] = 255 if index >> bit & 1 else 0
    return frame


def _read_index(frame: np.ndarray) -> int:
    """Inverse of `_index_frame` for an RGB frame (any size >= 64x48 at the same block scale)."""
    value = 0
    for bit in range(GRID_COLS * GRID_ROWS):
        row, col = divmod(bit, GRID_COLS)
        block = frame[row * BLOCK + 4:(row + 1) * BLOCK - 4, col * BLOCK + 4:(col + 1) * BLOCK - 4]
        value |= int(block.mean() > 128) << bit
    return value


def _make_video(path: Path, nframes: int, *, fps: int = 25, codec: str = "mpeg4", gop: int = 12,
               width: int = 64, height: int = 48) -> Path:
    """Encode `nframes` index frames with PyAV (mpeg4: I/P frames; libx264: B-frames too)."""
    import av  # here: conftest is imported by every test module

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.bit_rate = 2_000_000
        for i in range(nframes):
            frame = av.VideoFrame.from_ndarray(_index_frame(i, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def index_frame():
    """`index_frame(index, width=64, height=48)`: an RGB frame whose blocks spell `index` in binary."""
    return _index_frame


@pytest.fixture(scope="session")
def read_index():
    """`read_index(frame)`: the index an `index_frame` frame spells (survives resizing at the same block scale)."""
    return _read_index


@pytest.fixture(scope="session")
def make_video():
    """`make_video(path, nframes, *, fps=25, codec="mpeg4", gop=12, width=64, height=48)`: encode index frames."""
    return _make_video
