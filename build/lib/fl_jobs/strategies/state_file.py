"""A strategy's state in a file, for engines that run each round in a new process (the Azure
ML aggregate step): written beside the global model of round r, read by round r + 1's step.

The file names the strategy and the round, so the next step refuses state that is not its
own (another strategy, another round) instead of continuing from it. Read with
``torch.load(weights_only=True)``: tensors and plain values only, no pickled code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fl_jobs.errors import ModelUpdateError
from fl_jobs.strategies.base import Strategy

FORMAT = "fl-sandbox/strategy-state/1"


def save_strategy_state(path: Path, strategy: Strategy, round: int) -> None:
    """Write ``strategy``'s state after ``round`` to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "strategy": strategy.name,
        "round": round,
        "state": strategy.state_dict(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_strategy_state(path: Path, strategy: Strategy, round: int) -> None:
    """Restore ``strategy`` from the state written after ``round``; ModelUpdateError naming
    the problem if the file is missing, damaged, or another strategy's or round's."""
    path = Path(path)
    if not path.is_file():
        raise ModelUpdateError(
            f"{path} does not exist: the global model folder lacks the strategy's state"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise ModelUpdateError(f"{path} is not a readable strategy state ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelUpdateError(f"{path} is not a {FORMAT} file")
    if payload.get("strategy") != strategy.name:
        raise ModelUpdateError(
            f"{path} holds the state of strategy {payload.get('strategy')!r}, but the job "
            f"runs {strategy.name!r}"
        )
    if payload.get("round") != round:
        raise ModelUpdateError(
            f"{path} holds the strategy's state after round {payload.get('round')}, expected "
            f"round {round}"
        )
    try:
        strategy.load_state_dict(payload.get("state") or {})
    except ValueError as exc:
        raise ModelUpdateError(f"{path}: {exc}") from None
