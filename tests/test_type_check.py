"""`make test` runs mypy over every package at zero errors; these tests show that the check
is wired and would catch a type error (a config that ignored errors would pass anything)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MYPY = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")]


def test_make_test_runs_lint_format_and_types_before_pytest() -> None:
    makefile = (REPO / "Makefile").read_text()
    test_target = re.search(r"^test: (.*)$", makefile, re.M)
    assert test_target is not None
    assert {"lint", "typecheck"} <= set(test_target.group(1).split())
    assert re.search(r"^typecheck: .*\n\t\$\(VENV\)/bin/mypy$", makefile, re.M)
    assert "ruff format --check ." in makefile and "ruff check ." in makefile


def test_the_project_config_checks_every_package() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(config["files"]), f"not type-checked: {packages - set(config['files'])}"
    assert not config.get("ignore_errors")


def test_a_deliberate_type_error_fails_the_check(tmp_path: Path) -> None:
    # A real project module with one wrong annotation, checked under the project's config.
    copy = tmp_path / "fl_jobs"
    copy.mkdir()
    shutil.copy(REPO / "fl_jobs" / "cli" / "plurals.py", copy / "plurals.py")
    (copy / "__init__.py").write_text("")
    clean = subprocess.run(
        [*MYPY, str(copy / "plurals.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout
    broken = copy / "plurals.py"
    broken.write_text(broken.read_text() + "\n\nWRONG: int = 'not an int'\n")
    failed = subprocess.run([*MYPY, str(broken)], cwd=tmp_path, capture_output=True, text=True)
    assert failed.returncode == 1
    assert 'Incompatible types in assignment (expression has type "str"' in failed.stdout
