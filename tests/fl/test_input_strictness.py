"""No silent reinterpretation: every input that used to be quietly taken for something else
(settings an example ignores, decimal commas, booleans as numbers, inf in a CSV, a damaged
turbofan file, silos too small to learn from) stops with one `error: <what> - <fix>` line and
exit code 2 before anything is written, and correct input loads exactly as before."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.core.silo_data import read_silo_data
from fl_jobs.errors import DataError, JobConfigError, SiloDataError
from fl_jobs.examples.split import train_test_indices
from fl_jobs.examples.tabular import encode_features
from fl_jobs.local.prepare import MIN_SAMPLES_PER_SILO, prepare_job

REPO_ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def wine_frame() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def write_data(folder: Path) -> None:
    """The CSVs the cases below refer to by name, written from scikit-learn's real data sets."""
    wine = wine_frame()
    wine.to_csv(folder / "wine.csv", index=False)
    diabetes = load_diabetes(as_frame=True).frame
    # As a spreadsheet in a decimal-comma locale saves it: ';' between fields, ',' in numbers.
    diabetes.to_csv(folder / "diabetes_eu.csv", sep=";", decimal=",", index=False)
    # The same numbers quoted in a comma-separated file (a ',' delimiter with decimal commas).
    diabetes.to_csv(folder / "diabetes_quoted.csv", sep=",", decimal=",", index=False)
    with_inf = wine.copy()
    with_inf.loc[5, "alcohol"] = np.inf
    with_inf.to_csv(folder / "wine_inf.csv", index=False)
    huge = wine.copy()
    huge.loc[9, "proline"] = 1e39
    huge.to_csv(folder / "wine_huge.csv", index=False)
    wine.to_csv(folder / "wine_index.csv")  # pandas' default: the row index, with no name
    (folder / "twice.csv").write_text("a,b,a,label\n" + "1,2,3,0\n" * 40)
    (folder / "latin1.csv").write_bytes(b"name,label\n" + "Zoë,1\n".encode("latin-1"))
    (folder / "no_header.csv").write_text("1.5,2,0\n" * 40)
    (folder / "thousands.csv").write_text(
        "income,label\n" + "".join(f'"{1000 + i},{i % 10}00",{i % 2}\n' for i in range(40))
    )


def damaged_turbofan(shared_data: Path, folder: Path, line: int, text: str | None) -> Path:
    """A copy of the shared C-MAPSS files whose train file has ``line`` replaced (None: the
    file ends, cut in the middle of that line)."""
    folder.mkdir()
    for name in ("test_FD001.txt.gz", "RUL_FD001.txt.gz"):
        shutil.copy(shared_data / "cmapss" / name, folder / name)
    lines = gzip.decompress((shared_data / "cmapss" / "train_FD001.txt.gz").read_bytes())
    rows = lines.decode().splitlines()
    if text is None:
        rows = [*rows[: line - 1], rows[line - 1][: len(rows[line - 1]) // 2]]
    else:
        rows[line - 1] = text
    (folder / "train_FD001.txt").write_text("\n".join(rows) + "\n")
    return folder


# (arguments, YAML job file or None, fragments of the one error line). "{tmp}" is the test's
# folder holding the CSVs of write_data.
CASES: list[tuple[list[str], str | None, list[str]]] = [
    (
        ["--example", "digits", "--data", "{tmp}/wine.csv", "--target", "target"],
        None,
        ["digits example does not read data, target (read only by tabular)", "--example tabular"],
    ),
    (["--task", "regression"], None, ["does not read task", "--example tabular"]),
    (["--data-dir", "{tmp}"], None, ["does not read data_dir (read only by mnist, turbofan)"]),
    (
        ["--example", "mnist", "--test-fraction", "0.3"],
        None,
        ["mnist example does not read test_fraction (read only by digits, tabular) - drop it"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/diabetes_eu.csv", "--target", "target"],
        None,
        ["diabetes_eu.csv: column 'age' holds numbers written with a comma", "on line 2"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/diabetes_quoted.csv", "--target", "target"],
        None,
        ["column 'age' holds numbers written with a comma", "'.' as the decimal mark"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/thousands.csv", "--target", "label"],
        None,
        ["column 'income' holds numbers written with a comma", "thousands separator"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/wine_inf.csv", "--target", "target"],
        None,
        ["wine_inf.csv: column 'alcohol', line 7: inf is not a finite number - replace it"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/wine_huge.csv", "--target", "target"],
        None,
        ["column 'proline', line 11: 1e+39 is too large for float32", "rescale"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/wine_index.csv", "--target", "target"],
        None,
        ["column 1 has no name in the header row (a saved row index?)", "index=False"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/twice.csv", "--target", "label"],
        None,
        ["column name 'a' appears twice in the header row (columns 1 and 3)"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/latin1.csv", "--target", "label"],
        None,
        ["latin1.csv is not UTF-8 text (byte 0xeb on line 2) - save it as UTF-8"],
    ),
    (
        ["--example", "tabular", "--data", "{tmp}/no_header.csv", "--target", "label"],
        None,
        ["its first line looks like data, not a header", "add a header row"],
    ),
    ([], "silos: true\n", ["silos: expected a whole number, got true (a boolean)"]),
    ([], "rounds: 3.0\n", ["rounds: expected a whole number, got 3.0 - write 3"]),
    ([], "epochs: 1.5\n", ["epochs: expected a whole number, got 1.5"]),
    ([], "lr: false\n", ["lr: expected a number, got false (a boolean)"]),
    ([], "lr: .inf\n", ["lr: Input should be a finite number"]),
    ([], "tracking: 1\n", ["tracking: expected true or false, got 1"]),
    ([], "silos: 3\nrounds: 2\nsilos: 4\n", ["'silos' is given twice (lines 1 and 3)"]),
    ([], "silos: [\n", ["is not valid YAML", "(line 2, column 1) - fix the YAML"]),
    (
        ["--silos", "1000"],
        None,
        [
            "1000 silos but only 1438 training samples in digits",
            f"a silo needs at least {MIN_SAMPLES_PER_SILO} - use --silos 143 or fewer",
        ],
    ),
    (
        ["--silos", "20", "--partition", "dirichlet:0.1"],
        None,
        ["partition dirichlet:0.1 with seed 0 leaves silo-", "a larger ALPHA"],
    ),
    (
        ["--max-train-samples", "5000"],
        None,
        ["max_train_samples 5000 is more than the 1438 training samples of digits"],
    ),
    (["--seed", str(2**64)], None, ["seed: Input should be less than or equal to"]),
]


@pytest.mark.parametrize(
    ("args", "job_yaml", "fragments"),
    CASES,
    ids=[" ".join(a)[:40] or (y or "").split(":")[0] for a, y, _ in CASES],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], job_yaml: str | None, fragments: list[str], tmp_path: Path
) -> None:
    write_data(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if job_yaml is not None:
        (tmp_path / "job.yaml").write_text(job_yaml)
        args += ["--config", str(tmp_path / "job.yaml")]
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    result = runner.invoke(app, ["run", *args, "--output-dir", str(out), "--summary", str(summary)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and " - " in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists() and not summary.exists()


def test_damaged_turbofan_rows_name_file_and_line(shared_data: Path, tmp_path: Path) -> None:
    short = damaged_turbofan(shared_data, tmp_path / "short", line=20631, text=None)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", "--example", "turbofan", "--data-dir", str(short), "--output-dir", str(out)]
    )
    assert result.exit_code == 2 and not out.exists()
    line = result.stderr.strip()
    assert line.startswith(f"error: {short / 'train_FD001.txt'}, line 20631: ")
    assert "values, expected 26 (unit, cycle, 3 settings, 21 sensors)" in line
    assert f"scripts/fetch_data.py turbofan --to {short}" in line and len(line.splitlines()) == 1

    bad = damaged_turbofan(shared_data, tmp_path / "bad", line=7, text="1 7 0.1 x" + " 1" * 22)
    with pytest.raises(DataError, match=r"train_FD001.txt, line 7: 'x' is not a number - "):
        prepare_job(JobConfig(example="turbofan", data_dir=bad))
    inf = damaged_turbofan(shared_data, tmp_path / "inf", line=3, text="1 3" + " inf" * 24)
    with pytest.raises(DataError, match=r"line 3: holds a non-finite value \(inf or nan\)"):
        prepare_job(JobConfig(example="turbofan", data_dir=inf))


def test_missing_data_folder_names_the_fetch_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FL_SANDBOX_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(REPO_ROOT)
    for example, dataset, folder in (
        ("mnist", "mnist", "mnist"),
        ("turbofan", "turbofan", "cmapss"),
    ):
        with pytest.raises(DataError) as caught:
            prepare_job(JobConfig(example=example))
        message = str(caught.value)
        expected = f"python scripts/fetch_data.py {dataset} --to {tmp_path / 'data' / folder}"
        assert "does not exist - download the data with" in message and expected in message
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    with pytest.raises(DataError, match=r"lacks train-images-idx3-ubyte.*download them with"):
        prepare_job(JobConfig(example="mnist"))


def test_decimal_comma_refused_through_the_real_cli(tmp_path: Path) -> None:
    """`python -m fl_jobs run` in a subprocess: the same line on stderr, exit 2, no folder."""
    write_data(tmp_path)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "fl_jobs", "run", "--example", "tabular"),
            *("--data", str(tmp_path / "diabetes_eu.csv"), "--target", "target"),
            *("--output-dir", str(out)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "column 'age' holds numbers written with a comma, e.g. '0,038" in done.stderr
    assert done.stdout == "" and not out.exists()


def test_correct_csv_loads_exactly_as_before(tmp_path: Path) -> None:
    """A plain comma CSV gives the same matrix as reading it with pandas' defaults (the loader
    before the format checks) and as scikit-learn's own numbers; ';' and a BOM change nothing."""
    write_data(tmp_path)
    wine = wine_frame()
    path = tmp_path / "wine.csv"
    prepared = prepare_job(JobConfig(example="tabular", data=path, target="target", silos=3))
    ds = prepared.dataset
    labels = np.unique(wine["target"].astype(str).to_numpy(), return_inverse=True)[1]
    train, _ = train_test_indices(len(wine), 0.2, 0, stratify=labels)
    plain = encode_features(pd.read_csv(path).drop(columns=["target"])).astype(np.float32)
    assert np.array_equal(ds.X, plain[train])
    assert np.array_equal(ds.X, wine.drop(columns=["target"]).to_numpy(np.float32)[train])
    assert ds.task == "classification" and ds.shape.n_features == 13

    wine.to_csv(tmp_path / "wine_semicolon.csv", sep=";", index=False)
    (tmp_path / "wine_bom.csv").write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    for variant in ("wine_semicolon.csv", "wine_bom.csv"):
        other = prepare_job(
            JobConfig(example="tabular", data=tmp_path / variant, target="target", silos=3)
        ).dataset
        assert np.array_equal(other.X, ds.X) and np.array_equal(other.test_X, ds.test_X)

    # text with commas is text, not a decimal-comma number
    names = tmp_path / "names.csv"
    rows = [f'"{["Smith, J", "Doe, A"][i % 2]}",{i},{i % 2}' for i in range(40)]
    names.write_text("name,x,label\n" + "\n".join(rows) + "\n")
    text = prepare_job(JobConfig(example="tabular", data=names, target="label", silos=2))
    assert text.dataset.shape.n_features == 3  # x + two one-hot name columns


def test_numbers_that_yaml_and_the_cli_agree_on_still_load(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("silos: '4'\nlr: 1e-3\nserver_lr: 1\nfraction: 1\ntracking: no\n")
    config = load_job_config(job)
    assert (config.federation.silos, config.training.lr, config.server.lr, config.run.tracking) == (
        4,
        0.001,
        1.0,
        False,
    )
    with pytest.raises(JobConfigError, match="noise_multiplier: expected a number, got true"):
        load_job_config(None, {"clip_norm": 1.0, "noise_multiplier": True})


@pytest.mark.parametrize(
    "settings",
    [
        {"example": "digits", "test_fraction": 0.3},
        {"example": "mnist", "data_dir": "/data/mnist", "model": "cnn"},
        {"example": "turbofan", "data_dir": "/data/cmapss"},
        {"example": "tabular", "data": "d.csv", "target": "y", "task": "regression"},
    ],
)
def test_saved_configs_load_back(settings: dict[str, object], tmp_path: Path) -> None:
    """The Azure ML steps reload a job from ``model_dump``: every default-filled value must
    pass the example-settings check again."""
    import yaml

    config = JobConfig.model_validate(settings)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    assert load_job_config(path) == config


def test_silo_minimum_boundary_and_grouped_data(shared_data: Path) -> None:
    n_train = 1438
    fits = n_train // MIN_SAMPLES_PER_SILO
    prepared = prepare_job(JobConfig(example="digits", silos=fits))
    assert min(prepared.silo_sizes()) >= MIN_SAMPLES_PER_SILO
    with pytest.raises(DataError, match=f"use --silos {fits} or fewer"):
        prepare_job(JobConfig(example="digits", silos=fits + 1))
    engines = prepare_job(JobConfig(example="turbofan", silos=100))  # one engine a silo
    assert min(engines.silo_sizes()) >= MIN_SAMPLES_PER_SILO


def test_silo_folder_with_non_finite_values_is_named(tmp_path: Path) -> None:
    import json

    X = np.ones((6, 3), dtype=np.float32)
    X[4, 2] = np.inf
    np.savez(tmp_path / "arrays.npz", X=X, y=np.zeros(6, dtype=np.int64))
    meta = {"format_version": 1, "task": "classification", "n_samples": 6, "n_features": 3}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SiloDataError, match=r"X holds 1 non-finite values .* row 4, column 2 - "):
        read_silo_data(tmp_path)
