"""MLflow: metric names shared by the local run and the Azure ML steps, one run per job read
back with MlflowClient, and the failures of a store (unreachable, silent, damaged)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from fl_jobs.config import JobConfig
from fl_jobs.tracking.mlflow_run import (
    default_tracking_uri,
    flat_params,
    round_metric_names,
    silo_metric_names,
    ui_command,
)


def test_metric_names() -> None:
    assert round_metric_names({"accuracy": 0.9, "loss": 0.3}) == {
        "global_accuracy": 0.9,
        "global_loss": 0.3,
    }
    assert silo_metric_names("silo-2", {"train_loss": 1.5, "samples": 10}) == {
        "silo_silo-2_train_loss": 1.5,
        "silo_silo-2_samples": 10.0,
    }


def test_default_store_is_shared_in_the_project_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = default_tracking_uri()
    assert uri == f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"
    assert ui_command(uri) == f"mlflow ui --backend-store-uri {uri}"


def test_params_are_flat_strings() -> None:
    params = flat_params(JobConfig(example="digits", rounds=4))
    assert params["rounds"] == "4" and params["example"] == "digits"
    assert all(isinstance(v, str) for v in params.values()) and "approval" not in params


def test_one_mlflow_run_per_job_with_params_metrics_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job runs as its own process; the store is read back here with MlflowClient."""
    from mlflow.tracking import MlflowClient

    from tests.fl.run_process import run_to_end, summary_of

    args = ["--silos", "2", "--rounds", "3", "--epochs", "1", "--output-dir", "run"]
    result = run_to_end(tmp_path, *args)
    assert result.code == 0, result.stderr
    run_dir = tmp_path / "run"
    summary = summary_of(run_dir)
    uri = summary["artifacts"]["mlflow_tracking_uri"]
    assert uri == f"sqlite:///{tmp_path.resolve() / 'runs' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    assert [r.info.run_id for r in runs] == [summary["artifacts"]["mlflow_run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["rounds"] == "3" and run.data.params["silos"] == "2"
    assert set(run.data.params) == set(flat_params(JobConfig(example="digits")))
    history = client.get_metric_history(run.info.run_id, "global_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert {m.value for m in history} == {r["accuracy"] for r in summary["history"]}
    for key in ("silo_silo-0_train_loss", "silo_silo-1_samples", "silos_dropped"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 3
    assert run.data.metrics["final_federated_accuracy"] == summary["federated"]["accuracy"]
    assert "final_centralized_accuracy" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"metric_per_round.png", "summary.json", "global_model.pt", "model"}
    local = Path(client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path)))
    assert json.loads(local.read_text())["artifacts"]["mlflow_run_id"] == run.info.run_id
    # artifacts live beside the shared store, not in ./mlruns of the current directory
    store_dir = tmp_path.resolve() / "runs"
    assert run.info.artifact_uri.startswith((store_dir / "mlflow-artifacts").as_uri())
    assert not (tmp_path / "mlruns").exists()


def _run_with_tracking_uri(tmp_path: Path, uri: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from fl_jobs.cli.app import app

    out = tmp_path / "run"
    args = ["run", "--silos", "2", "--rounds", "1", "--epochs", "1", "--no-baselines"]
    result = CliRunner().invoke(app, [*args, "--tracking-uri", uri, "--output-dir", str(out)])
    return result, out


def test_unreachable_tracking_server_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result, out = _run_with_tracking_uri(tmp_path, f"http://127.0.0.1:{port}")
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"warning: tracking server 127.0.0.1:{port} is unreachable (connection refused) - "
        "start the server or correct --tracking-uri, or run with --no-tracking"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and "mlflow_run_id" not in summary["artifacts"]
    assert (out / "global_model.pt").is_file() and (out / "metric_per_round.png").is_file()


def test_a_tracking_server_that_never_answers_times_out(tmp_path: Path) -> None:
    """Connections are accepted by the kernel (backlog) but nobody ever answers: MLflow alone
    would retry for minutes; the probe gives up after its timeout."""
    from fl_jobs.tracking.tracking_store import PROBE_TIMEOUT_S

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result, out = _run_with_tracking_uri(tmp_path, f"http://127.0.0.1:{port}")
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"warning: tracking server 127.0.0.1:{port} did not answer within {PROBE_TIMEOUT_S:g} s"
    )
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


def _half_migrated_store(db: Path) -> None:
    """What a process killed while MLflow migrated a new store left behind: some tables of a
    later schema, the version of an early one."""
    import sqlite3

    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{db}", (db.parent / "a").as_uri()).engine.dispose()
    script = ScriptDirectory.from_config(_get_alembic_config(f"sqlite:///{db}"))
    early = [r.revision for r in script.walk_revisions()][-2]
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE jobs")
        conn.execute("UPDATE alembic_version SET version_num = ?", (early,))


def test_a_damaged_store_is_reported_with_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    _half_migrated_store(db)
    result, out = _run_with_tracking_uri(tmp_path, f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: MLflow store {db} is damaged or half-created (")
    assert f"move it away (`mv {db} {db}.damaged`) and run again" in line
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


def test_store_creation_is_all_or_nothing(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from fl_jobs.tracking.tracking_store import ensure_sqlite_store

    db = tmp_path / "mlflow.db"
    killed = tmp_path / ".mlflow.db.creating-12345"  # a creation killed half-way
    killed.write_bytes(b"SQLite format 3\x00 and then nothing")
    ensure_sqlite_store(db, tmp_path / "mlflow-artifacts")
    assert not killed.exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    (default,) = client.search_experiments()
    assert default.artifact_location == (tmp_path / "mlflow-artifacts" / "0").as_uri()
