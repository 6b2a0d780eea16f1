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
    assert (
        config.example.name,
        config.federation.silos,
        config.federation.rounds,
        config.example.model,
    ) == ("mnist", 3, 9, "cnn")
    assert config.federation.partition == "shards:2"
    assert config.training.epochs == 1 and config.training.lr == 0.05  # the example's defaults


def test_example_defaults_fill_only_unset_values() -> None:
    config = JobConfig(example="digits", lr=0.3)
    assert (
        config.training.lr == 0.3
        and config.training.epochs == 5
        and config.training.batch_size == 16
    )


def test_approval_section_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("approval:\n  command: [./approve.sh]\n")
    assert load_job_config(path, {}).run.approval is not None
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


def test_strategy_section_from_yaml_and_command_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("strategy:\n  name: fedadam\n  eta: 0.05\n")
    config = load_job_config(path, {"strategy_options": ["beta_1=0.5"]})
    assert config.strategy.name == "fedadam"
    assert config.strategy.options == {
        "eta": 0.05, "beta_1": 0.5, "beta_2": 0.99, "tau": 0.001, "bias_correction": False
    }  # fmt: skip
    replaced = load_job_config(path, {"strategy": "fedyogi"})  # --strategy: its own defaults
    assert (replaced.strategy.name, replaced.strategy.options["eta"]) == ("fedyogi", 0.01)
    path.write_text("strategy: median\n")
    assert load_job_config(path, {}).strategy.describe() == "median"
    dumped = load_job_config(path, {"strategy": "krum", "strategy_options": ["m=3"]}).model_dump()
    assert dumped["strategy"] == {"name": "krum", "f": 1, "m": 3}  # what job.yaml records


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("strategy:\n  eta: 1\n", "the strategy section needs a 'name'"),
        ("strategy:\n  name: fedadam\n  eta: true\n", "option eta of fedadam: expected a number"),
        ("strategy:\n  name: krum\n  f: 1.0\n", "option f of krum: expected a whole number"),
        ("strategy:\n  name: fedadam\n  bias_correction: 1\n", "expected true or false"),
        ("strategy: [fedavg]\n", "strategy must be a name or a mapping"),
        ("strategy: krum\nsilos: 10\nfraction: 0.3\n", "needs at least 5 updates a round"),
    ],
)
def test_bad_strategy_sections(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml_text)
    with pytest.raises(JobConfigError, match=fragment):
        load_job_config(path, {})
