"""The strategy table in docs/fl-jobs.md matches the registry: every registered strategy has a
row with its flag, every option appears with its default, and no row names an unknown one."""

from __future__ import annotations

import re
from pathlib import Path

from fl_jobs.strategies.registry import STRATEGIES, _text

DOC = Path(__file__).resolve().parents[2] / "docs" / "fl-jobs.md"


def _rows() -> dict[str, str]:
    text = DOC.read_text()
    table = text[text.index("| strategy | flag | options (default)") :].split("\n\n", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        for name in re.findall(r"`--strategy (\w+)`", cells[1]):
            rows[name] = cells[2]
    return rows


def test_every_registered_strategy_has_a_row_with_its_options_and_defaults() -> None:
    rows = _rows()
    for name, info in STRATEGIES.items():
        assert name in rows, f"docs/fl-jobs.md has no row for --strategy {name}"
        for option in info.options:
            shown = f"`{option.name}` ({_text(option.default)}"
            assert shown in rows[name], f"{name}: the docs do not show {shown}...)"


def test_no_row_names_a_strategy_the_registry_lacks() -> None:
    aliases = {"fedavgm"}  # fl_jobs/strategies/aliases.py: FedAvg with server momentum
    unknown = set(_rows()) - set(STRATEGIES) - aliases
    assert not unknown, f"docs/fl-jobs.md lists unknown strategies {sorted(unknown)}"
