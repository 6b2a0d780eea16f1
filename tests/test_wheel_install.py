"""The built wheel works outside this source tree: installed into a clean venv, its
``fl-sandbox`` command prints help and runs a 1-round job.

The clean venv gets the wheel with ``--no-deps``; its dependencies come from the venv running
the tests, added by a ``.pth`` line (a plain path: that venv's own ``.pth`` files, including
its editable install of this project, are not processed). Tests never leave the machine, and
a full dependency install from the indexes costs 2 GB and minutes; what this does check is
that the wheel's declared dependency ranges (``Requires-Dist``) are met by the pinned lock
(``pip check`` in the clean venv) and that the wheel carries every module and data file the
command needs (the job imports from the clean venv's site-packages, not from here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"  # nothing is fetched: the wheel is local, --no-deps
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # setuptools writes build/ and *.egg-info beside the sources: build from a copy.
    source = tmp_path_factory.mktemp("src") / "fl-sandbox"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "runs", "build", "dist", "*.egg-info", "__pycache__", "mlruns"
        ),
    )
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("-q", "-w", str(out), str(source)),
        ],
        check=True,
        env=_clean_env(),
        cwd=out,
    )
    (found,) = out.glob("fl_sandbox-*.whl")
    return found


def test_wheel_declares_ranges_the_lock_satisfies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    requires = [
        Requirement(line.split(":", 1)[1].strip())
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    runtime = {r.name.lower(): r for r in requires if r.marker is None}
    assert {"torch", "mlflow", "typer", "pulumi", "azure-ai-ml"} <= set(runtime)
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    for name, requirement in runtime.items():
        assert name in pins, f"{name} is a dependency but not pinned in requirements.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name]}, outside {requirement}"
        )
    first = (REPO / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in first


def test_wheel_installs_and_runs_a_job(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "deps-from-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _clean_env()
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, env=env
    )
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, env=env
    )
    mine = [line for line in check.stdout.splitlines() if line.lower().startswith("fl-sandbox")]
    assert not mine, check.stdout  # the wheel's ranges hold for what is installed

    where = subprocess.run(
        [str(python), "-c", "import fl_jobs; print(fl_jobs.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not this tree's

    cli = venv / "bin" / "fl-sandbox"
    shown = subprocess.run(
        [str(cli), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert "run" in shown.stdout and "submit" in shown.stdout
    version = subprocess.run(
        [str(cli), "--version"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert version.stdout.startswith("fl-sandbox 0."), version.stdout + version.stderr

    job = subprocess.run(
        [
            *(str(cli), "run", "--example", "digits", "--silos", "2", "--rounds", "1"),
            *("--no-baselines", "--no-tracking", "--output-dir", "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert job.returncode == 0, job.stdout + job.stderr
    assert (tmp_path / "out" / "summary.json").is_file()
    assert (tmp_path / "out" / "global_model.pt").is_file()
