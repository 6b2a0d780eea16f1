"""scripts/prepare_silo_data.py: one raw folder per manifest silo plus the orchestrator's
test set, partitioned exactly like the local federation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fl_jobs.core.silo_data import read_silo_data
from fl_jobs.local.prepare import prepare_job
from fl_jobs.run.manifest import FederationManifest
from scripts.prepare_silo_data import main
from tests.aml.conftest import job_config


@pytest.fixture
def manifest_file(manifest3: FederationManifest, tmp_path: Path) -> Path:
    path = tmp_path / "federation.json"
    path.write_text(manifest3.to_json())
    return path


def test_writes_each_silos_partition_and_the_test_set(
    manifest_file: Path,
    manifest3: FederationManifest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("partition: dirichlet:0.5\nseed: 5\n")
    out = tmp_path / "data"
    code = main(
        ["--manifest", str(manifest_file), "--example", "digits", "--config", str(config),
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    local = prepare_job(job_config(silos=3, partition="dirichlet:0.5", seed=5))
    printed = capsys.readouterr().out
    for silo, rows in zip(manifest3.silos, local.partitions, strict=True):
        data = read_silo_data(out / "silos" / silo.name)
        np.testing.assert_array_equal(data.X, local.dataset.X[rows])
        np.testing.assert_array_equal(data.y, local.dataset.y[rows])
        assert data.meta["example"] == "digits" and data.meta["silo"] == silo.name
        assert f"-> {silo.datastore}:fl-sandbox/digits/{silo.name}/" in printed
    test = read_silo_data(out / "orchestrator" / "test")
    assert len(test.y) == len(local.dataset.test_y)
    assert json.loads((out / "orchestrator" / "test" / "meta.json").read_text())["n_outputs"] == 10
    assert f"-> {manifest3.orchestrator.datastore}:fl-sandbox/digits/test/" in printed


def test_refuses_a_non_empty_output_folder(
    manifest_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "old.txt").write_text("x")
    code = main(["--manifest", str(manifest_file), "--example", "digits", "--out", str(out)])
    assert code == 2
    assert "not empty" in capsys.readouterr().err


def test_bad_manifest_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{"blueprint": "x"}')
    code = main(["--manifest", str(bad), "--example", "digits", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not a valid federation manifest" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--example", "digits"], "error: the following arguments are required: --manifest"),
        (["--manifest", "m.json", "--example", "digits", "--out", "o", "--bogus"], "error: unrec"),
    ],
)
def test_argument_errors_are_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(fragment) and line.endswith("--help`"), line


def test_out_that_is_a_file_is_refused(
    manifest_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    out.write_text("x")
    code = main(["--manifest", str(manifest_file), "--example", "digits", "--out", str(out)])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: --out {out} is a file - choose a new --out folder"


def test_an_unexpected_failure_is_one_line_with_a_log(
    manifest_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc refuses new folders (even to root): a real OSError no check anticipates."""
    out = Path("/proc") / "fl-sandbox-test" / "data"
    with pytest.raises(SystemExit) as info:
        main(["--manifest", str(manifest_file), "--example", "digits", "--out", str(out)])
    assert info.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: preparing the silo data failed: FileNotFoundError")
    log = Path(line.split("traceback in ")[1])
    assert "Traceback" in log.read_text()
    log.unlink()
