"""``fl-sandbox privacy``: a silo operator's view of its own ledger, and its budget."""

from __future__ import annotations

import typer

from fl_jobs.cli.cli_errors import bad_input

privacy_app = typer.Typer(help="A silo's privacy ledger and budget (kept in its own store).")


def _store(silo: str):
    from fl_jobs.silo.silo_store import local_silo_store

    try:
        return local_silo_store(silo)
    except ValueError:
        bad_input(f"--silo {silo!r} is not a silo name", "use a name such as silo-0")


@privacy_app.command("ledger")
def ledger(silo: str = typer.Option(..., "--silo", help="The silo whose ledger to print")) -> None:
    """Print every DP release the silo recorded, and what it spent at its budget's delta."""
    from fl_jobs.silo.silo_ledger import read_budget, read_ledger, spent_so_far

    store = _store(silo)
    entries = read_ledger(store)
    budget = read_budget(store)
    typer.echo(f"{silo}: {len(entries)} releases")
    for e in entries:
        typer.echo(
            f"  {e['run']} round {e['round']}: noise x{e['noise_multiplier']:.4g}, "
            f"q {e['sample_rate']:.4g}, {e['steps']:g} steps, delta {e['delta']:.3g}"
        )
    if budget is None:
        typer.echo("budget: none set (fl-sandbox privacy budget --silo S --epsilon E)")
    else:
        used = spent_so_far(store, budget.delta)
        typer.echo(
            f"budget: epsilon {budget.epsilon:g} at delta {budget.delta:g}; spent {used:.2f} "
            "(replace-one, n public)"
        )


@privacy_app.command("budget")
def budget(
    silo: str = typer.Option(..., "--silo", help="The silo whose budget to set"),
    epsilon: float = typer.Option(..., "--epsilon", help="Total epsilon the silo may spend"),
    delta: float = typer.Option(1e-6, "--delta", help="The delta it is counted at"),
) -> None:
    """Set the silo's budget (a silo-side setting: the orchestrator's config cannot)."""
    from fl_jobs.silo.silo_ledger import set_budget

    if not epsilon > 0 or not 0 < delta < 1:
        bad_input(
            f"--epsilon {epsilon:g} / --delta {delta:g} out of range", "epsilon > 0, 0 < delta < 1"
        )
    set_budget(_store(silo), epsilon, delta)
    typer.echo(f"{silo}: budget epsilon {epsilon:g} at delta {delta:g}")
