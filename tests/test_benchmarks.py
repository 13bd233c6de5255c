"""The GPU session's script (issue 25), which a lent machine runs once with no second try: it must start,
keep to its budget and still write its report."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_session_leaves_out_what_its_budget_cannot_hold(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_session.py"), "--budget", "0",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / "gpu_session.md").read_text()
    for part in ("references: 01_handdrawn_digits", "class", "fixed: 01_handdrawn_digits", "workers: the reference run"):
        assert f"- {part}: left out, " in report, report
    assert json.loads((tmp_path / "gpu_session.json").read_text()) == {"references": [], "class": None, "fixed": [],
                                                                       "workers": []}


def test_the_gpu_scripts_parse():
    for script in ("gpu_measure.sh", "gpu_prepare.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)]).returncode == 0
