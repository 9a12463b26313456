import json
import os

import pytest

from mmkit.files import atomic_write, atomic_write_json, atomic_write_text


def test_atomic_write_creates_folders_and_content(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "b.json", {"x": 1, "名": "圆"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"x": 1, "名": "圆"}
    assert "圆" in path.read_text(encoding="utf-8")


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = atomic_write_text(tmp_path / "out.txt", "old")

    def explode(handle):
        handle.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, explode)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
