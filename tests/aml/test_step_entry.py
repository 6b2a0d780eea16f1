"""Every Azure ML step script goes through one entry (fl_jobs.aml.steps.entry): a named failure
in any step is one ``error:`` line on stderr and its exit code, never a traceback."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import fl_jobs.aml.steps as steps_package
from fl_jobs.aml.component_loader import COMPONENTS_DIR, aggregate_yaml, component_yaml
from fl_jobs.aml.steps.entry import StepEntry
from fl_jobs.errors import (
    CollapseError,
    FLJobError,
    ModelUpdateError,
    QuorumLostError,
    TrainingDivergedError,
)

_COMMAND = re.compile(r"python -m (fl_jobs\.aml\.steps\.[a-z_]+)")
_PLACEHOLDER = re.compile(r"\$\{\{(?:inputs|outputs)\.([a-z0-9_]+)\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]")

#: Each component's command runs one step module.
COMPONENTS = sorted(path.stem for path in COMPONENTS_DIR.glob("*.yaml"))


def _module_of(command: str) -> str:
    match = _COMMAND.search(command)
    assert match is not None, command
    return match[1]


def _component(name: str) -> dict[str, Any]:
    return aggregate_yaml(1) if name == "aggregate" else component_yaml(name)


def _script_modules() -> list[str]:
    """Modules of the steps package run as scripts (``if __name__ == "__main__"``)."""
    found = []
    for info in pkgutil.iter_modules(steps_package.__path__, f"{steps_package.__name__}."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None
        if '__name__ == "__main__"' in Path(spec.origin).read_text():
            found.append(info.name)
    return sorted(found)


def _argv(name: str, config: Path, folder: Path) -> list[str]:
    """The component's command line with a path for every path, 1 for every number, and
    only the first of its optional parts (preprocess reads one raw-data source)."""
    component = _component(name)
    optional = iter(range(100))
    command = _OPTIONAL.sub(
        lambda m: m.group(1) if next(optional) == 0 else "", component["command"]
    )
    inputs = {**component.get("inputs", {}), **component.get("outputs", {})}

    def value(match: re.Match[str]) -> str:
        kind = inputs[match.group(1)].get("type")
        if kind == "integer":
            return "1"
        if kind == "string":
            return "none" if match.group(1) == "train_config" else "silo-1"
        return str(folder / match.group(1))

    argv = shlex.split(_PLACEHOLDER.sub(value, command))
    assert argv[:5] == ["python", "-m", _module_of(command), "--config", "job.yaml"]
    return ["--config", str(config), *argv[5:]]


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """A step that gets as far as its body pins torch to one thread; give the session its
    setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_every_component_runs_a_step_script_and_every_script_is_an_entry() -> None:
    commanded = {_module_of(component_yaml(name)["command"]) for name in COMPONENTS}
    assert commanded == set(_script_modules())
    for module in commanded:
        main = importlib.import_module(module).main
        assert isinstance(main, StepEntry), f"{module}.main does not go through the step entry"
        assert main.module == module


def _step(name: str) -> StepEntry:
    main = importlib.import_module(f"fl_jobs.aml.steps.{name}").main
    assert isinstance(main, StepEntry)
    return main


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name", COMPONENTS)
def test_a_missing_job_file_is_one_line_and_exit_2_in_every_step(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real body of each step, given a job file that is not there."""
    code = _step(name)(_argv(name, tmp_path / "absent.yaml", tmp_path))
    assert code == 2
    assert "absent.yaml" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "global_model").exists()


@pytest.mark.parametrize("name", COMPONENTS)
@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (QuorumLostError("round 1 lost its quorum", "lower --min-silos"), 3),
        (CollapseError("the global model stayed at chance"), 4),
        (ModelUpdateError("tensor 'w' has shape (3, 3)\nnot (2, 2)"), 2),
        (FLJobError("bad input", "fix it"), 2),
        (TrainingDivergedError(float("nan"), 3), 1),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_a_named_failure_in_any_step_is_one_line_and_its_exit_code(
    name: str,
    failure: BaseException,
    code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body(args: object) -> None:
        raise failure

    failing = dataclasses.replace(_step(name), body=body)
    assert failing(_argv(name, tmp_path / "job.yaml", tmp_path)) == code
    line = _one_error_line(capsys.readouterr().err)
    assert line == "error: " + " ".join(str(failure).splitlines())


@pytest.mark.parametrize("name", COMPONENTS)
def test_a_bad_argument_is_one_line_and_exit_2_in_every_step(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(name, tmp_path / "job.yaml", tmp_path)
    assert _step(name)([*argv, "--no-such-option"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--no-such-option" in line
    assert line.endswith(f"see `python -m fl_jobs.aml.steps.{name} --help`")


def test_an_unnamed_failure_keeps_its_traceback(tmp_path: Path) -> None:
    def body(args: object) -> None:
        raise RuntimeError("a bug")

    failing = dataclasses.replace(_step("init"), body=body)
    with pytest.raises(RuntimeError, match="a bug"):
        failing(_argv("init", tmp_path / "job.yaml", tmp_path))


def test_the_steps_own_argument_checks_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv("train", tmp_path / "job.yaml", tmp_path)
    bad = [*argv[: argv.index("--round") + 1], "0", *argv[argv.index("--round") + 2 :]]
    assert _step("train")(bad) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        "error: --silo-index must be >= 0 and --round >= 1"
    )
    config = [*argv[: argv.index("--train-config") + 1], "mu"]
    assert _step("train")(config) == 2
    assert "is not KEY=NUMBER" in _one_error_line(capsys.readouterr().err)
