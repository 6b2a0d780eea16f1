"""A finished run's model is usable: an MLflow pyfunc model, loaded in a second process (by
MLflow itself, from the run's store), scores the held-out rows to the accuracy the run
reported; ``fl-sandbox predict`` does the same from the run folder or the run id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fl_jobs.config import JobConfig
from fl_jobs.examples.split import train_test_indices
from fl_jobs.local.prepare import prepare_job

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fl_jobs", *args],
        cwd=cwd,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _iris_csv(path: Path) -> pd.DataFrame:
    """Iris with text labels and a categorical column, so one-hot layout and labels count."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns={"target": "species"})
    frame["species"] = frame["species"].map(dict(enumerate(data.target_names)))
    frame["site"] = np.random.default_rng(0).choice(["north", "south", "east"], len(frame))
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, dict]:
    folder = tmp_path_factory.mktemp("tabular")
    frame = _iris_csv(folder / "iris.csv")
    done = _cli(
        folder,
        *("run", "--example", "tabular", "--data", "iris.csv", "--target", "species"),
        *("--silos", "3", "--rounds", "4", "--no-baselines", "--output-dir", "out"),
    )
    assert done.returncode == 0, done.stderr
    # The held-out rows: the run's own seeded, stratified split.
    labels = np.unique(frame["species"].astype(str).to_numpy(), return_inverse=True)[1]
    config = JobConfig()
    _, test = train_test_indices(
        len(frame), config.example.test_fraction, config.federation.seed, labels
    )
    frame.iloc[test].to_csv(folder / "heldout.csv", index=False)
    summary = json.loads((folder / "out" / "summary.json").read_text())
    return folder, frame.iloc[test], summary


def test_second_process_loads_the_logged_model_and_reproduces_the_accuracy(
    tabular_run: tuple[Path, pd.DataFrame, dict],
) -> None:
    folder, heldout, summary = tabular_run
    uri = summary["artifacts"]["mlflow_model_uri"]
    assert uri.startswith("runs:/")
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model(sys.argv[2])\n"
        "rows = pd.read_csv('heldout.csv')\n"
        "pred = model.predict(rows.drop(columns=['species']))['prediction']\n"
        "inputs = [c['name'] for c in json.loads(model.metadata.get_input_schema().to_json())]\n"
        "print(json.dumps({'accuracy': float((pred == rows['species']).mean()),"
        " 'inputs': inputs}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, summary["artifacts"]["mlflow_tracking_uri"], uri],
        cwd=folder,
        env={k: v for k, v in ENV.items() if k != "PYTHONPATH"},  # MLflow alone loads it
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    scored = json.loads(done.stdout.strip().splitlines()[-1])
    assert scored["accuracy"] == pytest.approx(summary["federated"]["accuracy"], abs=1e-12)
    assert len(heldout) * scored["accuracy"] == pytest.approx(
        round(len(heldout) * scored["accuracy"])
    )
    # The signature holds the CSV's own columns (not the one-hot encoded ones).
    assert scored["inputs"] == [c for c in heldout.columns if c != "species"]


def test_predict_from_the_run_folder_and_the_run_id(
    tabular_run: tuple[Path, pd.DataFrame, dict],
) -> None:
    folder, heldout, summary = tabular_run
    accuracy = f"accuracy: {100 * summary['federated']['accuracy']:.2f}% on {len(heldout)} rows"
    by_folder = _cli(folder, "predict", "--model", "out", "--data", "heldout.csv", "-o", "p.csv")
    assert by_folder.returncode == 0, by_folder.stderr
    assert accuracy in by_folder.stderr
    predictions = pd.read_csv(folder / "p.csv")
    assert set(predictions["prediction"]) <= {"setosa", "versicolor", "virginica"}
    run_id = summary["artifacts"]["mlflow_run_id"]
    store = {"MLFLOW_TRACKING_URI": summary["artifacts"]["mlflow_tracking_uri"]}
    by_id = _cli(folder, "predict", "--model", run_id, "--data", "heldout.csv", env=store)
    assert by_id.returncode == 0, by_id.stderr
    assert accuracy in by_id.stderr
    assert by_id.stdout.splitlines()[0].endswith(",prediction")
    # One row, with a category the training data never had, still scores.
    one = heldout.head(1).drop(columns=["species"]).assign(site="west")
    one.to_csv(folder / "one.csv", index=False)
    single = _cli(folder, "predict", "--model", "out", "--data", "one.csv")
    assert single.returncode == 0, single.stderr
    assert len(single.stdout.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        ("missing-folder", "heldout.csv", "is not a folder, a runs:/ or models:/ URI"),
        ("runs:/0123/model", "heldout.csv", "needs the MLflow store it lives in"),
        ("out", "no-such.csv", "does not exist"),
        ("out", "bad.csv", "input lacks column 'sepal length (cm)'"),
        (".", "heldout.csv", "is neither a run folder nor an MLflow model folder"),
    ],
)
def test_bad_predict_input_is_one_line(
    tabular_run: tuple[Path, pd.DataFrame, dict], model: str, data: str, message: str
) -> None:
    folder, _, _ = tabular_run
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_csv(folder / "bad.csv", index=False)
    env = {"MLFLOW_TRACKING_URI": ""} if model.startswith("runs:") else None
    done = _cli(folder, "predict", "--model", model, "--data", data, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_feature_examples_export_their_prepared_columns(tmp_path: Path) -> None:
    """digits: the model reads x0..x63 (the example's prepared features) and scores its test
    set to the reported accuracy, through the same pyfunc code."""
    done = _cli(
        tmp_path,
        *("run", "--example", "digits", "--silos", "2", "--rounds", "2"),
        *("--no-baselines", "--no-tracking", "--output-dir", "out"),
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "mlflow_model_uri" not in summary["artifacts"]  # no tracking: the folder only
    prepared = prepare_job(JobConfig(example="digits", silos=2, rounds=2))
    X, y = prepared.dataset.test_X, prepared.dataset.test_y
    rows = pd.DataFrame(X.astype(np.float64), columns=[f"x{i}" for i in range(X.shape[1])])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    scored = _cli(tmp_path, "predict", "--model", "out", "--data", "rows.csv")
    assert scored.returncode == 0, scored.stderr
    predicted = pd.read_csv(__import__("io").StringIO(scored.stdout))["prediction"].to_numpy()
    assert float(np.mean(predicted == y)) == pytest.approx(
        summary["federated"]["accuracy"], abs=1e-12
    )
