"""The pull-request preview workflow is safe to copy: guarded against forks, OIDC for Azure
and Pulumi, a self-managed backend option, one preview per stack, complete paths, and its
steps up to the Pulumi call run here (scripts/workflow_steps.py) and produce the markdown
comment and an offline manifest that ``submit --dry-run`` reads."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from fl_jobs.run.manifest import FederationManifest

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "preview.yml"


def _workflow() -> dict:
    document = yaml.safe_load(WORKFLOW.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads `on` as True
    return document


def test_guards_oidc_backend_concurrency_and_paths() -> None:
    document = _workflow()
    job = document["jobs"]["preview"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert "PULUMI_STACK" in document["concurrency"]["group"]
    assert document["concurrency"]["cancel-in-progress"] is False
    paths = document["on"]["pull_request"]["paths"]
    for needed in ("Pulumi.yaml", "pyproject.toml", "fl_jobs/run/manifest.py", "requirements.txt"):
        assert needed in paths
    assert document["permissions"]["id-token"] == "write"
    assert "PULUMI_ACCESS_TOKEN" not in WORKFLOW.read_text().split("name: pulumi-preview")[1]
    steps = {step.get("uses", step.get("name")): step for step in job["steps"]}
    auth = steps["pulumi/auth-actions@v1"]
    assert auth["with"]["requested-token-type"].startswith("urn:pulumi:token-type:")
    assert auth["if"] == "${{ vars.PULUMI_BACKEND_URL == '' }}"
    pulumi = steps["pulumi/actions@v7"]["with"]
    assert pulumi["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}" and pulumi["upsert"] is True
    assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    comment = steps["Post the offline plan"]
    assert "--body-file plan.md" in comment["run"]


def test_steps_up_to_the_pulumi_call_run_here(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(
        REPO,
        work,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__"
        ),
    )
    # `make setup` (skipped) would make .venv: stand in the test's own interpreter
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "workflow_steps.py"),
            "--cwd",
            str(work),
            "--skip",
            "Install",
            "--skip",
            "Post the offline plan",
            "--var",
            "PULUMI_STACK=minimal",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [
        line for line in done.stdout.splitlines() if line.startswith(("run:", "skip:", "stop:"))
    ]
    assert lines[0] == "skip: actions/checkout@v6"
    assert (
        "run:  Offline plan (bad config, a broken invariant or Azure rule, a blocked job path)"
        in lines
    )
    assert lines[-1] == "stop: Log in to Pulumi Cloud by OIDC (the Pulumi call)"
    comment = (work / "plan.md").read_text()
    assert comment.startswith("## Offline plan: `minimal`")
    assert "every check holds" in comment
    for section in ("### Checks", "### Access matrix", "### Job path of one FL round"):
        assert section in comment
    assert "### Resources" not in comment  # not asked for: --section filters
    manifest = FederationManifest.parse(json.loads((work / "federation.json").read_text()))
    assert manifest.blueprint == "minimal"
    # the offline manifest is what submit --dry-run reads
    submitted = subprocess.run(
        [
            sys.executable,
            "-m",
            "fl_jobs",
            "submit",
            "--manifest",
            "federation.json",
            "--example",
            "digits",
            "--rounds",
            "1",
            "--dry-run",
            "--out",
            "aml",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert submitted.returncode == 0, submitted.stderr
    assert (work / "aml" / "pipeline.yaml").is_file()


def test_a_failing_step_stops_with_its_exit_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "workflow_steps.py"),
            "--cwd",
            str(tmp_path),
            "--skip",
            "Install",
            "--skip",
            "Post the offline plan",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0  # no .venv in an empty folder: the offline plan step fails
    assert "failed: Offline plan" in done.stderr
    bad = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "workflow_steps.py"), "--skip", "Deploy"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --skip 'Deploy' names no step of job preview")


def _deployer_step(stack: str) -> subprocess.CompletedProcess[str]:
    """The workflow's "Stable deployer" step, run here for ``stack``."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]["preview"]["steps"]
    names = [step.get("name", "") for step in jobs]
    index = next(i for i, name in enumerate(names) if name.startswith("Stable deployer"))
    pulumi_call = next(i for i, step in enumerate(jobs) if "pulumi/" in str(step.get("uses")))
    assert index < pulumi_call  # refused before Pulumi runs as the CI identity
    command = jobs[index]["run"].replace(".venv/bin/python", shlex.quote(sys.executable))
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env={**os.environ, "STACK": stack},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workflow_refuses_a_stack_whose_deployer_is_not_fixed() -> None:
    ok = _deployer_step("minimal")
    assert ok.returncode == 0, ok.stderr
    refused = _deployer_step("eyes-on")  # deployer, with no deployerPrincipalId
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "error: stacks/Pulumi.eyes-on.yaml: submitter 'deployer' resolves to whoever runs Pulumi"
    )
    assert "set fl-sandbox:deployerPrincipalId to the object id" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
