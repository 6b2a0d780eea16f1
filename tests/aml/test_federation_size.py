"""The manifest decides the federation's size for ``submit`` and ``prepare_silo_data.py``: a
job file that disagrees is refused with the fix (exit 2, nothing written), never silently
resized."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.rounds.federation_size import silo_count, sized_for
from fl_jobs.run.manifest import FederationManifest, ManifestError
from tests.aml.conftest import job_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def manifest_file(manifest3: FederationManifest, tmp_path: Path) -> Path:
    path = tmp_path / "federation.json"
    path.write_text(manifest3.to_json())
    return path


def _names(manifest: FederationManifest) -> str:
    return ", ".join(s.name for s in manifest.silos)


def test_the_manifest_sizes_a_job_that_does_not_set_silos(manifest3: FederationManifest) -> None:
    config = sized_for(job_config(), manifest3)
    assert config.federation.silos == silo_count(config, manifest3) == 3


def test_min_silos_above_the_manifest_is_refused(manifest3: FederationManifest) -> None:
    with pytest.raises(ManifestError) as caught:
        sized_for(job_config(min_silos=5), manifest3)
    assert str(caught.value) == (
        f"the job does not fit the manifest's 3 silos ({_names(manifest3)}): min_silos 5 is "
        "more than the 3 silos that train each round (3 silos x fraction 1.0) - lower "
        "min_silos to 3 or less"
    )


def test_submit_refuses_a_job_file_with_another_silo_count(
    manifest_file: Path, manifest3: FederationManifest, tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("silos: 5\nmin_silos: 5\nrounds: 1\n")
    out = tmp_path / "dry"
    args = ["submit", "--manifest", str(manifest_file), "--example", "digits"]
    result = CliRunner().invoke(app, [*args, "--config", str(job), "--dry-run", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: the job sets silos: 5 but the manifest of blueprint 'eyes-off' has 3 silos "
        f"({_names(manifest3)}) - set silos: 3 in the job file, or drop silos (the manifest "
        "decides)"
    ]
    assert not out.exists()


def test_prepare_silo_data_refuses_a_job_file_with_another_silo_count(
    manifest_file: Path, tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("silos: 5\n")
    out = tmp_path / "data"
    script = ["scripts/prepare_silo_data.py", "--manifest", str(manifest_file)]
    result = subprocess.run(
        [sys.executable, *script, "--example", "digits", "--config", str(job), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: the job sets silos: 5 but the manifest of blueprint")
    assert not out.exists()
