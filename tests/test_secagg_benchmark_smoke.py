"""Smoke run of the secure-aggregation benchmark (tiny sizes, seconds long): it runs alone,
writes a well-formed report whose results agree with the float64 mean, is registered in the
quick set and the results page, and refuses bad arguments. It measures nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import results, run_quick, secure_aggregation
from benchmarks.flower_runtime import REPO_ROOT
from benchmarks.report import load_report


def test_secure_aggregation_smoke(tmp_path: Path) -> None:
    out = tmp_path / "secure_aggregation.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.secure_aggregation", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = load_report(out)
    assert report.benchmark == "secure_aggregation" and report.smoke
    table, e2e = report.tables
    assert {row[1] for row in e2e.rows} == {"secure", "plain"}
    assert report.targets[-1].name.startswith("end to end, 3 silos x 2 rounds")
    assert report.targets[-1].met is True  # equal accuracy with and without
    contenders = {row[2] for row in table.rows}
    assert contenders == {
        secure_aggregation.PLAIN,
        secure_aggregation.SECURE,
        secure_aggregation.SECURE_DROP,
        secure_aggregation.SILO_MASK,
        secure_aggregation.SILO_SHARE,
    }
    within = table.columns.index("within bound")
    checked = [row for row in table.rows if row[within] is not None]
    assert len(checked) == 4 and all(row[within] is True for row in checked)
    assert report.targets[0].met is True


def test_secure_aggregation_is_in_the_quick_set_and_the_results_order() -> None:
    assert "secure_aggregation" in dict(run_quick.QUICK)
    assert "secure_aggregation" in results.ORDER


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--k", "1"), "at least 2 silos"),
        (("--params", "1000"), "--params"),
        (("--e2e-pairs", "-1"), "--e2e-pairs must be >= 0"),
    ],
)
def test_bad_arguments_are_refused(
    args: tuple[str, ...], complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.json"
    with pytest.raises(SystemExit) as exit_info:
        secure_aggregation.main([*args, "--out", str(out)])
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not out.exists()
