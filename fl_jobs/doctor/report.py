"""The doctor's table: the offline job path's columns, with the observed result beside the
expected one."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from fl_jobs.doctor.storage import Result


def table(results: Sequence[Result]) -> Table:
    broken = sum(1 for r in results if not r.ok)
    out = Table(title=f"Storage movements, observed ({len(results)} probed, {broken} differ)")
    for column in ("movement", "target", "operation", "expected", "observed", "ok"):
        out.add_column(column)
    actor = None
    for r in results:
        e = r.expectation
        if e.actor != actor:
            actor = e.actor
            out.add_section()
            out.add_row(Text(f"as {actor}", style="bold"))
        want = "allowed" if e.allowed else "denied"
        seen = r.observed if r.ok else f"[red]{r.observed}[/]"
        out.add_row(
            e.movement,
            r.target,
            e.operation,
            want,
            f"{seen} ({r.detail})",
            "[green]yes[/]" if r.ok else "[red]no[/]",
        )
    return out
