"""Real blueprint runs under mocks, cached per test session (each costs a few seconds).

Tests must not mutate the returned records: use ``modified`` to get an edited copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from blueprints.catalog import BLUEPRINT_NAMES  # noqa: F401 - the tests import the names here
from blueprints.mock_runtime import RecordedResource
from tests.infra.helpers import blueprint_run  # noqa: F401 - one cached run per session


def find(records: list[RecordedResource], type_suffix: str, **tags: str) -> list[RecordedResource]:
    """Records of a type (``StorageAccount``...) whose tags include ``tags`` (``_`` -> ``-``)."""
    wanted = {k.replace("_", "-"): v for k, v in tags.items()}
    return [
        r
        for r in records
        if r.type.endswith(f":{type_suffix}")
        and all((r.inputs.get("tags") or {}).get(k) == v for k, v in wanted.items())
    ]


def modified(
    records: list[RecordedResource],
    target: RecordedResource,
    change: Callable[[dict[str, Any]], None],
) -> list[RecordedResource]:
    """A copy of ``records`` where ``change`` was applied to ``target``'s inputs and outputs."""
    result = []
    for record in records:
        if record.urn == target.urn:
            inputs, outputs = copy.deepcopy(record.inputs), copy.deepcopy(record.outputs)
            change(inputs)
            change(outputs)
            record = replace(record, inputs=inputs, outputs=outputs)
        result.append(record)
    return result
