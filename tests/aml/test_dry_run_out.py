"""``submit --dry-run --out DIR`` never replaces an earlier dry run (its approval request
included) without a word."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.run.manifest import FederationManifest


def test_an_earlier_dry_run_is_not_replaced(manifest3: FederationManifest, tmp_path: Path) -> None:
    manifest = tmp_path / "federation.json"
    manifest.write_text(manifest3.to_json())
    out = tmp_path / "dry"
    args = ["submit", "--manifest", str(manifest), "--example", "digits", "--rounds", "1"]
    first = CliRunner().invoke(app, [*args, "--dry-run", "--out", str(out)])
    assert first.exit_code == 0, first.output
    request = (out / "approval-request.json").read_text()
    again = CliRunner().invoke(app, [*args, "--seed", "7", "--dry-run", "--out", str(out)])
    assert again.exit_code == 2, again.output
    assert again.stderr.strip().splitlines() == [
        f"error: --out {out} holds an earlier pipeline and approval request - choose another "
        "folder, or move that one away first"
    ]
    assert (out / "approval-request.json").read_text() == request
