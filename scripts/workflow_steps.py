"""Run a GitHub workflow job's shell steps here, in order, up to its first Pulumi action:
what a pull request would run before anything reaches Pulumi or Azure.

    python scripts/workflow_steps.py                          # preview.yml, job "preview"
    python scripts/workflow_steps.py --skip Install --skip "Post the offline plan" \\
        --var PULUMI_STACK=eyes-off

``${{ vars.NAME || 'default' }}`` takes --var NAME=VALUE or the default; secrets, tokens and
other contexts are empty. ``uses:`` steps before the Pulumi call (checkout, setup-python) are
listed as skipped: the repository and Python are already here. Exit code: that of the first
failing step (its output is shown), 0 when every step up to the Pulumi call passed, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fl_jobs.cli.cli_errors import OneLineArgumentParser, bad_input  # noqa: E402

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_VAR = re.compile(r"^vars\.([A-Za-z_][A-Za-z0-9_]*)(?:\s*\|\|\s*'([^']*)')?$")


def evaluate(text: str, variables: dict[str, str]) -> str:
    """``text`` with each ``${{ vars.X || 'd' }}`` replaced; any other expression -> ''."""

    def one(match: re.Match[str]) -> str:
        var = _VAR.match(match.group(1))
        if var is None:
            return ""
        return variables.get(var.group(1)) or (var.group(2) or "")

    return _EXPR.sub(one, str(text))


def is_pulumi(step: dict) -> bool:
    return str(step.get("uses", "")).startswith("pulumi/")


def main(argv: list[str] | None = None) -> int:
    parser: argparse.ArgumentParser = OneLineArgumentParser(
        prog="scripts/workflow_steps.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workflow", default=".github/workflows/preview.yml")
    parser.add_argument("--job", default="preview")
    parser.add_argument("--skip", action="append", default=[], help="step name to skip")
    parser.add_argument("--var", action="append", default=[], help="NAME=VALUE of vars.NAME")
    parser.add_argument("--cwd", default=str(REPO), help="folder the steps run in")
    args = parser.parse_args(argv)
    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep:
            bad_input(f"--var {item!r} is not NAME=VALUE", "e.g. --var PULUMI_STACK=eyes-off")
        variables[name] = value
    path = REPO / args.workflow
    document = yaml.safe_load(path.read_text())
    job = (document.get("jobs") or {}).get(args.job)
    if job is None:
        bad_input(f"{path} has no job {args.job!r}", f"use one of {', '.join(document['jobs'])}")
    steps = job.get("steps", [])
    names = {step.get("name") for step in steps}
    unknown = [name for name in args.skip if name not in names]
    if unknown:
        bad_input(f"--skip {unknown[0]!r} names no step of job {args.job}", "check the names")
    env = {**os.environ}
    env.update({k: evaluate(v, variables) for k, v in (job.get("env") or {}).items()})
    for step in steps:
        label = step.get("name") or step.get("uses")
        if is_pulumi(step):
            print(f"stop: {label} (the Pulumi call)")
            return 0
        if "run" not in step or step.get("name") in args.skip:
            print(f"skip: {label}")
            continue
        step_env = {
            **env,
            **{k: evaluate(v, variables) for k, v in (step.get("env") or {}).items()},
        }
        print(f"run:  {label}", flush=True)
        done = subprocess.run(
            ["bash", "-e", "-c", evaluate(step["run"], variables)], cwd=args.cwd, env=step_env
        )
        if done.returncode != 0:
            print(f"failed: {label} (exit {done.returncode})", file=sys.stderr)
            return done.returncode
    print("stop: no Pulumi step in this job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
