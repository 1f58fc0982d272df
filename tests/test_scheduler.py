"""The scheduler's log as an operator reads it: structured lines, an overrun said once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.overrunning_job import OVERRUNS

ROOT = Path(__file__).parent.parent


def test_an_overrunning_job_is_explained_once_per_overrun_in_structured_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.overrunning_job"], cwd=ROOT, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # no stdlib-formatted line

    overruns = [line for line in lines if line["event"] == "scheduler.job_overran"]
    assert len(overruns) == OVERRUNS  # one per overrun, though each outlasted three beats
    for overrun in overruns:
        assert overrun["level"] == "warning"
        assert overrun["job"] == "slow-tick" and overrun["every_seconds"] == 0.05
        assert "skipped until it finishes" in overrun["outcome"]
    assert "maximum number of running instances" not in result.stdout

    [failure] = [line for line in lines if line["level"] == "error"]
    assert failure["logger"] == "apscheduler.executors.default"
    assert failure["event"].startswith('Job "slow-tick')
    assert "RuntimeError: a failing tick" in failure["exception"]
