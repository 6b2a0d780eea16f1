"""Shared helpers for the infra tests: cached mock runs and resource-graph lookups.

A mock run of a blueprint takes a few seconds, so each (blueprint, silo count) is run once per
test session and shared by every test module that needs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from blueprints.builder import build_sandbox
from blueprints.catalog import BLUEPRINT_NAMES  # noqa: F401 - the tests import the names here
from blueprints.mock_runtime import MockRun, RecordedResource, run_under_mocks
from blueprints.spec import ConfigError, SandboxSpec, example_spec, parse_spec

USER_TAGS = {"team": "fl-research", "cost-center": "42"}


@functools.cache
def blueprint_spec(blueprint: str, silos: int) -> SandboxSpec:
    """The default spec of ``blueprint`` with ``silos`` silos, plus user tags."""
    return example_spec(blueprint, silos).model_copy(update={"tags": USER_TAGS})


@functools.cache
def blueprint_run(blueprint: str, silos: int) -> MockRun:
    """``blueprint_spec(blueprint, silos)`` run under mocks, once per test session."""
    spec = blueprint_spec(blueprint, silos)
    return run_under_mocks(lambda: build_sandbox(spec))


def run_spec(spec: SandboxSpec) -> MockRun:
    return run_under_mocks(lambda: build_sandbox(spec))


def declared_before_error(program: Callable[[], Any]) -> tuple[ConfigError, list[RecordedResource]]:
    """Run ``program`` under mocks; return the ConfigError it raised and what it had declared.

    The error is caught inside the program so that the mock monitor's records survive: they
    show whether any resource was registered before validation failed.
    """
    caught: list[ConfigError] = []

    def guarded() -> Any:
        try:
            return program()
        except ConfigError as exc:
            caught.append(exc)
            return {}

    run = run_under_mocks(guarded)
    assert caught, "expected a ConfigError"
    return caught[0], run.resources


def build_from_raw(raw: dict[str, Any]) -> Callable[[], Any]:
    """The Pulumi program's path for a raw ``fl-sandbox:`` mapping: parse, then build."""
    return lambda: build_sandbox(parse_spec(raw, source="test"))


def custom(run: MockRun) -> list[RecordedResource]:
    return [r for r in run.resources if r.custom]


def owner_component(run: MockRun, resource: RecordedResource) -> RecordedResource | None:
    """The nearest Orchestrator, Silo or JumpHost (orchestrator side) component above
    ``resource``."""
    by_urn = run.by_urn()
    parent = resource.parent
    while parent and parent in by_urn:
        node = by_urn[parent]
        if node.type in (
            "fl-sandbox:infra:Orchestrator",
            "fl-sandbox:infra:Silo",
            "fl-sandbox:infra:JumpHost",
        ):
            return node
        parent = node.parent
    return None


def walk_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, string) in a nested output value, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", str(key)
            yield from walk_strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from walk_strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
