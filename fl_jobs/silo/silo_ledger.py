"""A silo's privacy ledger and budget: what the silo has released, kept by the silo.

Every DP-SGD training a silo does is appended to ``privacy-ledger.jsonl`` in its own store
(fl_jobs.silo.silo_store) with the mechanism's parameters (noise multiplier, sampling rate,
steps, delta) *before* its update leaves, across rounds, restarts, reruns and jobs. The budget
is the silo operator's setting (``privacy-budget.jsonl`` in the same store, written with
``fl-sandbox privacy budget --silo S --epsilon E``), not the orchestrator's: before training,
a silo whose ledger plus the coming round would pass it refuses to train. Epsilon is the
replace-one figure of fl_jobs.core.privacy at the budget's delta.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from fl_jobs.errors import FLJobError
from fl_jobs.silo.silo_store import SiloStore

LEDGER_RECORD = "privacy-ledger.jsonl"
BUDGET_RECORD = "privacy-budget.jsonl"


@dataclass(frozen=True)
class Budget:
    epsilon: float
    delta: float


class BudgetExhausted(FLJobError):
    """The silo's own privacy budget would be passed by the coming round."""


def _lines(store: SiloStore, record: str) -> list[dict[str, Any]]:
    raw = store.read(record) or b""
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def read_ledger(store: SiloStore) -> list[dict[str, Any]]:
    """Every release the silo recorded, oldest first."""
    return _lines(store, LEDGER_RECORD)


def read_budget(store: SiloStore) -> Budget | None:
    """The silo operator's latest budget, None when none was set."""
    lines = _lines(store, BUDGET_RECORD)
    if not lines:
        return None
    return Budget(float(lines[-1]["epsilon"]), float(lines[-1]["delta"]))


def set_budget(store: SiloStore, epsilon: float, delta: float) -> None:
    """Record a new budget (the latest line wins; earlier ones stay as history)."""
    line = {"time": time.time(), "epsilon": float(epsilon), "delta": float(delta)}
    store.append(BUDGET_RECORD, json.dumps(line, sort_keys=True).encode())


def _history(entries: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    return [(e["noise_multiplier"], e["sample_rate"], e["steps"]) for e in entries]


def spent_so_far(store: SiloStore, delta: float) -> float:
    from fl_jobs.core.privacy import spent

    return spent(_history(read_ledger(store)), delta)


def check_budget(
    silo: str, store: SiloStore, coming: dict[str, Any], *more: dict[str, Any]
) -> None:
    """Raise BudgetExhausted when the ledger plus ``coming`` (and ``more`` releases of the
    same round, e.g. a noised metric) would pass the silo's budget."""
    from fl_jobs.core.privacy import spent

    budget = read_budget(store)
    if budget is None:
        return
    after = spent([*_history(read_ledger(store)), *_history([coming, *more])], budget.delta)
    if after > budget.epsilon:
        raise BudgetExhausted(
            f"{silo} refuses to train: its privacy budget is epsilon {budget.epsilon:g} at "
            f"delta {budget.delta:g} and this round would bring it to {after:.2f}",
            f"the operator of {silo} may raise it (fl-sandbox privacy budget --silo {silo})",
        )


def record(store: SiloStore, entry: dict[str, Any]) -> None:
    """Append one release (call before the update leaves the silo)."""
    store.append(LEDGER_RECORD, json.dumps({"time": time.time(), **entry}, sort_keys=True).encode())
