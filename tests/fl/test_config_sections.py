"""The job config in sections: a sectioned job file and a flat one (the shape of every job
file written before the sections) are the same job; a checkpoint written before the sections
resumes bit-identically; and an example with a setting of its own is one file plus one
registry line (tests/fl/toy/wave_example.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.errors import JobConfigError
from fl_jobs.rounds.resume import DATA_KEY, weight_settings

REPO = Path(__file__).resolve().parents[2]
BEFORE = REPO / "tests/fixtures/run-before-config-sections"

FLAT = """\
example: mnist
model: cnn
silos: 4
rounds: 3
lr: 0.02
server_momentum: 0.5
clip_norm: 1.0
secure_aggregation: true
secure_aggregation_weights: equal
tracking: false
"""
SECTIONED = """\
example: {name: mnist, model: cnn}
federation: {silos: 4, rounds: 3}
training: {lr: 0.02}
server: {momentum: 0.5}
privacy: {clip_norm: 1.0}
secure_aggregation: {enabled: true, weights: equal}
run: {tracking: false}
"""


def test_a_sectioned_job_file_and_a_flat_one_are_the_same_job(tmp_path: Path) -> None:
    flat, sectioned = tmp_path / "flat.yaml", tmp_path / "sectioned.yaml"
    flat.write_text(FLAT)
    sectioned.write_text(SECTIONED)
    a, b = load_job_config(flat), load_job_config(sectioned)
    assert a == b
    assert (a.example.model, a.federation.silos, a.server.momentum) == ("cnn", 4, 0.5)
    assert a.secure_aggregation.enabled and a.privacy.noise_multiplier == 1.0
    # what a run writes reads back as the same job
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(a.model_dump(mode="json")))
    assert load_job_config(again) == a
    # an option overrides the file's section
    assert load_job_config(sectioned, {"rounds": 7}).federation.rounds == 7


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rounds: 3\nfederation: {rounds: 4}\n", "federation.rounds is given twice (rounds and"),
        ("federation: {roundz: 4}\n", "federation.roundz: unknown setting"),
        ("training: {lr: 0}\n", "lr: Input should be greater than 0 - change lr in"),
        ("example: {name: digits, data: x.csv}\n", "the digits example does not read data"),
        ("example: {name: cifar}\n", "unknown example 'cifar' - choose one of"),
        ("server: {momentum: true}\n", "server_momentum: expected a number, got true"),
        ("secure_aggregation: {enabled: 1}\n", "secure_aggregation: expected true or false"),
    ],
)
def test_a_bad_section_says_where_and_how_to_fix_it(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(JobConfigError, match=says.replace("(", r"\(")):
        load_job_config(path)


def test_a_checkpoint_written_before_the_sections_records_the_same_settings() -> None:
    """Resume compares the checkpoint's settings with the job's: the flat job file of a run
    made before the sections reads into sections whose flat view is what it recorded."""
    config = JobConfig.model_validate(yaml.safe_load((BEFORE / "job.yaml").read_text()))
    recorded = torch.load(BEFORE / "checkpoint.pt", weights_only=False)["settings"]
    recorded.pop(DATA_KEY)
    assert weight_settings(config) == recorded


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fl_jobs", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_from_before_the_sections_resumes_bit_identically(tmp_path: Path) -> None:
    """The fixture stopped after round 1 (digits, FedAdam, dirichlet:0.5, seed 3), written by
    the code before the sections; resumed now to 2 rounds, it ends where a fresh 2-round run
    ends."""
    old = tmp_path / "old"
    shutil.copytree(BEFORE, old)
    resumed = _cli(tmp_path, "run", "--resume", str(old), "--rounds", "2")
    assert resumed.returncode == 0, resumed.stderr
    fresh = _cli(
        tmp_path,
        *("run", "--example", "digits", "--silos", "2", "--rounds", "2"),
        *("--strategy", "fedadam", "--partition", "dirichlet:0.5", "--seed", "3"),
        *("--no-tracking", "--no-baselines"),
        *("--output-dir", str(tmp_path / "fresh")),
    )
    assert fresh.returncode == 0, fresh.stderr
    a = torch.load(old / "global_model.pt", weights_only=True)["weights"]
    b = torch.load(tmp_path / "fresh" / "global_model.pt", weights_only=True)["weights"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


REGISTER_WAVE = """
import sys
from fl_jobs.examples import registry
from tests.fl.toy.wave_example import WaveExample
registry.EXAMPLES["wave"] = WaveExample  # the one registry line
from fl_jobs.cli.app import app
app(sys.argv[1:], prog_name="fl-sandbox")
"""


def _wave(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", REGISTER_WAVE, *args],
        cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_example_with_its_own_setting_is_one_file_and_one_registry_line(
    tmp_path: Path,
) -> None:
    shown = _wave(tmp_path, "run", "--help")
    assert shown.returncode == 0 and "--periods" in shown.stdout
    help_text = " ".join(shown.stdout.split())
    assert "Sine periods over the inputs (wave) (default: 2)" in help_text
    assert "Example: digits | mnist | turbofan | tabular | wave (default: digits)" in help_text
    ran = _wave(
        tmp_path,
        *("run", "--example", "wave", "--periods", "3", "--silos", "2", "--rounds", "2"),
        *("--no-tracking", "--no-baselines", "--output-dir", "out"),
    )
    assert ran.returncode == 0, ran.stderr
    job = yaml.safe_load((tmp_path / "out" / "job.yaml").read_text())
    assert job["example"] == {
        "name": "wave",
        "max_train_samples": None,
        "test_fraction": 0.2,
        "periods": 3,
    }
    # its setting is refused for the other examples, and checked like any other
    other = _wave(tmp_path, "run", "--example", "digits", "--periods", "3")
    assert other.returncode == 2
    assert "the digits example does not read periods (read only by wave)" in other.stderr
    bad = _wave(tmp_path, "run", "--example", "wave", "--periods", "11")
    assert bad.returncode == 2 and "periods: Input should be less than or equal to 10" in bad.stderr


def _job(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_command_line_example_settings_join_the_files_example(tmp_path: Path) -> None:
    """Options are checked against the example the job runs, wherever it was named."""
    mnist = _job(tmp_path, "example: mnist\nmodel: cnn\n", "mnist.yaml")
    assert load_job_config(mnist, {"model": "2nn"}).example.model == "2nn"  # the option wins
    data = tmp_path / "mnist-files"
    assert load_job_config(mnist, {"data_dir": data}).example.data_dir == data
    sectioned = _job(tmp_path, "example: {name: mnist}\n", "sectioned.yaml")
    assert load_job_config(sectioned, {"model": "cnn"}).example.model == "cnn"
    rows = _job(tmp_path, "data: rows.csv\ntarget: label\n", "rows.yaml")  # a CSV: tabular
    assert load_job_config(rows, {"task": "regression"}).example.name == "tabular"
    with pytest.raises(JobConfigError, match="the digits example does not read model"):
        load_job_config(None, {"model": "2nn"})  # even at mnist's default
    with pytest.raises(JobConfigError, match="the digits example does not read model"):
        load_job_config(mnist, {"example": "digits"})


def test_resume_refuses_an_example_setting_in_one_line(tmp_path: Path) -> None:
    from fl_jobs.rounds.resume import resume_config
    from fl_jobs.run.run_folder import RunFolderError

    old = tmp_path / "old"
    shutil.copytree(BEFORE, old)
    with pytest.raises(RunFolderError, match="the digits example does not read model"):
        resume_config(old, {"model": "cnn"})
    with pytest.raises(
        RunFolderError, match=re.escape("--test-fraction 0.3 differs from the run's")
    ):
        resume_config(old, {"test_fraction": 0.3})
    assert resume_config(old, {"rounds": 4}).federation.rounds == 4


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("example: [a]\n", "example must be an example's name, got ['a'] - e.g. example: digits"),
        ("example: {name: {}}\n", "example must be an example's name"),
        (
            "approval: {command: [a], timeout_seconds: 0}\n",
            "approval.timeout_seconds: Input should be greater than 0",
        ),
        ("approval: {command: [a], extra: 1}\n", "approval.extra: unknown setting"),
        ("secure_aggregation: {bogus: 1}\n", "secure_aggregation.bogus: unknown setting"),
        ("example: {bogus: 1}\n", "example.bogus: unknown setting"),
    ],
)
def test_an_error_names_the_key_the_user_wrote(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(JobConfigError, match=re.escape(says)):
        load_job_config(_job(tmp_path, text))
