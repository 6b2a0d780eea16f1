"""Settings implied by others, so that the shortest command does what it says:
``fl-sandbox run --data my.csv --target label`` runs the tabular example (only the tabular
example reads ``--data``), instead of refusing ``--data`` for the default example."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def imply_example(data: dict[str, Any], given: dict[str, Any]) -> None:
    """``example: tabular`` when a CSV is given and no example is named anywhere (flat, or
    in the job file's ``example`` section)."""
    section = data.get("example")
    named = "name" in section if isinstance(section, Mapping) else section is not None
    if "example" in given or named:
        return
    in_section = section.get("data") if isinstance(section, Mapping) else None
    if given.get("data") is not None or data.get("data") is not None or in_section is not None:
        given["example"] = "tabular"
