"""The base of every settings model (job config sections, an example's own settings): unknown
keys are refused, ``inf`` and ``nan`` are not settings, and no value is silently taken for
another (``true`` is not a number, ``3.0`` is not a whole number, ``1`` is not ``true``).

:func:`setting` declares one setting once: its default, its bounds, its help, and how the
command line spells it; the ``run`` command's options are generated from these
(fl_jobs.cli.cli_settings).
"""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


def setting(
    default: Any,
    *,
    help: str,
    key: str | None = None,
    short: str | None = None,
    default_text: str | None = None,
    metavar: str | None = None,
    negatable: bool = True,
    cli: bool = True,
    **bounds: Any,
) -> Any:
    """A pydantic field with what the command line needs.

    ``key`` is the setting's one flat name (the option ``--<key>`` and the key of a flat job
    file), when the field's own name would be ambiguous outside its section (``lr`` of the
    server is ``server_lr``). ``default_text`` replaces ``(default: <default>)`` in the help;
    ``negatable`` False makes a boolean a plain flag (``--overwrite``, no ``--no-overwrite``);
    ``cli`` False keeps a setting to job files (a mapping such as ``approval``).
    """
    extra: dict[str, Any] = {"help": help, "negatable": negatable, "cli": cli}
    for name, value in (
        ("key", key),
        ("short", short),
        ("default_text", default_text),
        ("metavar", metavar),
    ):
        if value is not None:
            extra[name] = value
    return Field(default=default, description=help, json_schema_extra=extra, **bounds)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def number_kind(annotation: Any) -> Literal["bool", "int", "float"] | None:
    """``bool``, ``int`` or ``float`` for a field of that type (optional or not), else None."""
    types = set(typing.get_args(annotation)) - {type(None)} or {annotation}
    for kind, python_type in (("bool", bool), ("int", int), ("float", float)):
        if types == {python_type}:
            return kind  # type: ignore[return-value]
    return None


class StrictModel(BaseModel):
    """Settings that refuse what they do not know and what pydantic would quietly convert."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _check_number_types(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse ``true`` for 1, ``3.0`` (or the command line's "3.0") for 3, 1 for True."""
        field = cls.model_fields.get(info.field_name or "")
        kind = number_kind(field.annotation) if field else None
        if kind is None or value is None:
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r} - write true or false")
        elif isinstance(value, bool):
            example = "3" if kind == "int" else "0.5"
            raise ValueError(
                f"expected a {'whole ' if kind == 'int' else ''}number, got {str(value).lower()} "
                f"(a boolean) - write a number, e.g. {example}"
            )
        elif kind == "int" and isinstance(value, float):
            fix = f"write {int(value)}" if value.is_integer() else "write a whole number"
            raise ValueError(f"expected a whole number, got {value!r} - {fix}")
        elif kind == "int" and isinstance(value, str) and "." in value:
            number = _float_or_none(value)
            if number is not None:
                fix = f"write {int(number)}" if number.is_integer() else "write a whole number"
                raise ValueError(f"expected a whole number, got {value} - {fix}")
        return value
