"""Reading a job: an optional YAML file, then the command line's options over it, validated
into a :class:`~fl_jobs.config.job.JobConfig` with every problem in one line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fl_jobs.config.flat_keys import STRATEGY, location, overlay
from fl_jobs.config.implied_settings import imply_example
from fl_jobs.config.job import JobConfig
from fl_jobs.config.job_yaml import read_job_yaml
from fl_jobs.errors import JobConfigError
from fl_jobs.strategies.aliases import expand_aliases
from fl_jobs.strategies.choice import StrategyChoice
from fl_jobs.strategies.registry import DEFAULT, parse_option_text


def describe(exc: ValidationError, source: Path | None, overrides: Mapping[str, Any]) -> str:
    """Every problem, each ending with its fix (``<what> - <fix>``); pydantic's own messages
    get where to change the value: the command-line option or the key in the job file."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # a setting is named by its flat key, valid on the command line and in any job file
        where = location(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting - check the spelling (see `python -m fl_jobs run --help`)"
        elif " - " not in msg and where:
            option = "--" + where.replace("_", "-")
            msg += f" - change {option}" if where in overrides else f" - change {where} in {source}"
        problems.append(f"{where}: {msg}" if where else msg)
    return "; ".join(problems)


def load_job_config(path: Path | None, overrides: dict[str, Any] | None = None) -> JobConfig:
    """Read an optional YAML job file, apply non-``None`` overrides, validate.

    Raises :class:`JobConfigError` with every problem in one line.
    """
    data: dict[str, Any] = {}
    source = "options"
    if path is not None:
        source = str(path)
        data.update(read_job_yaml(Path(path)))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    expand_aliases(data, given)  # fedavgm: fedavg with server momentum
    imply_example(data, given)  # --data alone: the tabular example
    try:
        given = strategy_overrides(data, given)
        merged = overlay(data, given)
    except ValueError as exc:
        raise JobConfigError(f"invalid job config ({source}): {exc}") from None
    try:
        return JobConfig.model_validate(merged)
    except ValidationError as exc:
        problems = describe(exc, path, given)
        raise JobConfigError(f"invalid job config ({source}): {problems}") from None


def strategy_overrides(data: Mapping[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (command-line options) with ``--strategy NAME`` and ``--strategy-option
    KEY=VALUE`` (``strategy_options``, a list) folded into one ``strategy`` section.

    ``--strategy`` replaces the job file's strategy with its defaults; ``--strategy-option``
    alone changes options of the file's (or the default) strategy.
    """
    given = dict(given)
    name = given.pop(STRATEGY, None)
    texts = given.pop("strategy_options", None) or []
    if name is None and not texts:
        return given
    options = dict(parse_option_text(text) for text in texts)
    if isinstance(name, StrategyChoice):
        name = name.model_dump()
    if isinstance(name, Mapping):
        section: dict[str, Any] = dict(name)
    elif name is not None:
        section = {"name": name}
    else:
        current = data.get(STRATEGY, DEFAULT)
        if isinstance(current, StrategyChoice):
            current = current.model_dump()
        section = dict(current) if isinstance(current, Mapping) else {"name": current}
    section.update(options)
    given[STRATEGY] = section
    return given
