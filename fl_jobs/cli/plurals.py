"""Counts in messages that read as English: "1 round", "3 rounds", "round 1 is kept",
"rounds 1-3 are kept"."""

from __future__ import annotations


def count(n: int, noun: str) -> str:
    """``1 round``, ``3 rounds``, ``0 rounds``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def rounds_kept(done: int) -> str:
    """``round 1 is kept``, ``rounds 1-3 are kept``."""
    return "round 1 is kept" if done == 1 else f"rounds 1-{done} are kept"
