"""``plan --format markdown`` for a pull-request comment, ``--section`` filters, and the
one-line refusals of bad values before anything is evaluated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "blueprints", "plan", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_markdown_has_every_section_by_default() -> None:
    done = _plan("--blueprint", "eyes-on", "--silos", "2", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("## Offline plan: `eyes-on`, 2 silos, ")
    for heading in ("### Resources (", "### Access matrix (", "### Network", "### Checks"):
        assert heading in text
    assert "| vnet-flsandbox-silo1 | 10.1.0.0/16 | 2 |" in text
    assert "### Job path of one FL round (" in text
    assert "**broken**" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--section", "tree", "--format", "markdown"], "--section tree is not accepted"),
        (["--section", "access"], "add --format markdown"),
        (["--format", "html"], "--format html is not accepted - use table, json or markdown"),
        (["--json", "--format", "markdown"], "give --json or --format markdown, not both"),
    ],
)
def test_bad_values_are_one_line(args: list[str], message: str) -> None:
    done = _plan("--blueprint", "minimal", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


@pytest.mark.parametrize("silos", ["1", "3"])
def test_compute_identities_section_names_each_computes_identity_and_roles(silos: str) -> None:
    done = _plan(
        "--blueprint", "private", "--silos", silos, "--format", "markdown",
        "--section", "compute-identities",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [
        line for line in done.stdout.splitlines() if line.startswith("| ") and "|---" not in line
    ]
    by_compute = {row.split(" | ")[0].lstrip("| "): row for row in rows[1:]}
    # The aggregation compute, the image builder and one compute per silo, each with a result.
    assert len(by_compute) == int(silos) + 2
    builder = by_compute["image-builder"]
    assert "id-flsandbox-orchestrator-image-builder" in builder and "AcrPush" in builder
    # Any submitter's job there can replace the images every compute runs.
    assert builder.split(" | ")[5] == "acrflsandbox9u3ad (images)"
    assert "Key Vault Administrator" not in done.stdout
    assert all(row.endswith("| ok |") for row in by_compute.values())
    # What a submitter reaches through a silo's compute, with no role on the data (audit B3).
    silo1 = by_compute["c-silo1"]
    assert "stflsandbosilo19u3ad" in silo1  # its raw data
    cells = silo1.split(" | ")
    # It can overwrite its silo's raw data (the whole account), its update container and
    # job outputs.
    writes = cells[5].split(", ")
    assert writes[0] == "stflsandbosilo19u3ad" and "stflsandbomodels9u3ad/silo-silo1" in writes
    assert not any(w.endswith("/global") for w in writes)
    assert "/azureml" in cells[6] and "run history" in cells[6]  # what every submitter reads
    assert cells[7] == "yes"  # its NAT gateway or default outbound
    assert "### Access matrix" not in done.stdout
