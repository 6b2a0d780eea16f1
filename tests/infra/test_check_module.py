"""Invariants and Azure rules register in one way (policies/check_module.py): a module that
lacks one of its names, or gives one of the wrong kind, is refused with the module and the
name."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pytest

from policies.azure_rules import RULES, AzureRule
from policies.check_module import CheckModuleError, RegisteredCheck
from policies.invariants import INVARIANTS, Invariant
from policies.violation import Violation


def _module(name: str, **names: Any) -> ModuleType:
    module = ModuleType(name)
    for key, value in names.items():
        setattr(module, key, value)
    return module


def _check(graph: object) -> list[Violation]:
    return []


INVARIANT_NAMES = {"NUMBER": 8, "ID": "an-invariant", "TITLE": "A title", "check": _check}
RULE_NAMES = {**INVARIANT_NAMES, "SOURCE": "Microsoft Learn", "UNVERIFIED": False}


def test_both_registries_use_the_one_registration() -> None:
    assert issubclass(Invariant, RegisteredCheck) and issubclass(AzureRule, RegisteredCheck)
    assert Invariant.module_names() == ("NUMBER", "ID", "TITLE", "check")
    assert AzureRule.module_names() == ("NUMBER", "ID", "TITLE", "check", "SOURCE", "UNVERIFIED")
    packages = ("policies.invariants", "policies.azure_rules")
    for registered in (*INVARIANTS, *RULES):
        assert registered.check.__module__.startswith(packages)


def test_a_complete_module_is_read_into_its_record() -> None:
    rule = AzureRule.of(_module("policies.azure_rules.example", **RULE_NAMES))
    assert dataclasses.asdict(rule) == {
        "number": 8,
        "id": "an-invariant",
        "title": "A title",
        "check": _check,
        "source": "Microsoft Learn",
        "unverified": False,
    }
    assert Invariant.of(_module("policies.invariants.example", **INVARIANT_NAMES)).number == 8


@pytest.mark.parametrize(
    ("kind", "names", "missing"),
    [
        (Invariant, INVARIANT_NAMES, "TITLE"),
        (Invariant, INVARIANT_NAMES, "check"),
        (AzureRule, RULE_NAMES, "SOURCE"),
        (AzureRule, RULE_NAMES, "UNVERIFIED"),
        (AzureRule, RULE_NAMES, "NUMBER"),
    ],
)
def test_a_module_missing_a_name_is_refused_naming_module_and_name(
    kind: type[RegisteredCheck], names: dict[str, Any], missing: str
) -> None:
    given = {key: value for key, value in names.items() if key != missing}
    with pytest.raises(CheckModuleError) as refused:
        kind.of(_module("policies.somewhere.half_done", **given))
    assert str(refused.value) == (
        f"check module policies.somewhere.half_done lacks {missing} - every {kind.__name__} "
        f"module defines {', '.join(kind.module_names())}"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [("NUMBER", "8", "int"), ("UNVERIFIED", "no", "bool"), ("check", None, "a function")],
)
def test_a_name_of_the_wrong_kind_is_refused(name: str, value: object, expected: str) -> None:
    with pytest.raises(CheckModuleError, match=rf"policies\.x\.bad: {name} is .*, not {expected}"):
        AzureRule.of(_module("policies.x.bad", **{**RULE_NAMES, name: value}))
