"""``python -m blueprints plan``: see what a sandbox deploys, offline, before paying for it.
``python -m blueprints arc-key``: a new key for onboarding an on-premises cluster to Azure Arc.

Exit codes: 0 when the config is valid and every check holds; 1 when an isolation invariant,
one of Azure's rules or a job-path movement is broken (or the manifest, or the network
layout); 2 when the config or the arguments are invalid, with one line
(``error: <what> - <fix>``) and nothing declared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from blueprints.catalog import BLUEPRINT_NAMES
from blueprints.spec import ConfigError, SandboxSpec, default_spec, load_stack_file
from fl_jobs.cli.cli_errors import OneLineErrorsGroup, error_line, runtime_failure

EXIT_VIOLATIONS = 1
EXIT_BAD_CONFIG = 2

app = typer.Typer(
    cls=OneLineErrorsGroup,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Blueprints of fl-sandbox: inspect what a sandbox deploys, offline.",
)


@app.callback()
def main() -> None:
    """Blueprints of fl-sandbox."""


def _spec(
    blueprint: str | None,
    silos: int | None,
    config: Path | None,
    submitter_ips: list[str] | None = None,
) -> SandboxSpec:
    if (blueprint is None) == (config is None):
        raise ConfigError(
            "<arguments>",
            None,
            "give exactly one of --blueprint or --config",
            f"e.g. --blueprint eyes-off --silos 3 (blueprints: {', '.join(BLUEPRINT_NAMES)}) "
            "or --config stacks/Pulumi.minimal.yaml",
        )
    if config is not None:
        for option, value in (("--silos", silos), ("--submitter-ip", submitter_ips)):
            if value:
                raise ConfigError(
                    "<arguments>",
                    value,
                    f"{option} applies to --blueprint only",
                    "set it in the stack file instead (silos, submitters[].ipRanges)",
                )
        return load_stack_file(config)
    assert blueprint is not None
    return default_spec(
        blueprint, 3 if silos is None else silos, submitter_ip_ranges=tuple(submitter_ips or ())
    )


def _fail(error: ConfigError, as_json: bool) -> None:
    line = error_line(error.what, error.fix)
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": line.removeprefix("error: ")}))
    typer.echo(line, err=True)
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
    submitter_ip: list[str] | None = typer.Option(
        None,
        "--submitter-ip",
        help="with --blueprint: a public IPv4 address or range the deployer submits jobs "
        "from (repeatable; needed where the workspace storage admits selected networks only)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document to stdout"),
    output_format: str = typer.Option(
        "table",
        "--format",
        help="table (for a terminal) | json (same as --json) | markdown (for a pull request)",
    ),
    sections: list[str] | None = typer.Option(
        None,
        "--section",
        help="with --format markdown: only these sections, repeatable: "
        "summary | access | network | checks | job-path (default: all)",
    ),
    manifest_out: Path | None = typer.Option(
        None,
        "--manifest-out",
        help="also write the federation manifest the stack would export (what `fl-sandbox "
        "submit --manifest FILE --dry-run` reads), offline",
    ),
) -> None:
    """Run a blueprint under Pulumi mocks: resources, access, network, invariants, Azure's
    rules and the job path of one FL round."""
    from blueprints.plan_markdown import SECTIONS

    if output_format not in ("table", "json", "markdown"):
        _fail(_argument_error("--format", output_format, "use table, json or markdown"), False)
    as_json = as_json or output_format == "json"
    if as_json and output_format == "markdown":
        _fail(_argument_error("--json", True, "give --json or --format markdown, not both"), False)
    unknown = [s for s in sections or [] if s not in SECTIONS]
    if unknown:
        _fail(
            _argument_error("--section", unknown[0], f"use one of {', '.join(SECTIONS)}"), as_json
        )
    if sections and output_format != "markdown":
        _fail(_argument_error("--section", sections[0], "add --format markdown"), as_json)
    try:
        spec = _spec(blueprint, silos, config, submitter_ip)
    except ConfigError as exc:
        _fail(exc, as_json)

    from blueprints.plan import make_plan  # imported late: loads Pulumi and azure-native

    try:
        result = make_plan(spec)
    except ConfigError as exc:
        _fail(exc, as_json)
    except Exception as exc:  # a failure we cannot name: one line and the log
        runtime_failure(exc, context="evaluating the blueprint under mocks")
    if manifest_out is not None:
        _write_manifest(result.to_dict(), manifest_out)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=False))
    elif output_format == "markdown":
        from blueprints.plan_markdown import render_markdown

        typer.echo(render_markdown(result.to_dict(), sections or SECTIONS), nl=False)
    else:
        from blueprints.plan_render import render

        render(result, Console())
    if not result.ok:
        if as_json:
            for violation in result.violations:
                typer.echo(f"violation: {violation}", err=True)
        raise typer.Exit(EXIT_VIOLATIONS)


def _argument_error(option: str, value: object, fix: str) -> ConfigError:
    return ConfigError("<arguments>", value, f"{option} {value} is not accepted", fix)


def _write_manifest(document: dict, path: Path) -> None:
    """The ``federation`` output, as ``pulumi stack output --json`` would print it."""
    federation = document.get("outputs", {}).get("federation")
    if federation is None:  # the blueprint failed before exporting it; the checks say why
        typer.echo(f"warning: no federation manifest to write to {path}", err=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"federation": federation}, indent=2) + "\n")
    typer.echo(f"manifest: {path}", err=True)


@app.command("arc-key")
def arc_key() -> None:
    """Print a new RSA-4096 private key (PEM) for onboarding a cluster to Azure Arc.

    Store it as a stack secret, never in a file:
    python -m blueprints arc-key | pulumi config set --secret --path
    'fl-sandbox:silos[<i>].arc.privateKey'"""
    from components.arc_keys import generate_private_key

    typer.echo(generate_private_key(), nl=False)


if __name__ == "__main__":
    app(prog_name=f"{Path(sys.executable).name} -m blueprints")
