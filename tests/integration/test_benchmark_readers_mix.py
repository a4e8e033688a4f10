"""The load-mix benchmark keeps working: ``python -m benchmarks.readers mix`` on a tiny dataset measures every
shape, small workspaces apart from the big one, and its shares add up to the whole.

Not a performance test: the numbers are the command's output, not asserted here. Child processes, as the
benchmark is run (chDB opens one data path per process).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_benchmark_smoke import SHAPES

ROOT = Path(__file__).resolve().parents[2]


def _readers(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "benchmarks.readers", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.clickhouse
def test_the_mix_measures_every_shape_on_small_workspaces_and_the_big_one(tmp_path: Path) -> None:
    path = str(tmp_path / "dataset")
    _readers("build", "--path", path, "--events", "30000", "--workspaces", "4", "--pool-per-workspace", "300")
    result = json.loads(_readers("mix", "--path", path, "--rounds", "1"))

    shapes = result["shapes"]
    assert set(shapes) == SHAPES
    assert math.isclose(sum(s["share"] for s in shapes.values()), 1.0, rel_tol=1e-9)
    assert result["cpu_ms_per_page"] > 0
    for name, figures in shapes.items():
        assert figures["big_cpu_ms"] > 0
        # The deep cursor is a position in the big workspace only; every other shape runs on each workspace.
        assert ("small_cpu_ms" in figures) == (name != "deep cursor (90%)")
