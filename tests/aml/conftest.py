"""Fixtures for the Azure ML pipeline tests.

Manifests come from running the blueprints under Pulumi mocks (never written by hand), so the
jobs are always tested against what the infrastructure really exports.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from fl_jobs.aml.submit import PreparedJob
from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.run.manifest import FederationManifest

# Azure ML cluster silos at both federation sizes (1 and 3 silos); Kubernetes silos (hybrid,
# confidential) are in test_kubernetes_jobs.py.
BLUEPRINT_CASES = [("minimal", 1), ("eyes-on", 3), ("eyes-off", 3)]


@functools.cache
def blueprint_outputs(blueprint: str, silos: int) -> dict[str, Any]:
    """The stack outputs of ``blueprint`` with ``silos`` silos, evaluated under Pulumi mocks
    (what `pulumi stack output --json` would print after a deployment)."""
    from tests.infra.helpers import blueprint_run  # the infra tests' run, shared per session

    return json.loads(json.dumps(blueprint_run(blueprint, silos).result))


def stack_outputs(blueprint: str) -> dict[str, Any]:
    """The stack outputs of the sample stack ``stacks/Pulumi.<blueprint>.yaml`` (its secrets
    filled in), under mocks, shared with the infra tests."""
    from tests.infra.kubernetes_runs import stack_run

    return json.loads(json.dumps(stack_run(blueprint).result))


def blueprint_manifest(blueprint: str, silos: int) -> FederationManifest:
    """The ``federation`` output of ``blueprint`` with ``silos`` silos."""
    return FederationManifest.parse(
        blueprint_outputs(blueprint, silos), source=f"blueprint {blueprint}"
    )


@pytest.fixture(scope="session")
def manifest3() -> FederationManifest:
    return blueprint_manifest("eyes-off", 3)


@pytest.fixture(scope="session")
def manifest1() -> FederationManifest:
    return blueprint_manifest("minimal", 1)


def job_config(**overrides: Any) -> JobConfig:
    return load_job_config(None, {"example": "digits", "rounds": 2, **overrides})


@pytest.fixture(scope="session")
def config2() -> JobConfig:
    return job_config()


@pytest.fixture(scope="session")
def prepared3(
    manifest3: FederationManifest, config2: JobConfig, tmp_path_factory: pytest.TempPathFactory
) -> PreparedJob:
    """The 3-silo pipeline, built, validated and checked once for the session."""
    from fl_jobs.aml.submit import prepare_job

    code_dir: Path = tmp_path_factory.mktemp("code")
    return prepare_job(manifest3, config2, code_dir=code_dir, job_name="fl-digits-test")
