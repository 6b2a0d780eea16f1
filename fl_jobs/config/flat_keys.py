"""Every setting's one flat name, and the two shapes of a job file.

A job file may be written in sections (``training: {lr: 0.1}``) or flat (``lr: 0.1``, the
shape of every job file and checkpoint written before the sections, and of the command
line's options): :func:`nest` reads either into sections, :func:`flatten` gives the flat
view back (MLflow params, the settings a checkpoint records). Each setting has one flat key
(``--<key>`` on the command line): its field name, or the ``key`` its declaration gives
where the name alone would be ambiguous (the server's ``lr`` is ``server_lr``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fl_jobs.config.federation import FederationSettings
from fl_jobs.config.local_training import TrainingSettings
from fl_jobs.config.privacy import PrivacySettings
from fl_jobs.config.run import RunSettings
from fl_jobs.config.secure_aggregation import SecureAggregationSettings
from fl_jobs.config.server import ServerSettings
from fl_jobs.examples.registry import EXAMPLES
from fl_jobs.examples.settings import ExampleSettings

#: The sections with fixed models, by their key in a job file. ``example`` (the chosen
#: example's own model) and ``strategy`` (fl_jobs.strategies.choice) are the other two.
SECTIONS: dict[str, type[BaseModel]] = {
    "training": TrainingSettings,
    "federation": FederationSettings,
    "server": ServerSettings,
    "privacy": PrivacySettings,
    "secure_aggregation": SecureAggregationSettings,
    "run": RunSettings,
}
EXAMPLE = "example"
STRATEGY = "strategy"
DEFAULT_EXAMPLE = ExampleSettings.model_fields["name"].default

#: What a flat job file recorded for a setting its example does not read, where that is
#: not the setting's default (mnist's ``model`` defaults to 2nn; other examples wrote null).
_ABSENT: dict[str, Any] = {"model": None}


@dataclass(frozen=True)
class Setting:
    """One setting: its flat key, where it lives, and its declaration."""

    key: str
    section: str
    field: str
    info: FieldInfo
    #: The examples that read it (example settings only).
    readers: tuple[str, ...] = ()

    @property
    def extra(self) -> dict[str, Any]:
        extra = self.info.json_schema_extra
        return dict(extra) if isinstance(extra, dict) else {}

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


def _key(name: str, info: FieldInfo) -> str:
    extra = info.json_schema_extra
    return str(extra.get("key", name)) if isinstance(extra, dict) else name


def _collect() -> dict[str, Setting]:
    found: dict[str, Setting] = {}
    readers: dict[str, list[str]] = {}
    for example, cls in EXAMPLES.items():
        for name, info in cls.settings.model_fields.items():
            if name == "name":  # each example narrows it to its own name: one setting
                name, info = "name", ExampleSettings.model_fields["name"]
            key = _key(name, info)
            readers.setdefault(key, []).append(example)
            found.setdefault(key, Setting(key, EXAMPLE, name, info))
    for key, names in readers.items():
        setting = found[key]
        found[key] = Setting(key, EXAMPLE, setting.field, setting.info, tuple(names))
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            key = _key(name, info)
            if key in found:
                raise RuntimeError(
                    f"setting {key!r} is declared twice ({section} and {found[key].section})"
                )
            found[key] = Setting(key, section, name, info)
    return found


#: Every setting by its flat key, sections in job-file order.
SETTINGS: dict[str, Setting] = _collect()
#: Field name in the ``example`` section -> flat key (``name`` -> ``example``).
_EXAMPLE_KEYS = {s.field: s.key for s in SETTINGS.values() if s.section == EXAMPLE}


def _section_of(key: str) -> str:
    if key == STRATEGY:
        return STRATEGY
    return SETTINGS[key].section


def nest(data: Mapping[str, Any], *, settle: bool = True) -> dict[str, Any]:
    """``data`` (flat, in sections, or both) in sections. A setting given twice (flat and in
    its section) is a ValueError; a key that is neither stays where it is, for the model to
    refuse by name. ``settle`` checks the example section against its example (only once
    every source of it is merged: :func:`overlay`)."""
    nested: dict[str, Any] = {}
    origin: dict[tuple[str, str], str] = {}

    def put(section: str, field: str, value: Any, where: str) -> None:
        target = nested.setdefault(section, {})
        if field in target:
            raise ValueError(
                f"{where} is given twice ({origin[(section, field)]} and {where}) - keep one"
            )
        target[field] = value
        origin[(section, field)] = where

    for key, value in data.items():
        if key == STRATEGY:
            nested[STRATEGY] = value
        elif (key in SECTIONS or key == EXAMPLE) and isinstance(value, Mapping):
            for field, inner in value.items():
                put(key, str(field), inner, f"{key}.{field}")
        elif key in SETTINGS:
            setting = SETTINGS[key]
            put(setting.section, setting.field, value, key)
        else:
            nested[key] = value
    if settle and EXAMPLE in nested:
        nested[EXAMPLE] = _example_section(nested[EXAMPLE])
    return nested


def overlay(data: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a job file, flat or in sections) with ``given`` (flat options) over it, in
    sections. ValueError for a setting a job file gives twice, or one the job's example (from
    either source) does not read."""
    nested = nest(data, settle=False)
    for section, values in nest(given, settle=False).items():
        replaces = section == STRATEGY  # --strategy NAME brings that strategy's defaults
        if not replaces and isinstance(values, dict) and isinstance(nested.get(section), dict):
            nested[section] = {**nested[section], **values}
        else:
            nested[section] = values
    if EXAMPLE in nested:
        nested[EXAMPLE] = _example_section(nested[EXAMPLE])
    return nested


def _example_section(section: dict[str, Any]) -> dict[str, Any]:
    """The chosen example's settings: ``None`` means unset, and a setting only other examples
    read is refused unless it holds what flat job files recorded for it (they record every
    setting: ``None``, or ``test_fraction``'s default)."""
    name = section.get("name", DEFAULT_EXAMPLE)
    if not isinstance(name, str):
        raise ValueError(f"example must be an example's name, got {name!r} - e.g. example: digits")
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r} - choose one of {', '.join(EXAMPLES)}")
    own = EXAMPLES[name].settings.model_fields
    kept: dict[str, Any] = {}
    unread: list[str] = []
    for field, value in section.items():
        key = _EXAMPLE_KEYS.get(field)
        if field in own or key is None:
            if value is not None or field == "name":
                kept[field] = value
        elif value is not None and value != _ABSENT.get(key, SETTINGS[key].info.default):
            unread.append(key)
    if unread:
        raise ValueError(_unread_message(name, unread))
    return kept


def _unread_message(example: str, unread: list[str]) -> str:
    """``the digits example does not read data (read only by tabular) - <fix>``."""
    readers: dict[str, list[str]] = {}
    for key in unread:
        readers.setdefault(", ".join(SETTINGS[key].readers), []).append(key)
    parts = [f"{', '.join(keys)} (read only by {users})" for users, keys in readers.items()]
    them = "them" if len(unread) > 1 else "it"
    fix = f"drop {them}"
    if {"data", "target", "task"} & set(unread):
        fix = f"add --example tabular to train on your CSV, or drop {them}"
    return f"the {example} example does not read {'; '.join(parts)} - {fix}"


def flatten(sections: Mapping[str, Any]) -> dict[str, Any]:
    """A job's sections (``JobConfig.model_dump()``) as one flat mapping with every key, as
    flat job files recorded them: a setting the example does not read is its default."""
    flat: dict[str, Any] = {}
    example = sections.get(EXAMPLE) or {}
    for key, setting in SETTINGS.items():
        if setting.section == EXAMPLE:
            if setting.field in example:
                flat[key] = example[setting.field]
            else:
                flat[key] = _ABSENT.get(key, setting.info.default)
        else:
            flat[key] = sections.get(setting.section, {}).get(setting.field, setting.info.default)
        if key == "example":
            flat[STRATEGY] = sections.get(STRATEGY)
    return flat


def flat_key(loc: tuple[int | str, ...]) -> str | None:
    """Where a validation error is, by flat key (``('training', 'lr')`` -> ``lr``;
    ``('example', 'mnist', 'model')`` -> ``model``; ``('run', 'approval', 'command')`` ->
    ``approval.command``), or None when the location is no setting (an unknown key)."""
    if not loc:
        return None
    section, inner = str(loc[0]), [str(p) for p in loc[1:]]
    if section == EXAMPLE and len(inner) >= 2:
        key = _EXAMPLE_KEYS.get(inner[1])
        return ".".join([key, *inner[2:]]) if key else None
    if section in SECTIONS and inner:
        for setting in SETTINGS.values():
            if setting.section == section and setting.field == inner[0]:
                return ".".join([setting.key, *inner[1:]])
        return None
    return section if section in SETTINGS or section == STRATEGY else None


def location(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as the user wrote it: its flat key when it is a
    setting, else the dotted path without the example's union tag."""
    key = flat_key(loc)
    if key is not None:
        return key
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == EXAMPLE and parts[1] in EXAMPLES:
        del parts[1]
    return ".".join(parts)
