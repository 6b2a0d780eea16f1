"""Smoke runs of every benchmark script (tiny sizes, seconds long) and of the results page.

They check that each script runs alone, writes a well-formed report and refuses bad arguments
with a message naming the option; they measure nothing (figures belong in benchmarks). The
Flower contenders run only where the separate Flower environment exists (``.venv-flwr``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import aggregation
from benchmarks.cli import count
from benchmarks.flower_runtime import REPO_ROOT, flower_env, flower_python
from benchmarks.machine import collect
from benchmarks.memory import peak_extra_memory
from benchmarks.report import BenchmarkReport, ReportError, Table, Target, load_report
from benchmarks.results import load_reports, render
from benchmarks.updates import make_updates

HAS_FLOWER = flower_python() is not None
needs_flower = pytest.mark.skipif(
    not HAS_FLOWER, reason="Flower environment absent (bash benchmarks/flower_env.sh)"
)


def _run(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _smoke(module: str, out: Path, *args: str) -> BenchmarkReport:
    done = _run(module, "--smoke", "--out", str(out), *args)
    assert done.returncode == 0, done.stderr[-3000:]
    report = load_report(out)
    assert report.benchmark == module
    assert report.smoke is True
    assert report.command == shlex.join(
        ["python", "-m", f"benchmarks.{module}", "--smoke", "--out", str(out), *args]
    )
    assert report.targets, "every benchmark states its targets"
    assert report.tables and all(table.rows for table in report.tables)
    return report


@pytest.mark.parametrize(
    "module",
    [
        "aggregation",
        "local_vs_flower",
        "fedavg_paper",
        "strategies",
        "silo_dp",
        "scaffold",
        "async_rounds",
        "infra_scale",
        "results",
        "run_quick",
    ],
)
def test_every_script_has_help(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(f"benchmarks.{module}").main
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert f"usage: python -m benchmarks.{module}" in capsys.readouterr().out


def test_aggregation_smoke(tmp_path: Path) -> None:
    args = () if HAS_FLOWER else ("--no-flower",)
    report = _smoke("aggregation", tmp_path / "aggregation.json", *args)
    rows = report.tables[0].rows
    contenders = {row[2] for row in rows}
    assert aggregation.OURS in contenders
    assert aggregation.STACK in contenders
    assert (aggregation.FLOWER in contenders) == HAS_FLOWER
    same_result = report.tables[0].columns.index("same result")
    assert all(row[same_result] in (True, None) for row in rows), "contenders disagree"


def test_local_vs_flower_smoke_product_side(tmp_path: Path) -> None:
    report = _smoke("local_vs_flower", tmp_path / "local.json", "--no-flower")
    (row,) = report.tables[0].rows
    assert row[1] == "fl-sandbox (python -m fl_jobs run), checkpoints on"
    assert 0 <= row[-1] <= 100
    assert report.targets[0].met is None  # no Flower, no verdict
    on, off, ratio = report.tables[1].rows
    assert (on[1], off[1]) == ("checkpoints on", "--no-checkpoints")
    assert abs(ratio[2] - on[2] / off[2]) < 0.01  # one pair: its ratio is the median
    assert on[-1] == off[-1]  # checkpointing does not change the result
    overhead = report.targets[1]
    assert overhead.name == "1 rounds: checkpointing every round, end-to-end overhead"
    assert overhead.met is not None and "ratio" in overhead.measured


@needs_flower
@pytest.mark.slow
def test_local_vs_flower_smoke_with_flower(tmp_path: Path) -> None:
    report = _smoke("local_vs_flower", tmp_path / "local.json")
    contenders = [row[1] for row in report.tables[0].rows]
    assert any(c.startswith("Flower") for c in contenders)
    assert report.targets[0].met is not None


def test_fedavg_paper_smoke(tmp_path: Path, shared_data: Path) -> None:
    assert (shared_data / "mnist").is_dir()
    report = _smoke("fedavg_paper", tmp_path / "fedavg.json", "--only", "non-iid")
    (row,) = report.tables[0].rows
    assert row[:2] == ["2NN, non-IID (2 shards/client)", 664]
    assert row[2] == "not reached in 1"


def test_strategies_smoke(tmp_path: Path) -> None:
    report = _smoke("strategies", tmp_path / "strategies.json")
    optimisers, prox, attack = report.tables
    assert [row[0] for row in optimisers.rows] == ["FedAvg, client lr 0.1", "FedAdam, eta 0.1"]
    assert [row[1] for row in prox.rows] == ["FedAvg", "FedProx, mu 0.1"]
    groups = {(row[0], row[1]) for row in attack.rows}
    assert ("silo-4 sends -10x its change", "median") in groups
    assert ("no attacker", "FedAvg") in groups
    assert all(0 <= row[3] <= 100 for row in attack.rows)
    assert [t.met is not None for t in report.targets] == [True] * 3  # judged, even if missed


def test_scaffold_smoke(tmp_path: Path) -> None:
    report = _smoke("scaffold", tmp_path / "scaffold.json")
    (table,) = report.tables
    assert [row[1] for row in table.rows] == [
        "FedAvg",
        "FedProx, mu 0.01",
        "FedProx, mu 0.1",
        "SCAFFOLD",
    ]
    assert all(row[0] == "digits" and 0 <= row[2] <= 100 for row in table.rows)
    assert report.targets[0].met is not None  # judged, even if missed at 2 rounds


def test_silo_dp_smoke(tmp_path: Path) -> None:
    report = _smoke("silo_dp", tmp_path / "silo_dp.json", "--tasks", "digits", "--epsilons", "8")
    (table,) = report.tables
    assert [row[1] for row in table.rows] == ["none", "record", "silo"]
    assert report.targets[0].met is True, report.targets[0].measured


def test_infra_scale_smoke(tmp_path: Path) -> None:
    report = _smoke("infra_scale", tmp_path / "infra.json")
    blueprint_rows = report.tables[0].rows
    assert [row[:2] for row in blueprint_rows] == [["minimal", 1], ["minimal", 2]]
    assert blueprint_rows[1][2] > blueprint_rows[0][2]  # more silos, more resources
    assert all(row[7] > 0 and row[8] == 0 for row in blueprint_rows)  # movements, violations
    assert report.tables[2].rows[0][1] > 0  # pipeline steps


@pytest.mark.parametrize(
    ("module", "args", "complaint"),
    [
        ("aggregation", ("--k", "0"), "--k"),
        ("aggregation", ("--params", "ten"), "--params"),
        ("aggregation", ("--params", "1000"), "--params"),
        ("aggregation", ("--repeats", "-1"), "--repeats"),
        ("local_vs_flower", ("--partition", "shards:x"), "--partition"),
        ("local_vs_flower", ("--rounds", ""), "--rounds"),
        ("fedavg_paper", ("--lr", "0"), "--lr"),
        ("fedavg_paper", ("--max-rounds", "0"), "--max-rounds"),
        ("strategies", ("--seeds", "x"), "--seeds"),
        ("strategies", ("--rounds", "0"), "--rounds"),
        ("infra_scale", ("--silos", "1,101"), "--silos"),
        ("infra_scale", ("--blueprints", "eyes-closed"), "--blueprints"),
        ("results", ("--results", "/nonexistent/results"), "no results folder"),
    ],
)
def test_bad_arguments_are_refused_before_running(
    module: str,
    args: tuple[str, ...],
    complaint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "never.json"
    extra = () if module == "results" else ("--out", str(out))
    main = importlib.import_module(f"benchmarks.{module}").main
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *extra])
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not out.exists()


def _report(name: str, met: bool | None) -> BenchmarkReport:
    return BenchmarkReport(
        benchmark=name,
        title=f"{name} title",
        started_utc="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
        command=f"python -m benchmarks.{name}",
        machine=collect(),
        parameters={"k": [10]},
        targets=[Target(name="speed", target=">= 4x", measured="5.0x", met=met)],
        tables=[Table(title="t", columns=["a", "b"], rows=[[1, 0.5], ["x|y", None]])],
        notes=["a note"],
    )


def test_results_page_lists_every_target_with_its_status(tmp_path: Path) -> None:
    for name, met in (("infra_scale", None), ("aggregation", True), ("extra_one", False)):
        (tmp_path / f"{name}.json").write_text(_report(name, met).model_dump_json())
    reports = load_reports(tmp_path)
    assert [r.benchmark for r in reports] == ["aggregation", "infra_scale", "extra_one"]
    page = render(reports)
    assert "## Machine" in page and "Python" in page
    assert "| aggregation | speed | >= 4x | 5.0x | met |" in page
    assert "| extra_one | speed | >= 4x | 5.0x | **missed** |" in page
    assert "| infra_scale | speed | >= 4x | 5.0x | not measured |" in page
    assert "x\\|y" in page  # pipes in cells are escaped


def test_malformed_results_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "aggregation.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match=r"aggregation\.json is not valid JSON"):
        load_report(bad)
    bad.write_text(json.dumps({"benchmark": "aggregation"}))
    with pytest.raises(ReportError, match=r"not a valid benchmark report: title"):
        load_report(bad)


def test_ragged_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        Table(title="t", columns=["a", "b"], rows=[[1]])


def test_flower_runs_with_telemetry_off_and_state_in_scratch(tmp_path: Path) -> None:
    env = flower_env(tmp_path)
    assert env["FLWR_TELEMETRY_ENABLED"] == "0"
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    for key in ("FLWR_HOME", "RAY_TMPDIR"):
        assert Path(env[key]).is_dir() and Path(env[key]).is_relative_to(tmp_path)
    assert env["PYTHONPATH"] == str(REPO_ROOT)


def test_updates_are_the_same_in_every_process() -> None:
    first, w1 = make_updates(3, 8_000, seed=7)
    again, w2 = make_updates(3, 8_000, seed=7)
    other, _ = make_updates(3, 8_000, seed=8)
    assert np.array_equal(w1, w2)
    pairs = zip(first, again, strict=True)
    assert all(np.array_equal(a, b) for u, v in pairs for a, b in zip(u, v, strict=True))
    assert not np.array_equal(first[0][0], other[0][0])
    assert sum(layer.size for layer in first[0]) == 8_000
    assert all(layer.dtype == np.float32 for layer in first[0])
    with pytest.raises(ValueError, match="n_params must be >= 4000"):
        make_updates(1, 100, seed=0)


def test_peak_extra_memory_sees_a_transient_allocation() -> None:
    size = 64 * 2**20
    with peak_extra_memory() as memory:
        block = np.ones(size, dtype=np.uint8)
        del block
    assert memory.extra_bytes >= size * 0.95
    assert memory.method


@pytest.mark.parametrize(
    ("text", "value"), [("100", 100), ("50k", 50_000), ("10M", 10_000_000), ("2.5k", 2_500)]
)
def test_counts_accept_suffixes(text: str, value: int) -> None:
    assert count(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "ten", "10X", ""])
def test_counts_refuse_what_is_not_a_positive_whole_number(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        count(text)
