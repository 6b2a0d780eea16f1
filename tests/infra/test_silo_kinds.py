"""Silo kinds are one seam: a new kind is one module plus one registry line, and the spec's
validation, its union and the builder pick it up; no code outside the kinds tests a kind's
name or class."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.builder import build_sandbox
from blueprints.jump_host_spec import JumpHostSpec
from blueprints.mock_runtime import run_under_mocks
from blueprints.plan import Plan
from blueprints.silo_kinds import SILO_KINDS, SILO_MODELS, SiloKind, SiloSpecBase, registered
from blueprints.spec import ConfigError, SandboxSpec, parse_spec
from components.silos.arc_cluster import ArcClusterSilo
from tests.infra.kubernetes_runs import REPO, stack_settings
from tests.infra.toy import lab_kind
from tests.infra.toy.lab_kind import LabSiloSpec

LAB_SILO = {"name": "lab-a", "region": "westeurope", "kind": "lab", "size": "large"}
CUSTODIAN = "5b1e2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"


@pytest.fixture
def lab() -> Iterator[SiloKind]:
    with registered(lab_kind.KIND) as kind:
        yield kind


def eyes_on_with(*silos: dict[str, Any]) -> dict[str, Any]:
    """The eyes-on sample's settings plus ``silos``, each with a data custodian."""
    raw = stack_settings("eyes-on")
    raw["silos"] = [*raw["silos"], *silos]
    raw["dataUploaders"] = {
        **raw["dataUploaders"],
        **{s["name"]: [{"principalId": CUSTODIAN}] for s in silos},
    }
    return raw


def test_a_registered_kind_is_validated_built_and_planned(lab: SiloKind) -> None:
    spec = parse_spec(eyes_on_with(LAB_SILO), source="test")
    silo = spec.silo("lab-a")
    assert isinstance(silo, LabSiloSpec) and silo.silo_kind is lab
    assert silo.network_range is not None  # in a VNet: an address space was assigned

    plan = Plan(spec, run_under_mocks(lambda: build_sandbox(spec)))
    assert plan.violations == [] and plan.manifest_error is None
    compute = next(
        r
        for r in plan.run.of_type("azure-native:machinelearningservices:Compute")
        if r.name == "silo-lab-a-compute"
    )
    properties = compute.inputs["properties"]["properties"]
    assert properties["vmSize"] == "Standard_D4s_v5"
    assert properties["scaleSettings"]["maxNodeCount"] == 1
    assert plan.outputs["network"]["silos"]["lab-a"] == silo.network_range
    manifest = {s["name"]: s for s in plan.outputs["federation"]["silos"]}
    assert manifest["lab-a"]["compute_type"] == "amlcompute"


def test_a_registered_kind_checks_its_own_settings(lab: SiloKind) -> None:
    raw = eyes_on_with({**LAB_SILO, "sise": "large"})
    with pytest.raises(ConfigError) as info:
        parse_spec(raw, source="test")
    assert info.value.key == "silos[3].sise"
    assert "did you mean 'size'?" in info.value.fix

    raw = {"blueprint": "confidential", "silos": [LAB_SILO]}
    with pytest.raises(ConfigError, match="a lab machine is not confidential"):
        parse_spec(raw, source="test")


def test_an_unknown_kind_names_every_registered_kind() -> None:
    raw = eyes_on_with(LAB_SILO)
    with pytest.raises(ConfigError) as info:
        parse_spec(raw, source="test")
    assert info.value.key == "silos[3].kind"
    assert "unknown silo kind" in str(info.value)
    assert info.value.fix == "use one of: aml, arc, aks (aml when unset)"

    with registered(lab_kind.KIND):
        raw["silos"][3]["kind"] = "vm"
        with pytest.raises(ConfigError) as info:
            parse_spec(raw, source="test")
        assert info.value.fix == "use one of: aml, arc, aks, lab (aml when unset)"
    assert list(SILO_KINDS) == list(SILO_MODELS) == ["aml", "arc", "aks"]


def test_a_kind_whose_parts_disagree_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match=re.escape('LabSiloSpec.kind must be Literal["vm"]')):
        SiloKind("vm", LabSiloSpec, ArcClusterSilo, "")
    with pytest.raises(TypeError, match="address_space setting exactly when"):
        SiloKind("lab", LabSiloSpec, ArcClusterSilo, "")
    with pytest.raises(ValueError, match="already registered"), registered(SILO_KINDS["aml"]):
        pass


def _kind_tests(path: Path) -> list[str]:
    """Lines of ``path`` that compare with a kind's name, test a silo model's class, or read
    or probe a setting only some kinds have."""
    models = {m.__name__ for m in SILO_MODELS.values()}
    own = {n for m in SILO_MODELS.values() for n in [*m.model_fields, *vars(m)]}
    own -= {*SiloSpecBase.model_fields, *dir(SiloSpecBase), "kind"}
    shared = {*SandboxSpec.model_fields, *JumpHostSpec.model_fields}  # not only silos have these
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in own - shared:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Constant) and node.value in SILO_KINDS:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
        probe = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "hasattr", "getattr")
        )
        if probe and any(
            (isinstance(a, ast.Name) and a.id in models)
            or (isinstance(a, ast.Constant) and a.value in own)
            for a in node.args
        ):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_code_outside_the_kinds_tests_a_kind() -> None:
    """The builder and the checks ask a kind's descriptor; only the catalog's data (a
    blueprint's default silo settings) names a kind."""
    files = [p for p in sorted((REPO / "blueprints").glob("*.py")) if p.name != "catalog.py"]
    found = [line for path in files for line in _kind_tests(path)]
    assert found == [], found
