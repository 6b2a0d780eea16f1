"""``python -m blueprints plan``: see what a sandbox deploys, offline, before paying for it.

Exit codes: 0 when the config is valid and every check holds; 1 when an invariant (or the
manifest, or the network layout) is broken; 2 when the config or the arguments are invalid,
with one line saying what to fix and nothing declared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from blueprints.spec import BLUEPRINT_NAMES, ConfigError, SandboxSpec, default_spec, load_stack_file

EXIT_VIOLATIONS = 1
EXIT_BAD_CONFIG = 2

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Blueprints of fl-sandbox: inspect what a sandbox deploys, offline.",
)


@app.callback()
def main() -> None:
    """Blueprints of fl-sandbox."""


def _spec(blueprint: str | None, silos: int | None, config: Path | None) -> SandboxSpec:
    if (blueprint is None) == (config is None):
        raise ConfigError(
            "<arguments>",
            None,
            "give exactly one of --blueprint or --config",
            f"e.g. --blueprint eyes-off --silos 3 (blueprints: {', '.join(BLUEPRINT_NAMES)}) "
            "or --config stacks/Pulumi.minimal.yaml",
        )
    if config is not None:
        if silos is not None:
            raise ConfigError(
                "<arguments>",
                silos,
                "--silos applies to --blueprint only",
                "list the silos in the stack file instead",
            )
        return load_stack_file(config)
    assert blueprint is not None
    return default_spec(blueprint, 3 if silos is None else silos)


def _fail(message: str, as_json: bool) -> None:
    line = " ".join(message.split())
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": line}))
    typer.echo(f"error: {line}", err=True)
    raise typer.Exit(EXIT_BAD_CONFIG)


@app.command()
def plan(
    blueprint: str | None = typer.Option(
        None, "--blueprint", "-b", help=f"one of: {', '.join(BLUEPRINT_NAMES)}"
    ),
    silos: int | None = typer.Option(
        None, "--silos", "-n", help="number of silos with --blueprint (default 3)"
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="a stack file, e.g. stacks/Pulumi.eyes-off.yaml"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document to stdout"),
) -> None:
    """Run a blueprint under Pulumi mocks and show resources, access, network and invariants."""
    try:
        spec = _spec(blueprint, silos, config)
    except ConfigError as exc:
        _fail(str(exc), as_json)

    from blueprints.plan import make_plan  # imported late: loads Pulumi and azure-native

    try:
        result = make_plan(spec)
    except ConfigError as exc:
        _fail(str(exc), as_json)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=False))
    else:
        from blueprints.plan_render import render

        render(result, Console())
    if not result.ok:
        if as_json:
            for violations in result.results.values():
                for violation in violations:
                    typer.echo(f"violation: {violation}", err=True)
        raise typer.Exit(EXIT_VIOLATIONS)


if __name__ == "__main__":
    app(prog_name=f"{Path(sys.executable).name} -m blueprints")
