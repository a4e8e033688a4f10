"""The memory-limited crossing run keeps working: a tiny ``python -m benchmarks.crossing --quick``.

Not a performance test: it checks that both engines ran inside their memory-limited groups, measured
every page shape, the export and every data-team question, and that the groups were removed. It
needs what the real run needs (root, the memory controller, PostgreSQL's binaries) and is skipped
where they are missing; this project's CI machine has them.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from benchmarks.cgroup import CgroupUnavailable, MemoryCgroup
from benchmarks.shapes import QUESTIONS

ROOT = Path(__file__).resolve().parents[2]


def _cgroups_usable() -> bool:
    try:
        group = MemoryCgroup(f"auditlog-probe-{uuid.uuid4().hex[:8]}", 256 << 20)
    except CgroupUnavailable:
        return False
    group.remove()
    return True


pytestmark = [
    pytest.mark.clickhouse,
    pytest.mark.skipif(os.geteuid() != 0 or not _cgroups_usable(), reason="needs root and the memory controller"),
    pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reason="no PostgreSQL binaries"),
]


def test_a_quick_crossing_run_measures_both_engines_inside_their_limits(tmp_path: Path) -> None:
    out = tmp_path / "crossing.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.crossing", "--quick", "--memory-limit", "768M",
                           "--json", str(out)],  # its data under TMPDIR: the postgres user must reach it
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["memory_limit_bytes"] == 768 << 20
    for engine in ("ch", "pg"):
        side = result[engine]
        assert 0 < side["peak_bytes"] <= result["memory_limit_bytes"], engine  # it ran inside its group
        assert side["oom_kills"] == 0
        assert set(side["questions"]) == set(QUESTIONS)
        assert all(s["warm"]["n"] == 5 and s["cold"]["n"] == 1 for s in side["pages"].values())
        assert side["export"]["warm"]["rows"] > 0
    assert set(result["ch"]["pages"]) == set(result["pg"]["pages"])
    for name in QUESTIONS:  # the same rows answer the same question on both engines
        assert result["ch"]["questions"][name]["rows"] == result["pg"]["questions"][name]["rows"], name
    assert "| no filter |" in done.stdout
    leftovers = glob.glob("/sys/fs/cgroup/memory/auditlog-crossing-*") + glob.glob("/sys/fs/cgroup/auditlog-crossing-*")
    assert not leftovers
