"""Reading a job YAML file: one line per problem, and a key given twice is refused (plain YAML
loaders keep the last value without a word)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fl_jobs.config.unique_key_yaml import DuplicateKeyError, load_unique_keys
from fl_jobs.errors import JobConfigError


def read_job_yaml(path: Path) -> dict[str, Any]:
    """The settings in the YAML file ``path`` (empty file: none); JobConfigError otherwise."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise JobConfigError(f"job config {path} {what} - pass --config PATH to a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobConfigError(
            f"cannot read job config {path}: {exc} - save it as UTF-8 text"
        ) from None
    try:
        loaded = load_unique_keys(text)
    except DuplicateKeyError as exc:
        raise JobConfigError(f"job config {path}: {exc.problem} - keep one of them") from None
    except yaml.YAMLError as exc:
        raise JobConfigError(
            f"job config {path} is not valid YAML: {_one_line(exc)} - fix the YAML there"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise JobConfigError(
            f"job config {path} must be a mapping of settings, got {type(loaded).__name__} - "
            "write one `setting: value` per line"
        )
    return loaded


def _one_line(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: the problem and where it is."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())
