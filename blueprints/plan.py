"""The offline plan: what a sandbox would deploy, whether Azure would accept it, and whether
an FL job would run on it.

Runs the real Pulumi program (``build_sandbox``) under Pulumi's mocks, so no CLI, no
credentials and no network are needed, then derives from the recorded resources the resource
tree per component, counts by type, each resource's inputs (secrets redacted) and
dependencies, the access matrix, the network layout, the federation manifest (validated
against its schema), each isolation invariant, each of Azure's rules, and the job path of one
FL round.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from blueprints.mock_runtime import MockRun, RecordedResource, run_under_mocks
from blueprints.spec import SandboxSpec
from fl_jobs.run.manifest import FederationManifest, ManifestError
from policies.access_matrix import access_matrix
from policies.azure_rules import RULES, check_rules
from policies.azure_rules.compute_identity_reach import compute_identity_table
from policies.graph import ResourceGraph
from policies.invariants import INVARIANTS, check_graph
from policies.invariants.no_secrets import secret_key_name
from policies.job_path import Movement, job_path
from policies.network_layout import network_layout
from policies.violation import Violation

REDACTED = "[secret]"


def _may_hold_secret(value: Any) -> bool:
    """A boolean or a number is a setting, never a secret (``allowSharedKeyAccess: false``
    must stay readable: a reviewer checks exactly that), and an empty value hides nothing."""
    return not isinstance(value, bool | int | float) and value not in (None, "", [], {})


def redact(value: Any, secret_paths: frozenset[str], path: str = "") -> Any:
    """``value`` with every input Pulumi marked secret, or whose name says it is one and whose
    value could be one, replaced by ``[secret]``: what a reviewer may read in a pull request."""
    if path in secret_paths:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): (
                REDACTED
                if secret_key_name(str(k)) and _may_hold_secret(v)
                else redact(v, secret_paths, f"{path}.{k}" if path else str(k))
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v, secret_paths, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _plain(value: Any) -> Any:
    """Stack outputs as JSON-ready data (pydantic models dumped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass
class Plan:
    """One offline run of a sandbox spec and everything derived from it."""

    spec: SandboxSpec
    run: MockRun

    @cached_property
    def outputs(self) -> dict[str, Any]:
        result = _plain(self.run.result)
        return result if isinstance(result, dict) else {}

    @cached_property
    def graph(self) -> ResourceGraph:
        return ResourceGraph.build(self.run.resources, self.outputs)

    @cached_property
    def results(self) -> dict[str, list[Violation]]:
        """Each isolation invariant's violations."""
        return check_graph(self.graph)

    @cached_property
    def rule_results(self) -> dict[str, list[Violation]]:
        """Each of Azure's rules' violations."""
        return check_rules(self.graph)

    @cached_property
    def movements(self) -> list[Movement]:
        """One FL round's data movements, checked."""
        return job_path(self.graph)

    @property
    def violations(self) -> list[Violation]:
        """Every broken invariant, rule and job-path movement, in that order."""
        found = [v for vs in self.results.values() for v in vs]
        found += [v for vs in self.rule_results.values() for v in vs]
        found += [m.violation() for m in self.movements if not m.ok]
        return found

    @cached_property
    def manifest_error(self) -> str | None:
        """Why the ``federation`` output is not a valid manifest, or None."""
        try:
            FederationManifest.parse(self.outputs.get("federation"), source="federation output")
        except ManifestError as exc:
            return str(exc)
        return None

    @cached_property
    def network(self) -> dict[str, Any]:
        return network_layout(self.graph)

    @property
    def ok(self) -> bool:
        """Config valid (it got here), every invariant, rule and job-path movement holds,
        the manifest is valid, no VNets overlap."""
        return not self.violations and self.manifest_error is None and not self.network["overlaps"]

    @property
    def custom_resources(self) -> list[RecordedResource]:
        """Resources the stack manages (creates, updates, deletes)."""
        return [r for r in self.run.resources if r.custom and not r.read]

    @property
    def read_resources(self) -> list[RecordedResource]:
        """Existing resources the stack only reads (an existing storage account or connected
        cluster): never changed or deleted by it."""
        return [r for r in self.run.resources if r.read]

    def counts_by_type(self) -> dict[str, int]:
        counts = Counter(r.type for r in self.custom_resources)
        return dict(sorted(counts.items()))

    def tree(self) -> list[dict[str, Any]]:
        """Resources nested under their parent component (roots first)."""
        known = {r.urn for r in self.run.resources}
        children: dict[str | None, list[RecordedResource]] = {}
        # Registration order depends on Output resolution; sort for a stable tree.
        ordered = sorted(self.run.resources, key=lambda r: (r.custom, r.type, r.name))
        for record in ordered:
            parent = record.parent if record.parent in known else None
            children.setdefault(parent, []).append(record)

        def node(record: RecordedResource) -> dict[str, Any]:
            graph_node = self.graph.by_urn[record.urn]
            return {
                "type": record.type,
                "name": record.name,
                "arm_name": graph_node.arm_name if record.custom else None,
                "component": not record.custom,
                "read": record.read,
                "children": [node(c) for c in children.get(record.urn, [])],
            }

        return [node(r) for r in children.get(None, [])]

    def to_dict(self) -> dict[str, Any]:
        """The whole plan as one JSON-ready document."""
        return {
            "ok": self.ok,
            "blueprint": self.spec.blueprint,
            "silos": self.spec.silo_names,
            "resource_count": len(self.custom_resources),
            "resources": [self._resource(r) for r in self.custom_resources],
            "read_resources": [
                {"type": r.type, "name": r.name, "id": r.id} for r in self.read_resources
            ],
            "counts_by_type": self.counts_by_type(),
            "tree": self.tree(),
            "access_matrix": access_matrix(self.graph),
            "compute_identities": compute_identity_table(self.graph),
            "network": self.network,
            "manifest": {"valid": self.manifest_error is None, "error": self.manifest_error},
            "invariants": [
                {
                    "number": invariant.number,
                    "id": invariant.id,
                    "title": invariant.title,
                    "ok": not self.results[invariant.id],
                    "violations": [v.to_dict() for v in self.results[invariant.id]],
                }
                for invariant in INVARIANTS
            ],
            "azure_rules": [
                {
                    "number": rule.number,
                    "id": rule.id,
                    "title": rule.title,
                    "source": rule.source,
                    "unverified": rule.unverified,
                    "ok": not self.rule_results[rule.id],
                    "violations": [v.to_dict() for v in self.rule_results[rule.id]],
                }
                for rule in RULES
            ],
            "job_path": {
                "ok": all(m.ok for m in self.movements),
                "movements": [m.to_dict() for m in self.movements],
                "assumed": sorted({f"{m.step}: {m.assumed}" for m in self.movements if m.assumed}),
            },
            "outputs": self.outputs,
        }

    def _resource(self, record: RecordedResource) -> dict[str, Any]:
        """One resource as a reviewer reads it: inputs (secrets redacted), dependencies."""
        names = self._names
        return {
            "type": record.type,
            "name": record.name,
            "arm_name": self.graph.by_urn[record.urn].arm_name,
            "urn": record.urn,
            "parent": record.parent,
            "inputs": redact(record.inputs, frozenset(record.secret_inputs)),
            "depends_on": sorted({names.get(d, d) for d in record.dependencies}),
            "options": record.options,
        }

    @cached_property
    def _names(self) -> dict[str, str]:
        return {r.urn: r.name for r in self.run.resources}


def make_plan(spec: SandboxSpec) -> Plan:
    """Run the sandbox program for ``spec`` under mocks (stdout kept clean for JSON)."""
    from blueprints.builder import build_sandbox  # heavy: loads the azure-native services

    with contextlib.redirect_stdout(sys.stderr):
        run = run_under_mocks(lambda: build_sandbox(spec))
    return Plan(spec, run)
