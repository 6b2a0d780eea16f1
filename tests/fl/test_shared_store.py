"""One MLflow store per project folder, shared by runs: jobs that start together against a new
store all end up in it, each in its own run folder, with names, tags and params to compare
them by; ``$MLFLOW_TRACKING_URI`` is honoured; a damaged cached empty store is rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from tests.fl.run_process import finish, start_run, summary_of

ARGS = ["--example", "digits", "--silos", "2", "--rounds", "2", "--epochs", "1"]


def test_four_jobs_started_at_once_share_one_new_store_and_get_their_own_folders(
    tmp_path: Path,
) -> None:
    """A ``&`` sweep: same name, same second, no store yet. Each job keeps its folder and
    its MLflow run, read back here with MlflowClient."""
    from mlflow.tracking import MlflowClient

    processes = [
        start_run(tmp_path, *ARGS, "--no-baselines", "--name", "sweep", "--seed", str(i))
        for i in range(4)
    ]
    results = [finish(p, timeout=400) for p in processes]
    for result in results:
        assert result.code == 0, result.stderr
        assert "Traceback" not in result.stderr and "warning" not in result.stderr
    folders = sorted(p for p in (tmp_path / "runs" / "sweep").iterdir())
    assert len(folders) == 4, folders
    summaries = [summary_of(folder) for folder in folders]
    assert sorted(s["config"]["seed"] for s in summaries) == [0, 1, 2, 3]
    store = tmp_path / "runs" / "mlflow.db"
    uris = {s["artifacts"]["mlflow_tracking_uri"] for s in summaries}
    assert uris == {f"sqlite:///{store.resolve()}"}
    client = MlflowClient(tracking_uri=uris.pop())
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_id: r for r in client.search_runs(experiments)}
    assert set(runs) == {s["artifacts"]["mlflow_run_id"] for s in summaries}
    for summary in summaries:
        run = runs[summary["artifacts"]["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
        assert run.info.run_name.startswith("sweep-digits-fedavg-2silos-")
        run_dir = (tmp_path / summary["artifacts"]["run_dir"]).resolve()
        assert Path(run.data.tags["fl_sandbox.run_dir"]) == run_dir
        assert run.data.tags["fl_sandbox.strategy"] == "fedavg"
        assert (
            yaml.safe_load(run.data.tags["fl_sandbox.config"])["federation"]["seed"]
            == (summary["config"]["seed"])
        )
        assert run.data.params["seed"] == str(summary["config"]["seed"])
        history = client.get_metric_history(run.info.run_id, "global_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
    # comparable: one query over the store orders the four runs by their final accuracy
    ordered = client.search_runs(experiments, order_by=["metrics.final_federated_accuracy DESC"])
    assert len(ordered) == 4


def test_four_jobs_against_one_new_explicit_store_each_keep_their_run(tmp_path: Path) -> None:
    """The trial's case: separate folders, one ``--tracking-uri`` store that does not exist
    yet; each job used to replace the store the one before had opened, losing its run."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    processes = [
        start_run(
            tmp_path,
            *ARGS,
            "--no-baselines",
            "--seed",
            str(i),
            "--tracking-uri",
            uri,
            "--output-dir",
            f"run{i}",
        )
        for i in range(4)
    ]
    results = [finish(p, timeout=400) for p in processes]
    assert all(r.code == 0 and r.stderr == "" for r in results), [r.stderr for r in results]
    ids = {summary_of(tmp_path / f"run{i}")["artifacts"]["mlflow_run_id"] for i in range(4)}
    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert {r.info.run_id for r in client.search_runs(experiments)} == ids
    assert len(ids) == 4


def test_mlflow_tracking_uri_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "elsewhere" / "team.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    for seed in ("1", "2"):
        result = CliRunner().invoke(app, ["run", *ARGS, "--no-baselines", "--seed", seed])
        assert result.exit_code == 0, result.output
    assert not (tmp_path / "runs" / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    assert sorted(r.data.params["seed"] for r in runs) == ["1", "2"]


def test_a_bad_mlflow_tracking_uri_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlflow.db")
    result = CliRunner().invoke(app, ["run", *ARGS])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: MLFLOW_TRACKING_URI='mlflow.db' is not an MLflow store URI - ")
    assert "or unset it" in line
    assert not (tmp_path / "runs").exists()


def test_a_damaged_cached_empty_store_is_rebuilt_with_a_warning_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("FL_SANDBOX_CACHE", str(tmp_path / "cache"))
    template = tmp_path / "cache" / "mlflow" / f"empty-store-{mlflow.__version__}.db"
    template.parent.mkdir(parents=True)
    template.write_bytes(b"\x5a" * 50_000)  # not a database
    args = ["run", *ARGS, "--no-baselines"]
    result = CliRunner().invoke(app, [*args, "--output-dir", "a"])
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"warning: the cached empty MLflow store {template} was damaged (file is not a "
        "database); it was rebuilt"
    )
    assert "mlflow_run_id" in json.loads(Path("a/summary.json").read_text())["artifacts"]
    # the next run in a new project folder copies the rebuilt template without a word
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    again = CliRunner().invoke(app, [*args, "--output-dir", "b"])
    assert again.exit_code == 0 and again.stderr == "", again.output
    assert "mlflow_run_id" in json.loads(Path("b/summary.json").read_text())["artifacts"]
