"""A stable ``deployer``: with ``deployerPrincipalId`` the plan is the same whoever runs
Pulumi (a person, or the CI identity of the preview workflow); without it the deployer's
role assignments change principal, which Azure carries out as a replacement."""

from __future__ import annotations

from typing import Any

import pytest

from blueprints import mock_runtime
from blueprints.builder import build_sandbox
from blueprints.deployer import unstable_deployer
from blueprints.mock_runtime import run_under_mocks
from blueprints.spec import example_spec, load_stack_file, parse_spec
from blueprints.spec_base import ConfigError

FIXED = "0f5e2d7c-4b1a-4c3e-9d8f-1a2b3c4d5e6f"
CI_IDENTITY = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _role_assignments(spec: Any, runner: str | None, monkeypatch: pytest.MonkeyPatch) -> dict:
    """URN -> principal of every role assignment, with ``runner`` running Pulumi (None: the
    mocks' own deployer)."""
    with monkeypatch.context() as patch:
        if runner is not None:
            patch.setattr(mock_runtime, "deployer_object_id", lambda: runner)
        run = run_under_mocks(lambda: build_sandbox(spec))
    return {r.urn: r.inputs.get("principalId") for r in run.of_type(ROLE_ASSIGNMENT)}


def test_a_fixed_deployer_gives_the_same_plan_to_a_person_and_to_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = example_spec("minimal", 2).model_copy(update={"deployer_principal_id": FIXED})
    person = _role_assignments(spec, None, monkeypatch)
    ci = _role_assignments(spec, CI_IDENTITY, monkeypatch)
    assert person == ci  # same names (URNs), same principals: no churn
    assert FIXED in person.values()
    assert CI_IDENTITY not in ci.values()


def test_an_unfixed_deployer_changes_principal_with_who_runs_pulumi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = example_spec("minimal", 2)
    person = _role_assignments(spec, None, monkeypatch)
    ci = _role_assignments(spec, CI_IDENTITY, monkeypatch)
    assert person.keys() == ci.keys()
    changed = {urn for urn in person if person[urn] != ci[urn]}
    assert changed and all("deployer" in urn for urn in changed)
    assert unstable_deployer(spec) is not None


def test_a_deployer_principal_that_is_no_object_id_is_refused() -> None:
    raw = {"blueprint": "minimal", "silos": [{"name": "a", "region": "westeurope"}],
           "deployerPrincipalId": "me"}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_spec(raw)
    assert caught.value.key == "deployerPrincipalId"
    assert "az ad signed-in-user show --query id -o tsv" in caught.value.fix


def test_the_stack_ci_previews_by_default_fixes_its_deployer() -> None:
    spec = load_stack_file("stacks/Pulumi.minimal.yaml")
    assert spec.deployer_principal_id is not None
    assert unstable_deployer(spec) is None
