"""Run folders: every run its own folder, runs/latest a link to the newest, an explicit folder
holding a run refused unless resumed or overwritten, a lock per folder, output paths checked
before any work, and nothing of a failed run mixed into the next."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_jobs.cli.app import app

runner = CliRunner()
QUICK = ["--silos", "2", "--rounds", "1", "--epochs", "1", "--no-baselines", "--no-tracking"]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["run", *args], env={"COLUMNS": "200"})


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and " - " in lines[0], lines[0]
    return lines[0]


def test_each_run_gets_its_own_folder_and_latest_points_at_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = invoke(*QUICK, "--seed", "1")
    second = invoke(*QUICK, "--seed", "2", "--name", "again")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    (old,) = (tmp_path / "runs" / "digits").iterdir()
    (new,) = (tmp_path / "runs" / "again").iterdir()
    latest = tmp_path / "runs" / "latest"
    assert latest.is_symlink() and latest.resolve() == new.resolve()
    assert os.readlink(latest) == "again/" + new.name  # relative: the runs folder can move
    # the first run is intact, and each summary describes its own run
    assert json.loads((old / "summary.json").read_text())["config"]["seed"] == 1
    assert json.loads((new / "summary.json").read_text())["config"]["seed"] == 2
    assert f"summary: runs/again/{new.name}/summary.json" in second.output


def test_a_legacy_latest_folder_is_left_alone_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    legacy = tmp_path / "runs" / "latest"
    legacy.mkdir(parents=True)
    (legacy / "summary.json").write_text("{}")
    result = invoke(*QUICK)
    assert result.exit_code == 0, result.output
    assert "note: runs/latest is a folder from an earlier version and was left as it is" in (
        result.output
    )
    assert (legacy / "summary.json").read_text() == "{}"


def test_explicit_folder_holding_a_run_is_refused_then_overwritten_cleanly(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    assert invoke(*QUICK, "--output-dir", str(out)).exit_code == 0
    (out / "logs").mkdir()
    (out / "logs" / "error-old.log").write_text("from a failed earlier run")
    before = (out / "summary.json").read_text()

    refused = invoke(*QUICK, "--output-dir", str(out), "--seed", "5")
    line = one_error_line(refused)
    assert refused.exit_code == 2
    assert f"--output-dir {out} already holds a run" in line
    assert f"--resume {out}" in line and "--overwrite" in line
    assert (out / "summary.json").read_text() == before  # untouched

    replaced = invoke(*QUICK, "--output-dir", str(out), "--seed", "5", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "logs").exists()  # nothing of the old run is left beside the new one
    assert json.loads((out / "summary.json").read_text())["config"]["seed"] == 5


def test_a_crashed_run_is_not_mixed_with_the_next(tmp_path: Path) -> None:
    """The silo data cache (inside the cache folder) is a file here, so every worker fails to
    start: a real failure. (A cache folder that is a file is bad input, refused up front.)"""
    from tests.fl.run_process import run_to_end

    out = tmp_path / "run"
    blocker = tmp_path / "cache" / "silo-data"
    blocker.parent.mkdir()
    blocker.write_text("x")
    crashed = run_to_end(
        tmp_path, *QUICK, "--output-dir", str(out), env={"FL_SANDBOX_CACHE": str(blocker.parent)}
    )
    assert crashed.code == 1, crashed.stderr
    lines = crashed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: FederationError: silo silo-0 failed")
    log = Path(lines[0].split("traceback in ")[1].split(")")[0])
    assert log.is_file() and log.is_relative_to(out / "logs")
    assert "in the worker of silo silo-0" in log.read_text()
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"

    again = invoke(*QUICK, "--output-dir", str(out))
    assert again.exit_code == 2 and "already holds a run" in one_error_line(again)
    fresh = invoke(*QUICK, "--output-dir", str(out), "--overwrite")
    assert fresh.exit_code == 0, fresh.output
    assert not (out / "logs").exists()
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        ("file", ["--output-dir", "{p}"], "--output-dir {p} is a file - give a folder path"),
        ("file", ["--output-dir", "{p}/sub"], "is inside {p}, which is a file"),
        ("dir", ["--summary", "{p}"], "--summary {p} is a folder - give a file path"),
        ("file", ["--summary", "{p}/s.json"], "is inside {p}, which is a file"),
        ("other", ["--output-dir", "{p}"], "is not empty and holds no fl-sandbox run"),
    ],
)
def test_output_paths_are_checked_before_any_work(
    tmp_path: Path, setup: str, args: list[str], fragment: str
) -> None:
    target = tmp_path / "target"
    if setup == "file":
        target.write_text("keep me")
    else:
        target.mkdir()
        if setup == "other":
            (target / "notes.txt").write_text("keep me")
    args = [a.replace("{p}", str(target)) for a in args]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = invoke(*QUICK, *args)
    assert result.exit_code == 2
    assert fragment.replace("{p}", str(target)) in one_error_line(result)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_a_locked_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert invoke(*QUICK, "--output-dir", str(out)).exit_code == 0
    with open(out / ".lock", "r+") as held:  # another run holds this folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        result = invoke("--resume", str(out), "--rounds", "2")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert f"{out} is in use by another run (pid 4242)" in line and "wait for it" in line
