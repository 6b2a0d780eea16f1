"""CLI: every bad argument gives one line on stderr and exit code 2 before any work; a good
run writes the comparison, plot, summary and MLflow run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_jobs.cli.app import app

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
    (["--silos", "3", "--min-silos", "4"], "min_silos 4 is more than the 3 silos that train"),
    (
        ["--silos", "4", "--fraction", "0.5", "--min-silos", "3"],
        "min_silos 3 is more than the 2 silos that train each round (4 silos x fraction 0.5)",
    ),
    (["--min-silos", "0"], "min_silos: Input should be greater than or equal to 1"),
    (["--round-timeout", "0"], "round_timeout: Input should be greater than 0"),
    (["--name", "my run"], "run name 'my run' must be 1-64 letters, digits"),
    (["--strategy", "fedadm"], "unknown strategy 'fedadm' - choose one of fedavg, fedprox"),
    (["--strategy", "fedadam", "--strategy-option", "mu=1"], "fedadam has no option 'mu' - its"),
    (["--strategy", "fedprox", "--strategy-option", "mu=-1"], "option mu of fedprox: must be >= 0"),
    (["--strategy", "krum", "--strategy-option", "f=x"], "option f of krum: expected a whole"),
    (["--strategy-option", "eta"], "--strategy-option 'eta' is not KEY=VALUE"),
    (["--strategy", "krum", "--silos", "4"], "needs at least 5 updates a round, but 4 silos"),
    (["--strategy", "fedyogi", "--server-momentum", "0.9"], "are options of fedavg, fedprox"),
    (["--strategy", "median", "--secure-aggregation"], "cannot be combined with strategy median"),
    (["--secure-aggregation", "--min-silos", "1"], "set min_silos to 2 or more with secure"),
    (["--secure-aggregation", "--secure-aggregation-clip", "-1"], "greater than 0"),
    (["--norm-limit", "1"], "norm_limit: Input should be greater than 1"),
    (["--target-epsilon", "1"], "target_epsilon needs clip_norm"),
    (
        ["--clip-norm", "1", "--noise-multiplier", "1", "--target-epsilon", "1"],
        "give either noise_multiplier or target_epsilon, not both",
    ),
    (
        ["--clip-norm", "1", "--target-epsilon", "1e-9"],
        "target_epsilon 1e-09 cannot be met by a silo of",
    ),
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


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--silos", "many"], "error: Invalid value for '--silos': "),
        (["run", "--silo", "3"], "error: No such option: --silo"),
        (["rnu"], "error: No such command 'rnu'"),
    ],
)
def test_typer_parse_errors_are_one_line_too(args: list[str], fragment: str) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no rich box
    assert lines[0].startswith(fragment), lines[0]
    assert lines[0].endswith("--help`") and "╭" not in result.output


def test_help_shows_every_default() -> None:
    """Defaults written in [brackets] were eaten by rich markup: each must be visible."""
    from fl_jobs.config.flat_keys import SETTINGS

    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for key, setting in SETTINGS.items():
        default = setting.info.default
        if default is not None and not isinstance(default, bool) and key != "approval":
            shown = setting.extra.get("default_text") or f"(default: {default})"
            assert shown in text, key
    for shown in ("(default: the example's)", "(default: on)", "(default: all selected)"):
        assert shown in text
    assert "(default: no limit)" in text and "(default: runs/<name>/<date-time>/" in text


def write_diabetes_csv(path: Path) -> Path:
    """scikit-learn's diabetes data in its original units (bundled, no download)."""
    from sklearn.datasets import load_diabetes

    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "fragment", "suggestion"),
    [
        (
            ["--lr", "1e6"],
            "error: training diverged in round 1 at silo-0: its training loss reached",
            "0.1 (this run used 1e+06)",  # digits' default
        ),
        (
            ["--example", "tabular", "--data", "{csv}", "--target", "target"],
            "error: training diverged in round 1 at silo-0: its training loss became ",
            "0.0005 (this run used 0.05)",  # trains: RMSE 53 in 20 rounds, as centralized
        ),
    ],
    ids=["lr-1e6", "diabetes-default-lr"],
)
def test_diverging_training_stops_with_round_silo_and_a_learning_rate(
    tmp_path: Path, args: list[str], fragment: str, suggestion: str
) -> None:
    csv = write_diabetes_csv(tmp_path / "diabetes.csv")
    args = [a.replace("{csv}", str(csv)) for a in args]
    out = tmp_path / "run"
    result = invoke(*args, "--silos", "3", "--rounds", "3", "--output-dir", str(out))
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(fragment), lines[0]
    assert lines[0].endswith(f"- lower the learning rate, e.g. --lr {suggestion}")
    assert "resume with" not in lines[0]  # the same settings would diverge again
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["completed_rounds"] == 0
    assert summary["resume_command"] is None
    assert (out / "metric_per_round.png").is_file() and (out / "global_model.pt").is_file()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=summary["artifacts"]["mlflow_tracking_uri"])
    run = client.get_run(summary["artifacts"]["mlflow_run_id"])
    assert run.info.status == "FAILED"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--lr", "0.5"], "--lr 0.5 differs from the run's setting 0.1"),
        (["--output-dir", "x"], "--output-dir cannot be used with --resume"),
        (["--config", "{tmp}/job.yaml"], "--config cannot be used with --resume"),
        (["--rounds", "1"], "already finished all 1 round - pass --rounds N (more than 1)"),
        (["--strategy", "fedadam"], "--strategy fedadam (eta=0.01, beta_1=0.9, beta_2=0.99, "),
        (["--strategy-option", "mu=1"], "fedavg has no option 'mu'"),
    ],
)
def test_resume_refuses_what_would_break_the_run(
    tmp_path: Path, extra: list[str], fragment: str
) -> None:
    out = tmp_path / "run"
    first = invoke(
        "--silos",
        "2",
        "--rounds",
        "1",
        "--no-baselines",
        "--no-tracking",
        "--output-dir",
        str(out),
    )
    assert first.exit_code == 0, first.output
    (tmp_path / "job.yaml").write_text("silos: 2\n")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    result = invoke("--resume", str(out), *[a.replace("{tmp}", str(tmp_path)) for a in extra])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_resume_of_a_folder_without_a_run_is_refused(tmp_path: Path) -> None:
    for folder, fragment in (
        (tmp_path / "nowhere", "does not exist"),
        (tmp_path, "holds no run to resume (no job.yaml)"),
    ):
        result = invoke("--resume", str(folder))
        assert result.exit_code == 2 and fragment in result.stderr, result.stderr


def test_root_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "run" in result.output and "submit" in result.output


def test_every_option_has_help_and_every_setting_an_option() -> None:
    import typer.main

    from fl_jobs.config.flat_keys import SETTINGS

    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    options = {p.name: p for p in command.params}
    assert all(p.help for p in options.values()), [n for n, p in options.items() if not p.help]
    missing = set(SETTINGS) - set(options) - {"approval"}
    assert missing == set(), f"job settings without a CLI option: {missing}"
    from fl_jobs.strategies.registry import STRATEGIES

    # --help shows every strategy, and every option of each with its kind, range and default
    assert all(name in str(options["strategy"].help) for name in STRATEGIES)
    for info in STRATEGIES.values():
        for option in info.options:
            assert f"{info.name}: " in str(options["strategy_options"].help)
            assert option.describe() in str(options["strategy_options"].help), option
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
