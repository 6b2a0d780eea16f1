"""The one way a benchmark reports: start a run, measure, finish it with targets and tables.

``start(name, args, argv)`` is called once the arguments are checked and before anything is
measured: it starts the clock and records the machine (with its load at the start) and the
command line. ``run.finish(title, parameters=..., targets=..., tables=..., notes=...)`` writes
``benchmarks/results/<name>.json`` (or ``--out``) in the one schema ``results.py`` reads
(:class:`~benchmarks.report.BenchmarkReport`) and prints where. No benchmark assembles or
writes its report itself (``tests/test_benchmarks_smoke.py`` checks it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.machine import MachineInfo, collect
from benchmarks.report import BenchmarkReport, Table, Target, write_report


def command_line(name: str, argv: Sequence[str] | None) -> str:
    """The command that reruns this benchmark with the same arguments."""
    given = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", "-m", f"benchmarks.{name}", *given])


@dataclass
class BenchmarkRun:
    """A benchmark run in progress: what it runs on, how it was started, since when."""

    name: str
    out: Path | None
    smoke: bool
    command: str
    machine: MachineInfo
    started_utc: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    _start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def finish(
        self,
        title: str,
        *,
        parameters: Mapping[str, Any],
        targets: Iterable[Target] = (),
        tables: Iterable[Table] = (),
        notes: Iterable[str] = (),
    ) -> Path:
        """Write the report and print its path; returns the path."""
        report = BenchmarkReport(
            benchmark=self.name,
            title=title,
            started_utc=self.started_utc,
            duration_s=round(self.elapsed(), 1),
            smoke=self.smoke,
            command=self.command,
            machine=self.machine,
            parameters=dict(parameters),
            targets=list(targets),
            tables=list(tables),
            notes=list(notes),
        )
        path = write_report(report, self.out)
        print(f"wrote {path}")
        return path


def start(
    name: str,
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    *,
    flower_python: Path | None = None,
) -> BenchmarkRun:
    """Start benchmark ``name`` given its parsed ``args`` (``--out``, ``--smoke``) and the
    ``argv`` its ``main`` received; pass the Flower environment's python to record flwr's
    version too."""
    return BenchmarkRun(
        name=name,
        out=args.out,
        smoke=args.smoke,
        command=command_line(name, argv),
        machine=collect(flower_python),
    )
