"""The GitHub workflows, linted offline with actionlint (its binary ships in the wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent))


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT, "actionlint is missing from the virtualenv (requirements.txt pins it)"
    return subprocess.run(
        [ACTIONLINT, "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_workflows_pass_actionlint() -> None:
    assert len(WORKFLOWS) >= 2
    result = lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_fails_with_each_mistake_named() -> None:
    result = lint(REPO / "tests" / "fixtures" / "broken-workflow.yml")
    assert result.returncode == 1
    assert 'runtime "node20" is deprecated' in result.stdout  # actions/checkout@v4
    assert "undefined variable" in result.stdout and '"secret"' in result.stdout
    assert 'needs job "tests" which does not exist' in result.stdout
