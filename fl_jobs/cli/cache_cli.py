"""``fl-sandbox cache``: see and prune the silo data cache (fl_jobs.silo.cache_prune)."""

from __future__ import annotations

import typer

from fl_jobs.cli.cli_errors import OneLineErrorsGroup

cache_app = typer.Typer(
    cls=OneLineErrorsGroup,
    help="The silo data cache shared by runs on this machine ($FL_SANDBOX_CACHE/silo-data).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cache_app.command()
def prune(
    everything: bool = typer.Option(
        False,
        "--all",
        help="Also delete entries that run folders still link to (frees nothing now; their "
        "runs keep their copies, and the next run rebuilds what it needs)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted"),
) -> None:
    """Delete cache entries that no run folder uses any more (safe: anything is rebuilt)."""
    from fl_jobs.silo.cache_prune import apply, megabytes, plan_prune

    plan = plan_prune(everything=everything)
    verb = "would delete" if dry_run else "deleted"
    if not dry_run:
        apply(plan)
    typer.echo(
        f"{verb} {len(plan.remove)} entries ({megabytes(plan.freed)} freed) in {plan.root}; "
        f"kept {plan.kept} still linked from run folders ({megabytes(plan.kept_bytes)}, shared "
        "with those runs: delete old run folders, then prune again)"
    )
