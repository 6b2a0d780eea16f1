"""Assemble ``benchmarks/RESULTS.md`` from whatever results JSONs exist.

Every benchmark writes its own JSON (``benchmarks/results/<name>.json``), so one can be re-run
alone and this page regenerated: ``python -m benchmarks.results``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from benchmarks.report import RESULTS_DIR, BenchmarkReport, Cell, Table, Target, load_report

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"
# The order of the issue; any other report follows, by name.
ORDER = (
    "aggregation",
    "secure_aggregation",
    "local_vs_flower",
    "fedavg_paper",
    "strategies",
    "infra_scale",
)
_MET = {True: "met", False: "**missed**", None: "not measured"}


def load_reports(folder: Path) -> list[BenchmarkReport]:
    """Every ``*.json`` report in ``folder``, in the issue's order."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no results folder {folder}; run a benchmark first (e.g. make bench)"
        )
    reports = [load_report(path) for path in sorted(folder.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(reports, key=lambda r: (rank.get(r.benchmark, len(ORDER)), r.benchmark))


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2g}"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def _markdown_table(columns: list[str], rows: list[list[Cell]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _targets_table(targets: list[Target]) -> list[str]:
    return _markdown_table(
        ["target", "promised", "measured", "status", "note"],
        [[t.name, t.target, t.measured, _MET[t.met], t.note or None] for t in targets],
    )


def _table(table: Table) -> list[str]:
    return [f"**{table.title}**", "", *_markdown_table(table.columns, table.rows)]


def _machine(reports: list[BenchmarkReport]) -> list[str]:
    """The latest report's machine; a library's version from whichever report recorded it
    (only the benchmarks that use Flower look into its environment)."""
    m = reports[-1].machine
    versions: dict[str, str | None] = {}
    for report in reports:
        for name, version in report.machine.libraries.items():
            versions[name] = versions.get(name) or version
    libraries = ", ".join(f"{name} {version or 'absent'}" for name, version in versions.items())
    return [
        f"- CPU: {m.cpu_model}; {m.logical_cores} logical cores, {m.usable_cores} usable",
        f"- Memory: {m.memory_gib} GiB; platform {m.platform}",
        f"- Python {m.python}; {libraries}",
    ]


def render(reports: list[BenchmarkReport], now: dt.datetime | None = None) -> str:
    """The whole RESULTS.md page."""
    now = now or dt.datetime.now(dt.UTC)
    lines = [
        "# Benchmark results",
        "",
        f"Generated {now.isoformat(timespec='seconds')} by `python -m benchmarks.results` from "
        "`benchmarks/results/*.json`. How the figures are measured: `docs/benchmarks.md`.",
        "",
    ]
    if not reports:
        return "\n".join([*lines, "No results yet: run `make bench`.", ""])
    lines += ["## Machine", "", *_machine(reports), ""]
    lines += ["## Targets", ""]
    lines += _markdown_table(
        ["benchmark", "target", "promised", "measured", "status"],
        [
            [r.benchmark, t.name, t.target, t.measured, _MET[t.met]]
            for r in reports
            for t in r.targets
        ],
    )
    for report in reports:
        load = ", ".join(f"{x:.2f}" for x in report.machine.loadavg_at_start)
        lines += ["", f"## {report.title}", ""]
        if report.smoke:
            lines += ["> Smoke run: sizes far too small for the figures to mean anything.", ""]
        # Reports from before the command line was recorded name the script alone.
        command = report.command or f"python -m benchmarks.{report.benchmark}"
        lines += [
            f"`{command}`: started {report.started_utc}, took "
            f"{report.duration_s:,.0f} s; load average at start {load} "
            f"(on {report.machine.usable_cores} cores).",
            "",
        ]
        parameters = ", ".join(f"{k}={v}" for k, v in report.parameters.items())
        if parameters:
            lines += [f"Parameters: {parameters}.", ""]
        if report.targets:
            lines += [*_targets_table(report.targets), ""]
        for table in report.tables:
            lines += [*_table(table), ""]
        if report.notes:
            lines += ["Notes:", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.results", description=__doc__)
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR, help="folder of JSONs (default: %(default)s)"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="page to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        reports = load_reports(args.results)
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    args.output.write_text(render(reports))
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
