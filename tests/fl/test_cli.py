"""CLI: every bad argument gives one line on stderr and exit code 2 before any work; a good
run writes the comparison, plot, summary and MLflow run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_jobs.cli import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["run", *args], catch_exceptions=False)


def write_csv(path: Path) -> Path:
    rows = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    return path


# "{tmp}" is replaced by the test's own folder, which holds data.csv (30 rows, columns a, b, label).
BAD_CASES: list[tuple[list[str], str]] = [
    (["--example", "cifar"], "unknown example 'cifar' - choose one of digits, mnist"),
    (["--silos", "2000"], "2000 silos but only"),
    (["--rounds", "0"], "rounds: Input should be greater than or equal to 1"),
    (["--partition", "dirichlet:0"], "ALPHA must be a finite number > 0"),
    (["--partition", "dirichlet:-0.5"], "ALPHA must be a finite number > 0"),
    (["--partition", "zipf:2"], "unknown partition 'zipf:2'"),
    (["--fraction", "0"], "fraction: Input should be greater than 0"),
    (["--fraction", "1.5"], "fraction: Input should be less than or equal to 1"),
    (["--lr", "-1"], "lr: Input should be greater than 0"),
    (["--server-momentum", "1"], "server_momentum: Input should be less than 1"),
    (["--example", "mnist", "--model", "vgg"], "model 'vgg' is not available"),
    (["--example", "mnist", "--data-dir", "{tmp}/nowhere"], "does not exist - download"),
    (["--example", "turbofan", "--data-dir", "{tmp}"], "lacks train_FD001.txt"),
    (["--example", "tabular", "--target", "label"], "needs 'data'"),
    (
        ["--example", "tabular", "--data", "{tmp}/missing.csv", "--target", "label"],
        "missing.csv does not exist",
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/data.csv", "--target", "price"],
        "has no column 'price' - pass --target with one of its columns: a, b, label",
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/data.csv", "--target", "label", "--silos", "30"],
        "30 silos but only 24 training samples",
    ),
    (["--example", "tabular", "--task", "ranking"], "task: Input should be"),
    (["--config", "{tmp}/nope.yaml"], "nope.yaml does not exist"),
    (["--noise-multiplier", "1.0"], "noise_multiplier needs clip_norm"),
    (["--clip-norm", "0"], "clip_norm: Input should be greater than 0"),
    (["--tracking-uri", "mlflow.db"], "tracking URI 'mlflow.db' must start with one of sqlite:"),
    (["--example", "turbofan", "--partition", "shards:2"], "needs class labels"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), BAD_CASES, ids=[" ".join(a)[:45] for a, _ in BAD_CASES]
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], fragment: str, tmp_path: Path, shared_data: Path
) -> None:
    write_csv(tmp_path / "data.csv")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "out"
    result = invoke(*args, "--output-dir", str(out), "--summary", str(tmp_path / "s.json"))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "s.json").exists()  # nothing was started


def test_unknown_config_key_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("example: digits\nrouns: 3\n")
    result = invoke("--config", str(tmp_path / "job.yaml"))
    assert result.exit_code == 2
    assert "rouns: unknown setting" in result.stderr and len(result.stderr.splitlines()) == 1


def test_type_errors_are_usage_errors() -> None:
    result = runner.invoke(app, ["run", "--silos", "many"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "Invalid value for '--silos'" in result.stderr


def test_root_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "run" in result.output and "submit" in result.output


def test_every_option_has_help_and_every_setting_an_option() -> None:
    import typer.main

    from fl_jobs.config import JobConfig

    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    options = {p.name: p for p in command.params}
    assert all(p.help for p in options.values()), [n for n, p in options.items() if not p.help]
    missing = set(JobConfig.model_fields) - set(options) - {"approval"}
    assert missing == set(), f"job settings without a CLI option: {missing}"
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--batch-size" in result.output


def test_run_with_config_file_writes_everything(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "example: digits\nsilos: 3\nrounds: 9\npartition: dirichlet:0.5\nepochs: 1\n"
        f"output_dir: {tmp_path / 'run'}\n"
    )
    summary = tmp_path / "summary.json"
    result = invoke("--config", str(job), "--rounds", "3", "--summary", str(summary))
    assert result.exit_code == 0, result.output
    assert "federated (FedAvg)" in result.output and "local-only, worst silo" in result.output
    data = json.loads(summary.read_text())
    assert data["rounds"] == 3 and data["config"]["rounds"] == 3  # the CLI overrode the file
    assert set(data) >= {"federated", "centralized", "local_only", "wall_seconds", "config"}
    assert 0 < data["federated"]["accuracy"] <= 1 and data["local_only"]["worst"] is not None
    assert len(data["history"]) == 3
    plot = Path(data["artifacts"]["plot"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    uri = data["artifacts"]["mlflow_tracking_uri"]
    assert f"mlflow ui --backend-store-uri {uri}" in result.output.replace("\n", "")
    db = uri.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        keys = {row[0] for row in conn.execute("select distinct key from metrics")}
        steps = {
            row[0]
            for row in conn.execute(
                "select distinct step from metrics where key = 'global_accuracy'"
            )
        }
    assert {
        "global_accuracy",
        "global_loss",
        "silo_silo-0_train_loss",
        "silo_silo-0_samples",
    } <= keys
    assert steps == {1, 2, 3}
