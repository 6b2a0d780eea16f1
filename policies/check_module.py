"""How a check module registers: one module per check, its facts as module-level names.

An invariant's module (``policies/invariants/``) and an Azure rule's (``policies/azure_rules/``)
both carry ``NUMBER``, ``ID``, ``TITLE`` and ``check(graph) -> list[Violation]``; a rule adds
``SOURCE`` and ``UNVERIFIED``. A registry lists the modules and :meth:`RegisteredCheck.of` reads
each one into a record, refusing a module that lacks a name or gives one of the wrong kind with
an error naming the module and the name, when the registry is imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Self, get_type_hints

from policies.graph import ResourceGraph
from policies.violation import Violation


class CheckModuleError(TypeError):
    """A check module that does not carry what its registry reads."""


def module_name(field: str) -> str:
    """The module-level name a record's field is read from: ``check`` is the function, every
    other field is the constant in capitals (``number`` -> ``NUMBER``)."""
    return field if field == "check" else field.upper()


@dataclass(frozen=True)
class RegisteredCheck:
    """One registered check: its stable number and id, a one-line title and its check."""

    number: int
    id: str
    title: str
    check: Callable[[ResourceGraph], list[Violation]]

    @classmethod
    def of(cls, module: ModuleType) -> Self:
        """The record of ``module``; :class:`CheckModuleError` names what is missing or wrong."""
        hints = get_type_hints(cls)
        values = {}
        for field in dataclasses.fields(cls):
            name = module_name(field.name)
            if not hasattr(module, name):
                raise CheckModuleError(
                    f"check module {module.__name__} lacks {name} - every {cls.__name__} "
                    f"module defines {', '.join(cls.module_names())}"
                )
            value = getattr(module, name)
            kind = hints[field.name]
            if not (callable(value) if field.name == "check" else isinstance(value, kind)):
                expected = "a function of the graph" if field.name == "check" else kind.__name__
                raise CheckModuleError(
                    f"check module {module.__name__}: {name} is {value!r}, not {expected}"
                )
            values[field.name] = value
        return cls(**values)

    @classmethod
    def module_names(cls) -> tuple[str, ...]:
        """The module-level names this kind of check reads, in field order."""
        return tuple(module_name(field.name) for field in dataclasses.fields(cls))
