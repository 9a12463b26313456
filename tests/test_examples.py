"""The examples are part of the product: each one runs offline on the tiny checkpoints."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A line each example must print: values the example computes, not just "it ran".
EXPECTED = {
    "understand_quickstart.py": "converted: [(380.0, 140.0, 560.0, 320.0)]",
    "generate_quickstart.py": "regenerated identical: True",
    "langchain_agent.py": "final image: [('blue', 'square', 'left')]",
}
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MMKIT_TINY_CACHE": str(tmp_path / "tiny"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "Traceback" not in out.stderr
    assert EXPECTED[script.name] in out.stdout, out.stdout[-2000:]


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"understand_quickstart.py", "generate_quickstart.py"}
