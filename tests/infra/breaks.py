"""Break one thing in a real blueprint run, then check it: shared by the Azure-rule and job-path
tests. Records are copied, never edited in place (the runs are cached per session)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from blueprints.mock_runtime import MockRun, RecordedResource
from blueprints.plan import _plain
from policies.graph import ResourceGraph
from tests.infra.blueprint_runs import blueprint_run

Records = list[RecordedResource]
Match = Callable[[RecordedResource], bool]


def run_of(blueprint: str, silos: int = 2) -> tuple[Records, dict[str, Any]]:
    run: MockRun = blueprint_run(blueprint, silos)
    return list(run.resources), copy.deepcopy(_plain(run.result))


def graph(records: Records, outputs: dict[str, Any]) -> ResourceGraph:
    return ResourceGraph.build(records, outputs)


def named(suffix: str) -> Match:
    """Resources whose logical name ends with ``suffix``."""
    return lambda r: r.name.endswith(suffix)


def typed(type_suffix: str, name_part: str = "") -> Match:
    return lambda r: r.type.endswith(f":{type_suffix}") and name_part in r.name


def one(records: Records, match: Match) -> RecordedResource:
    found = [r for r in records if match(r)]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def without(records: Records, match: Match) -> Records:
    kept = [r for r in records if not match(r)]
    assert len(kept) < len(records), "nothing matched"
    return kept


def edited(records: Records, match: Match, change: Callable[[dict[str, Any]], None]) -> Records:
    """``change`` applied to the inputs and outputs of every matching record."""
    out, hit = [], False
    for record in records:
        if match(record):
            hit = True
            inputs, outputs = copy.deepcopy(record.inputs), copy.deepcopy(record.outputs)
            change(inputs)
            change(outputs)
            record = replace(record, inputs=inputs, outputs=outputs)
        out.append(record)
    assert hit, "nothing matched"
    return out


def undepended(records: Records, match: Match, on: Match) -> Records:
    """Matching records no longer wait for the resources matched by ``on``."""
    gone = {r.urn for r in records if on(r)}
    assert gone, "no dependency matched"
    return [
        replace(r, dependencies=tuple(d for d in r.dependencies if d not in gone))
        if match(r)
        else r
        for r in records
    ]


def nested_set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets ``a.b.c`` (creating mappings on the way)."""

    def change(props: dict[str, Any]) -> None:
        keys = path.split(".")
        target = props
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value

    return change
