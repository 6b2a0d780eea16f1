"""Job config: YAML and CLI give the same settings; unknown keys and bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.errors import JobConfigError


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("example: mnist\nsilos: 3\nrounds: 7\nmodel: cnn\npartition: shards:2\n")
    config = load_job_config(path, {"rounds": 9, "seed": None})
    assert (config.example, config.silos, config.rounds, config.model) == ("mnist", 3, 9, "cnn")
    assert config.partition == "shards:2"
    assert config.epochs == 1 and config.lr == 0.05  # the example's defaults


def test_example_defaults_fill_only_unset_values() -> None:
    config = JobConfig(example="digits", lr=0.3)
    assert config.lr == 0.3 and config.epochs == 5 and config.batch_size == 16


def test_approval_section_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("approval:\n  command: [./approve.sh]\n")
    assert load_job_config(path, {}).approval is not None
    path.write_text("approval:\n  url: ftp://x\n")
    with pytest.raises(JobConfigError, match="must start with http"):
        load_job_config(path, {})


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("silo: 3\n", "silo: unknown setting"),
        ("rounds: 0\n", "rounds: Input should be greater than or equal to 1"),
        ("fraction: 1.5\n", "fraction: Input should be less than or equal to 1"),
        ("partition: dirichlet:0\n", "ALPHA must be a finite number > 0"),
        ("example: cifar\n", "unknown example 'cifar'"),
        ("example: mnist\nmodel: resnet\n", "model 'resnet' is not available"),
        ("example: tabular\n", "needs 'data'"),
        ("- a\n- b\n", "must be a mapping"),
        ("silos: [\n", "not valid YAML"),
    ],
)
def test_bad_configs(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml_text)
    with pytest.raises(JobConfigError, match=fragment):
        load_job_config(path, {})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(JobConfigError, match="does not exist"):
        load_job_config(tmp_path / "nope.yaml", {})
