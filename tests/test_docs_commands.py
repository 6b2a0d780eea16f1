"""The README's and docs' commands, a marked subset, run as written, so that they cannot
drift: each command must appear verbatim in its page, must exit 0 here, and where the page shows
figures (the demo's table, the resource counts), the figures must be what the command prints.

``fl-sandbox`` runs as ``python -m fl_jobs`` and ``.venv/bin/python`` as this interpreter,
from a copy-free working folder at the repository root (runs go to a temporary folder).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blueprints.__main__ import app as blueprints_app

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # a dozen plans and a 20-round run: about 2 minutes

#: (page, command exactly as the page shows it)
COMMANDS: list[tuple[str, str]] = [
    ("README.md", "fl-sandbox run --help"),
    ("README.md", ".venv/bin/python -m blueprints plan --blueprint minimal --silos 3"),
    (
        "README.md",
        ".venv/bin/python -m blueprints plan --blueprint eyes-off --submitter-ip 198.51.100.23",
    ),
    (
        "README.md",
        ".venv/bin/python -m blueprints plan --config stacks/Pulumi.eyes-off.yaml --json",
    ),
    (
        "docs/isolation.md",
        ".venv/bin/python -m blueprints plan --blueprint eyes-off --silos 3 "
        "--submitter-ip 198.51.100.23",
    ),
    (
        "docs/isolation.md",
        ".venv/bin/python -m blueprints plan --config stacks/Pulumi.eyes-off.yaml --json",
    ),
]


def _argv(command: str) -> list[str]:
    words = command.split()
    if words[0] == "fl-sandbox":
        return [sys.executable, "-m", "fl_jobs", *words[1:]]
    if words[0] == ".venv/bin/python":
        return [sys.executable, *words[1:]]
    raise AssertionError(f"no rule to run {command!r}")


def _run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(("page", "command"), COMMANDS)
def test_documented_command_runs(page: str, command: str) -> None:
    assert command in (REPO / page).read_text(), f"{page} no longer shows: {command}"
    done = _run(_argv(command))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


def test_readme_demo_table_is_what_the_demo_prints(tmp_path: Path) -> None:
    """`make demo`'s command and the README's table of its results, row by row."""
    makefile = (REPO / "Makefile").read_text()
    command = re.search(r"\$\(PY\) -m fl_jobs (run --example digits [^\n]+)", makefile).group(1)
    done = _run(
        [sys.executable, "-m", "fl_jobs", *command.replace("runs/demo", "demo").split()], tmp_path
    )
    assert done.returncode == 0, done.stderr
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("│ ") and "%" in line]
    assert len(rows) == 4
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        printed = next(
            line for line in done.stdout.splitlines() if line.startswith("│") and cells[0] in line
        )
        assert [c.strip() for c in printed.strip().strip("│").split("│")] == cells


def test_infrastructure_resource_counts_are_what_plan_prints() -> None:
    page = (REPO / "docs" / "infrastructure.md").read_text()
    header = next(line for line in page.splitlines() if line.startswith("| | `minimal`"))
    blueprints = re.findall(r"`([a-z-]+)`", header)
    row = next(line for line in page.splitlines() if line.startswith("| resources at 1 silo / 3"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    for blueprint, cell in zip(blueprints, cells, strict=True):
        expected = [int(n) for n in cell.split("/")]
        for silos, count in zip((1, 3), expected, strict=True):
            # The plan command itself, in this process (twelve interpreter starts cost 30 s).
            argv = ["plan", "--blueprint", blueprint, "--silos", str(silos), "--json"]
            if blueprint == "eyes-off":
                argv += ["--submitter-ip", "198.51.100.23"]
            done = CliRunner().invoke(blueprints_app, argv)
            assert done.exit_code == 0, done.output
            assert json.loads(done.stdout)["resource_count"] == count, (blueprint, silos)
