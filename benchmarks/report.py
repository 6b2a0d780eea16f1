"""The JSON each benchmark writes: targets with measured figures, tables, and run context
(machine, start, duration, command line). Benchmarks write it through ``benchmarks.harness``.

A benchmark owns its presentation (it emits its tables as rows of values); ``results.py`` only
formats and assembles, so any one benchmark can be re-run alone and RESULTS.md regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchmarks.machine import MachineInfo

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Cell = str | int | float | bool | None


class ReportError(ValueError):
    """A results JSON that cannot be used, with what is wrong and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Strict):
    """One promise from the issue, the figure measured against it, and whether it holds."""

    name: str = Field(description="what is promised, e.g. 'aggregation GB/s vs copy'")
    target: str = Field(description="the promise as text, e.g. '>= 80%'")
    measured: str = Field(description="the measured figure as text, with its unit")
    met: bool | None = Field(description="None when the run could not measure it")
    note: str = ""


class Table(_Strict):
    """A titled table of measured values; cells are plain JSON scalars."""

    title: str
    columns: list[str] = Field(min_length=1)
    rows: list[list[Cell]]

    @model_validator(mode="after")
    def _rectangular(self) -> Table:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.title!r} row {i} has {len(row)} cells for "
                    f"{len(self.columns)} columns"
                )
        return self


class BenchmarkReport(_Strict):
    """Everything one benchmark run produced."""

    benchmark: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    started_utc: str
    duration_s: float = Field(ge=0)
    smoke: bool = False
    command: str | None = Field(
        description="the command line that produced it (benchmarks.harness records it); "
        "None in reports written before it was recorded"
    )
    machine: MachineInfo
    parameters: dict[str, Any] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def default_path(benchmark: str) -> Path:
    return RESULTS_DIR / f"{benchmark}.json"


def write_report(report: BenchmarkReport, path: Path | None = None) -> Path:
    """Write the report as indented JSON (validated again on the way out)."""
    path = path or default_path(report.benchmark)
    path.parent.mkdir(parents=True, exist_ok=True)
    BenchmarkReport.model_validate(report.model_dump())
    path.write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    return path


def load_report(path: Path) -> BenchmarkReport:
    """Read and validate one results JSON; errors name the file and the bad field."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ReportError(f"cannot read benchmark results {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path} is not valid JSON ({exc}); re-run its benchmark to rewrite it"
        ) from None
    try:
        return BenchmarkReport.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ReportError(
            f"{path} is not a valid benchmark report: {problems}; re-run its benchmark to "
            "rewrite it"
        ) from None
