"""Command-line conventions shared by every benchmark script.

Each script takes ``--out`` (where to write its JSON; default ``benchmarks/results/<name>.json``)
and ``--smoke`` (tiny sizes, seconds long, for the test suite). Sizes accept ``k``/``M``
suffixes (``10M`` = 10,000,000); a bad value is refused by argparse with its name and the
expected form, before anything runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benchmarks.report import default_path

T = TypeVar("T")
_SUFFIX = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def count(text: str) -> int:
    """A positive whole number, optionally with a k/M/G suffix: ``100``, ``1M``, ``2.5k``."""
    raw = text.strip().lower()
    scale = 1
    if raw and raw[-1] in _SUFFIX:
        scale = _SUFFIX[raw[-1]]
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count; write e.g. 100, 50k or 10M"
        ) from None
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 1")
    return int(value)


def list_of(item: Callable[[str], T]) -> Callable[[str], list[T]]:
    """A comma-separated list of ``item`` values, e.g. ``--k 10,50,100``."""

    def parse(text: str) -> list[T]:
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. 10,50,100")
        return [item(p) for p in parts]

    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def parser_for(benchmark: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{benchmark}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default_path(benchmark),
        help="JSON results file to write (default: %(default)s)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes that finish in seconds (checks the script, measures nothing useful)",
    )
    return parser


def add_update_grid(parser: argparse.ArgumentParser, k: list[int], k_help: str) -> None:
    """``--k``, ``--params``, ``--repeats`` and ``--seed``: the K x P grid of generated float32
    updates (``benchmarks/updates.py``) that the aggregation benchmarks time."""
    default_k = ",".join(str(v) for v in k)
    parser.add_argument(
        "--k",
        type=list_of(positive_int),
        default=k,
        help=f"{k_help}, comma-separated (default: {default_k})",
    )
    parser.add_argument(
        "--params",
        type=list_of(count),
        default=[1_000_000, 10_000_000],
        help="parameters per update, comma-separated (default: 1M,10M)",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        help="timed repetitions per contender; the best counts (default: 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the updates (default: 0)")
