"""The isolation invariants as pure functions over a resource graph.

Each check takes a :class:`~policies.graph.ResourceGraph` and returns violations naming the
offending resource; none of them calls Azure or Pulumi. The same functions run in the tests,
in the offline plan (``python -m blueprints plan``) and in the CrossGuard policy pack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.check_module import RegisteredCheck
from policies.graph import ResourceGraph, ResourceLike
from policies.invariants import (
    compute_placement,
    cross_silo,
    least_privilege,
    no_secrets,
    orchestrator_access,
    silo_data,
    storage_hardening,
)
from policies.invariants.compute_placement import check_compute_placement
from policies.invariants.cross_silo import check_cross_silo_isolation
from policies.invariants.least_privilege import check_compute_least_privilege
from policies.invariants.orchestrator_access import check_orchestrator_no_silo_access
from policies.invariants.silo_data import check_silo_data_access
from policies.invariants.storage_hardening import check_storage_hardening
from policies.violation import Violation

check_no_secret_outputs = no_secrets.check


@dataclass(frozen=True)
class Invariant(RegisteredCheck):
    """One numbered invariant: its stable id, a one-line title and its check, read from its
    module (``NUMBER``, ``ID``, ``TITLE``, ``check``) as the Azure rules are."""


INVARIANTS: tuple[Invariant, ...] = tuple(
    Invariant.of(m)
    for m in (
        silo_data,
        orchestrator_access,
        cross_silo,
        storage_hardening,
        compute_placement,
        no_secrets,
        least_privilege,
    )
)


def check_graph(graph: ResourceGraph) -> dict[str, list[Violation]]:
    """Every invariant's violations, keyed by invariant id, in invariant order."""
    return {invariant.id: invariant.check(graph) for invariant in INVARIANTS}


def check_all(
    resources: Iterable[ResourceLike], outputs: Mapping[str, Any] | None = None
) -> dict[str, list[Violation]]:
    """Build the graph from registered resources and stack outputs, then check everything."""
    return check_graph(ResourceGraph.build(resources, outputs))


__all__ = [
    "INVARIANTS",
    "Invariant",
    "Violation",
    "check_all",
    "check_compute_least_privilege",
    "check_compute_placement",
    "check_cross_silo_isolation",
    "check_graph",
    "check_no_secret_outputs",
    "check_orchestrator_no_silo_access",
    "check_silo_data_access",
    "check_storage_hardening",
]
