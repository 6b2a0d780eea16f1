"""The offline plan: what a sandbox would deploy, and whether it keeps its isolation promises.

Runs the real Pulumi program (``build_sandbox``) under Pulumi's mocks, so no CLI, no
credentials and no network are needed, then derives from the recorded resources the resource
tree per component, counts by type, the access matrix, the network layout, the federation
manifest (validated against its schema) and each isolation invariant's result.
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
from fl_jobs.manifest import FederationManifest, ManifestError
from policies.access_matrix import access_matrix
from policies.graph import ResourceGraph
from policies.invariants import INVARIANTS, check_graph
from policies.network_layout import network_layout
from policies.violation import Violation


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
        return check_graph(self.graph)

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
        """Config valid (it got here), every invariant holds, manifest valid, no overlaps."""
        no_violations = not any(self.results.values())
        return no_violations and self.manifest_error is None and not self.network["overlaps"]

    @property
    def custom_resources(self) -> list[RecordedResource]:
        return [r for r in self.run.resources if r.custom]

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
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "arm_name": self.graph.by_urn[r.urn].arm_name,
                    "urn": r.urn,
                    "parent": r.parent,
                }
                for r in self.custom_resources
            ],
            "counts_by_type": self.counts_by_type(),
            "tree": self.tree(),
            "access_matrix": access_matrix(self.graph),
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
            "outputs": self.outputs,
        }


def make_plan(spec: SandboxSpec) -> Plan:
    """Run the sandbox program for ``spec`` under mocks (stdout kept clean for JSON)."""
    from blueprints.builder import build_sandbox  # heavy: loads the azure-native services

    with contextlib.redirect_stdout(sys.stderr):
        run = run_under_mocks(lambda: build_sandbox(spec))
    return Plan(spec, run)
