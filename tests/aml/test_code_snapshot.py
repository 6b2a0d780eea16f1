"""The staged code snapshot: self-contained, hashed, and the hash follows what runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from fl_jobs.aml.code_snapshot import JOB_CONFIG_NAME, directory_sha256, stage_code
from fl_jobs.config import load_job_config
from tests.aml.conftest import job_config


def test_snapshot_holds_the_package_and_the_cloud_config(tmp_path: Path) -> None:
    config = job_config(seed=4, output_dir=tmp_path / "runs", tracking_uri="sqlite:///x.db")
    snapshot = stage_code(tmp_path / "code", config)
    assert (snapshot.path / "fl_jobs" / "aml" / "steps" / "train.py").is_file()
    assert (snapshot.path / "fl_jobs" / "core" / "training.py").is_file()
    assert not list(snapshot.path.rglob("__pycache__"))
    staged = yaml.safe_load((snapshot.path / JOB_CONFIG_NAME).read_text())
    assert staged["federation"]["seed"] == 4 and staged["federation"]["rounds"] == 2
    assert staged["example"]["name"] == "digits" and staged["run"]["baselines"] is False
    for local_only in ("output_dir", "tracking_uri", "approval", "summary"):
        assert local_only not in staged["run"]
    assert "round_timeout" not in staged["federation"]
    assert load_job_config(snapshot.path / JOB_CONFIG_NAME).federation.seed == 4
    assert snapshot.sha256 == directory_sha256(snapshot.path)


def test_hash_is_stable_and_follows_the_config(tmp_path: Path) -> None:
    first = stage_code(tmp_path / "a", job_config(seed=1))
    again = stage_code(tmp_path / "b", job_config(seed=1))
    other = stage_code(tmp_path / "c", job_config(seed=2))
    assert first.sha256 == again.sha256
    assert other.sha256 != first.sha256


def test_restaging_replaces_stale_files(tmp_path: Path) -> None:
    target = tmp_path / "code"
    (target / "stale").mkdir(parents=True)
    (target / "stale" / "old.py").write_text("x = 1\n")
    snapshot = stage_code(target, job_config())
    assert not (snapshot.path / "stale").exists()
