"""Faults of the second trial (docs/fl-jobs.md, "Stopping and exit codes"), each injected
into a real ``python -m fl_jobs run`` process: waits that must speak, runs that must stop
like SIGTERM does, and models that must not be reported as finished."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.fl.run_process import (
    Finished,
    Watched,
    assert_no_traceback,
    finish,
    only_run_dir,
    run_to_end,
    start_run,
    summary_of,
    wait_for_round,
    workers,
)

NOTICE_ENV = {"FL_SANDBOX_WAIT_NOTICE_S": "0.5"}
FAST = ["--example", "digits", "--silos", "3", "--epochs", "1", "--no-baselines"]


def test_secure_aggregation_says_which_silo_and_phase_it_waits_for(tmp_path: Path) -> None:
    """A silo that stops after its training reply used to hang the secure exchanges
    silently. Silo-2 is stopped first: the training wait names it alone, so the others have
    answered; then silo-0 is stopped and silo-2 continued, and the key exchange waits for
    silo-0 (or, if silo-2 had trained already, the exchange waits for silo-2)."""
    args = ["--example", "digits", "--silos", "3", "--rounds", "30", "--epochs", "1"]
    run = Watched(
        start_run(
            tmp_path,
            *args,
            "--secure-aggregation",
            "--no-baselines",
            "--no-tracking",
            env=NOTICE_ENV,
        )
    )
    silos = sorted(workers(run.process, 3), key=lambda p: p.pid)
    wait_for_round(run.process, tmp_path / "runs" / "latest", 1)
    silos[2].suspend()
    stopped = [silos[2]]
    try:
        first = run.wait_for_line("still waiting for silo-2 (process stopped)", timeout=120)
        if "secure aggregation" in run.out[first]:
            line = run.out[first]
        else:  # the others trained: stop silo-0 past its training reply, let silo-2 go on
            silos[0].suspend()
            stopped.append(silos[0])
            silos[2].resume()
            found = run.wait_for_line("still waiting for silo-0 (process stopped)", 120, first)
            line = run.out[found]
        phases = ("key exchange", "share exchange", "masked updates", "mask removal")
        assert any(
            f", secure aggregation ({phase}): still waiting for silo-" in line for phase in phases
        ), line
        assert "(set --round-timeout SECONDS to leave unresponsive silos out)" in line
    finally:
        for process in stopped:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
    result = run.finish()
    assert result.code == 0, result.stderr
    assert_no_traceback(result)


def test_a_collapsed_model_stops_with_its_own_status_and_exit_code(tmp_path: Path) -> None:
    """``--lr 30`` on digits: the loss sits above the untrained model's and the accuracy at
    chance, which used to end as ``finished``, exit 0."""
    from mlflow.tracking import MlflowClient

    result = run_to_end(tmp_path, "--lr", "30", "--rounds", "6", "--no-baselines")
    assert result.code == 4, result.stderr
    assert_no_traceback(result)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: the model collapsed: the global model's test loss stayed above the untrained "
        "model's (2.32) in rounds 1-3 ("
    ), line
    assert line.endswith(
        "rounds 1-3 are kept in "
        + str(Path("runs", "digits", only_run_dir(tmp_path).name))
        + " - lower the learning rate, e.g. --lr 0.1 (this run used 30); or --collapse-rounds "
        "0 to train on regardless"
    ), line
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["status"] == "collapsed" and summary["exit_code"] == 4
    assert summary["completed_rounds"] == 3 and summary["resume_command"] is None
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    assert client.get_run(summary["artifacts"]["mlflow_run_id"]).info.status == "FAILED"


def test_collapse_rounds_0_trains_on(tmp_path: Path) -> None:
    result = run_to_end(
        tmp_path,
        "--lr",
        "30",
        "--rounds",
        "4",
        "--no-baselines",
        "--no-tracking",
        "--collapse-rounds",
        "0",
    )
    assert result.code == 0, result.stderr
    assert summary_of(only_run_dir(tmp_path))["completed_rounds"] == 4


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (
            ["--server-lr", "1e6", "--server-momentum", "0.5"],
            "lower the server learning rate, e.g. --server-lr 1 (this run used 1e+06)",
        ),
        (
            ["--strategy", "fedadam", "--strategy-option", "eta=1e6"],
            "lower the server step, e.g. --strategy-option eta=0.01 (this run used 1e+06)",
        ),
        (
            ["--clip-norm", "1", "--target-epsilon", "4", "--rounds", "100000"],
            "raise --target-epsilon or lower --rounds (the noise was x",
        ),
    ],
    ids=["server-lr", "fedadam-eta", "dp-noise"],
)
def test_divergence_names_the_knob_that_caused_it(
    tmp_path: Path, args: list[str], fix: str
) -> None:
    """The client --lr was the default each time; it used to be blamed all the same."""
    result = run_to_end(tmp_path, "--rounds", "3", "--no-baselines", "--no-tracking", *args)
    assert result.code == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: training diverged in round "), line
    assert f" - {fix}" in line and "--lr" not in line, line


def _assert_stopped_like_sigterm(
    tmp_path: Path, run_dir: Path, result: Finished, code: int, label: str
) -> dict[str, object]:
    """A summary marked stopped, the MLflow run KILLED, the resume line, no temp files."""
    from mlflow.tracking import MlflowClient

    assert result.code == code, result.stderr
    assert_no_traceback(result)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{label} after round "), result.stderr
    assert f"resume with: python -m fl_jobs run --resume {run_dir}" in line
    summary = summary_of(tmp_path / run_dir)
    assert summary["status"] == "interrupted" and summary["exit_code"] == code
    assert summary["stop_reason"] == label
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    assert client.get_run(summary["artifacts"]["mlflow_run_id"]).info.status == "KILLED"
    assert not [p.name for p in (tmp_path / run_dir).glob(".*") if p.name != ".lock"]
    return summary


def test_output_piped_into_head_stops_like_sigterm(tmp_path: Path) -> None:
    """``fl-sandbox run ... | head -1``: the reader goes away after the first line."""
    process = start_run(tmp_path, *FAST, "--rounds", "20", "--output-dir", "x09")
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("digits: 3 silos")
    process.stdout.close()  # as head does after its line
    stderr = process.stderr.read()
    process.wait(timeout=120)
    result = Finished(process.returncode, "", stderr)
    summary = _assert_stopped_like_sigterm(
        tmp_path, Path("x09"), result, 141, "stopped by SIGPIPE (its output was closed)"
    )
    resumed = run_to_end(tmp_path, "--resume", "x09")
    assert resumed.code == 0, resumed.stderr
    assert summary_of(tmp_path / "x09")["completed_rounds"] == 20 > summary["completed_rounds"]


def test_sighup_of_the_terminal_stops_like_sigterm(tmp_path: Path) -> None:
    """A closed terminal or a dropped ssh session: SIGHUP to the whole process group."""
    process = start_run(tmp_path, *FAST, "--rounds", "40", "--output-dir", "x08")
    silo_workers = workers(process, 3)
    wait_for_round(process, tmp_path / "x08", 2)
    os.killpg(process.pid, signal.SIGHUP)
    result = finish(process, timeout=60)
    _assert_stopped_like_sigterm(
        tmp_path, Path("x08"), result, 129, "stopped by SIGHUP (the terminal was closed)"
    )
    assert psutil.wait_procs(silo_workers, timeout=10)[1] == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB file system (tmpfs), so that the test can fill it."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_run_naming_the_path_and_the_space(
    tmp_path: Path, small_disk: Path
) -> None:
    out = small_disk / "run"
    process = start_run(tmp_path, *FAST, "--rounds", "60", "--output-dir", str(out))
    wait_for_round(process, out, 2)
    filler = small_disk / "filler"
    with open(filler, "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
    result = finish(process, timeout=120)
    assert result.code == 5, result.stderr
    assert_no_traceback(result)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on the device writing {out}"), line
    assert f"MB free on {small_disk})" in line
    assert (
        "free at least " in line
        and f"then resume with: python -m fl_jobs run --resume {out}" in line
    )
    summary = summary_of(out)
    assert summary["status"] == "storage_failed" and summary["exit_code"] == 5
    kept = summary["completed_rounds"]
    assert kept >= 2 and f"rounds 1-{kept} are kept" in line
    assert not [p.name for p in out.glob(".*") if p.name != ".lock"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    assert client.get_run(summary["artifacts"]["mlflow_run_id"]).info.status == "KILLED"
    filler.unlink()
    resumed = run_to_end(tmp_path, "--resume", str(out))
    assert resumed.code == 0, resumed.stderr
    assert summary_of(out)["completed_rounds"] == 60


def test_krum_stops_below_its_floor_of_updates_actually_received(tmp_path: Path) -> None:
    """Krum (f=1) needs 2f + 3 = 5 updates; --min-silos 4 let a round of 4 through."""
    args = [*FAST, "--silos", "5", "--rounds", "30", "--strategy", "krum", "--min-silos", "4"]
    process = start_run(tmp_path, *args, "--no-tracking", "--output-dir", "g06")
    victim = sorted(workers(process, 5), key=lambda p: p.pid)[2]
    wait_for_round(process, tmp_path / "g06", 2)
    victim.kill()
    result = finish(process)
    assert result.code == 3, result.stderr
    assert_no_traceback(result)
    (line,) = result.stderr.strip().splitlines()
    assert "lost its quorum: at most 4 of 5 selected silos can contribute and strategy krum" in line
    assert "needs 5 updates a round (silo-2: worker died (killed by SIGKILL))" in line
    assert line.endswith("(or start a new run with options that need fewer updates)"), line
    summary = summary_of(tmp_path / "g06")
    assert summary["status"] == "quorum_lost"
    assert all(not r.get("dropped") for r in summary["history"])  # no round ran below 5


def test_a_worker_dying_during_start_up_is_tolerated_under_min_silos(tmp_path: Path) -> None:
    """The first worker is killed the moment it is forked, before it is ready: with
    --min-silos 4 of 5 the job goes on without it and restarts it after round 1. MNIST with a
    cold silo cache, so that a worker takes a while to get ready."""
    args = ["--example", "mnist", "--silos", "5", "--rounds", "2", "--epochs", "1"]
    env = {"FL_SANDBOX_CACHE": str(tmp_path / "cache")}
    process = start_run(
        tmp_path, *args, "--min-silos", "4", "--no-baselines", "--no-tracking", env=env
    )
    parent = psutil.Process(process.pid)
    while not (children := parent.children()):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
    min(children, key=lambda p: p.pid).kill()
    result = finish(process, timeout=400)
    assert result.code == 0, result.stderr
    assert_no_traceback(result)
    assert (
        "silo-0 worker died (killed by SIGKILL) while starting; it is left out and restarted "
        "after round 1" in result.stdout
    ), result.stdout
    history = summary_of(only_run_dir(tmp_path))["history"]
    assert list(history[0].get("dropped", {})) == ["silo-0"]
    assert not history[1].get("dropped") and len(history[1]["selected"]) == 5


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--rounds", "3.0"], {}, "error: --rounds 3.0 is not a whole number - write --rounds 3"),
        (["--silos=3.0"], {}, "error: --silos 3.0 is not a whole number - write --silos 3"),
        (
            ["--secure-aggregation", "--secure-aggregation-clip", "1e30"],
            {},
            "error: --secure-aggregation-clip 1e+30 is too large: secure aggregation could "
            "overflow: 5 silos x 288 samples x clip 1e+30 x 2^28 reaches 2^138.15, beyond the "
            "ring's signed range 2^63 - use --secure-aggregation-clip 2.39e+07 or less (the "
            "default is 256)",
        ),
        (
            [],
            {"FL_SANDBOX_CACHE": "cachefile"},
            "error: FL_SANDBOX_CACHE cachefile is a file - point FL_SANDBOX_CACHE at a folder "
            "(it is created if missing), or unset it",
        ),
    ],
    ids=["rounds-3.0", "silos-3.0", "secagg-clip-1e30", "cache-is-a-file"],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    tmp_path: Path, args: list[str], env: dict[str, str], line: str
) -> None:
    (tmp_path / "cachefile").write_text("not a folder")
    result = run_to_end(tmp_path, *args, "--output-dir", "out", env=env)
    assert result.code == 2, result.stderr
    assert result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_a_secure_aggregation_clip_too_small_names_the_option_to_raise(tmp_path: Path) -> None:
    result = run_to_end(
        tmp_path,
        *FAST,
        "--rounds",
        "2",
        "--secure-aggregation",
        "--secure-aggregation-clip",
        "0.001",
        "--no-tracking",
    )
    assert result.code == 3, result.stderr
    # the silos' own logs (local workers share the terminal) say which weight, then one error
    *_silo_logs, line = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    # the refusal reaching the orchestrator is a reason code, with no weight value in it
    assert "sent weights beyond the secure-aggregation clip (update-not-encodable" in line
    assert line.endswith(
        "- start a new run with a larger --secure-aggregation-clip (a resumed run keeps its clip)"
    ), line
    assert "resume with" not in line and "--min-silos" not in line and len(line) < 600
    assert summary_of(only_run_dir(tmp_path))["resume_command"] is None


@pytest.mark.parametrize(
    ("rows", "line"),
    [
        (
            "id",
            "error: data.csv: target 'target' has 569 classes in 569 rows, too few rows per "
            "class to learn and test them - check --target (an id column?), or use --task "
            "regression for a numeric target",
        ),
        ("none", "error: data.csv: no data rows, only the header - add data rows"),
    ],
    ids=["one-class-per-row", "header-only"],
)
def test_a_csv_that_cannot_fill_a_test_split_is_refused(
    tmp_path: Path, rows: str, line: str
) -> None:
    """It used to leave an empty test set: numpy warnings, accuracy 0.0000, then a crash in
    the checkpoint with a false "rounds 1-2 are kept"."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = [f"id{i}" for i in range(len(frame))]
    (frame if rows == "id" else frame.head(0)).to_csv(tmp_path / "data.csv", index=False)
    args = ["--example", "tabular", "--data", "data.csv", "--target", "target", "--silos", "3"]
    result = run_to_end(tmp_path, *args, "--rounds", "2", "--output-dir", "d27")
    assert result.code == 2, result.stderr
    assert result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "d27").exists()


def test_resuming_a_moved_run_folder_with_its_own_store_writes_only_there(tmp_path: Path) -> None:
    """The store inside the run folder (``--tracking-uri`` there) records absolute artifact
    locations; a resume after ``mv`` used to recreate the old folder for the artifacts."""
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'x01' / 'mlflow.db'}"
    args = [*FAST, "--rounds", "2", "--output-dir", "x01", "--tracking-uri", store]
    assert run_to_end(tmp_path, *args).code == 0
    (tmp_path / "x01").rename(tmp_path / "x01_moved")
    resumed = run_to_end(tmp_path, "--resume", "x01_moved", "--rounds", "3")
    assert resumed.code == 0, resumed.stderr
    assert not (tmp_path / "x01").exists()
    summary = summary_of(tmp_path / "x01_moved")
    uri = summary["artifacts"]["mlflow_tracking_uri"]
    assert uri == f"sqlite:///{(tmp_path / 'x01_moved' / 'mlflow.db').resolve()}"
    client = MlflowClient(uri)
    run = client.get_run(summary["artifacts"]["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((tmp_path / "x01_moved").resolve().as_uri())
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "global_accuracy")]
    assert sorted(steps) == [1, 2, 3]


def test_a_resume_through_runs_latest_records_the_run_folder(tmp_path: Path) -> None:
    assert run_to_end(tmp_path, *FAST, "--rounds", "1", "--no-tracking").code == 0
    folder = only_run_dir(tmp_path)
    resumed = run_to_end(tmp_path, "--resume", "runs/latest", "--rounds", "2")
    assert resumed.code == 0, resumed.stderr
    recorded = summary_of(folder)["artifacts"]["run_dir"]
    assert recorded == str(Path("runs", "digits", folder.name))
    assert "runs/latest" not in resumed.stdout


def test_final_metrics_are_logged_once_when_the_run_finishes(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    process = start_run(tmp_path, *FAST, "--rounds", "30", "--output-dir", "ml10")
    wait_for_round(process, tmp_path / "ml10", 2)
    process.send_signal(signal.SIGTERM)
    assert finish(process, timeout=60).code == 143
    summary = summary_of(tmp_path / "ml10")
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    run_id = summary["artifacts"]["mlflow_run_id"]
    assert "final_federated_accuracy" not in client.get_run(run_id).data.metrics
    assert run_to_end(tmp_path, "--resume", "ml10").code == 0
    history = client.get_metric_history(run_id, "final_federated_accuracy")
    assert [m.value for m in history] == [summary_of(tmp_path / "ml10")["federated"]["accuracy"]]


def test_a_yaml_merge_key_is_valid_yaml(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "<<: {example: digits, silos: 2, rounds: 1}\nrounds: 2\nepochs: 1\n"
    )
    result = run_to_end(tmp_path, "--config", "job.yaml", "--no-tracking", "--output-dir", "y")
    assert result.code == 0, result.stderr
    config = summary_of(tmp_path / "y")["config"]
    assert (config["silos"], config["rounds"]) == (2, 2)  # the mapping's own key wins


def test_a_file_tracking_uri_is_refused_up_front(tmp_path: Path) -> None:
    result = run_to_end(tmp_path, "--tracking-uri", "file:///tmp/mlruns", "--output-dir", "f")
    assert result.code == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "is a file store, which MLflow 3 refuses (maintenance mode)" in line
    assert line.endswith("use a SQLite store, e.g. sqlite:///runs/mlflow.db")
    assert not (tmp_path / "f").exists()


def test_an_extreme_epsilon_prints_no_library_warning(tmp_path: Path) -> None:
    args = [*FAST, "--rounds", "2", "--clip-norm", "1", "--target-epsilon", "1e9"]
    result = run_to_end(tmp_path, *args, "--no-tracking")
    assert result.code == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("code", "what", "fix"),
    [
        (errno.EIO, "an I/O error writing", "check the disk of "),
        (errno.EROFS, "the file system became read-only writing", "check the disk of "),
        (errno.ENOSPC, "no space left on the device writing", "free at least 1 MB there"),
    ],
)
def test_storage_errors_are_told_apart_from_other_failures(
    tmp_path: Path, code: int, what: str, fix: str
) -> None:
    """EIO cannot be caused on purpose here; its classification is checked directly, the
    rest of its path (summary, MLflow, resume line) is the full-disk test's."""
    from fl_jobs.run.storage_failure import storage_failure

    error = OSError(code, os.strerror(code), str(tmp_path / "checkpoint.pt"))
    wrapped = RuntimeError("the checkpoint could not be written")
    wrapped.__cause__ = error
    failure = storage_failure(wrapped, tmp_path, needed=100_000)
    assert failure is not None and failure.errno == code
    assert failure.what.startswith(f"{what} {tmp_path / 'checkpoint.pt'}")
    assert failure.fix.startswith(fix)
    assert storage_failure(RuntimeError("something else"), tmp_path, needed=1) is None
