"""The blueprints, as data: the single source of their names and network postures.

One builder (``blueprints.builder``) walks any of them; the spec validates blueprint names
against ``BLUEPRINTS``; the checks in ``policies/`` and the CrossGuard pack's config schema
read the same table. What every sandbox holds (orchestrator, silos, identities, the
permissions table) is the same for all; a blueprint only says how isolated the network is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from components.vocabulary.posture import BLUEPRINT_POSTURES, NetworkPosture


@dataclass(frozen=True)
class Blueprint:
    """A named network posture with a one-line summary for people.

    ``silo_defaults`` are the settings a generated silo (``--silos N``) starts from, where
    the blueprint admits only some silo kinds."""

    name: str
    summary: str
    posture: NetworkPosture
    silo_defaults: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))


BLUEPRINTS: dict[str, Blueprint] = {
    bp.name: bp
    for bp in (
        Blueprint(
            name="minimal",
            summary="public endpoints, isolation by RBAC only; the fastest way to learn",
            posture=BLUEPRINT_POSTURES["minimal"],
        ),
        Blueprint(
            name="eyes-on",
            summary="a VNet per silo with an AML-ready NSG, peered to the orchestrator hub; "
            "storage still reachable publicly (with RBAC)",
            posture=BLUEPRINT_POSTURES["eyes-on"],
        ),
        Blueprint(
            name="hybrid",
            summary="eyes-on for Azure silos, plus silos on the sites' own Kubernetes clusters "
            "attached through Azure Arc; each on-premises silo's storage admits only its "
            "cluster's addresses",
            posture=BLUEPRINT_POSTURES["hybrid"],
        ),
        Blueprint(
            name="eyes-off",
            summary="silo and model storage private (private endpoints, DNS linked to every "
            "VNet); computes without public IPs behind a workspace private endpoint; the "
            "workspace storage admits only the workspace and the submitters' IP ranges",
            posture=BLUEPRINT_POSTURES["eyes-off"],
        ),
        Blueprint(
            name="private",
            summary="as eyes-off, and the workspace, its key vault and a Premium registry are "
            "reachable only through private endpoints (high business impact workspace); "
            "submitters come in through the hub network",
            posture=BLUEPRINT_POSTURES["private"],
        ),
        Blueprint(
            name="confidential",
            summary="as private, and every silo and the aggregation run on AKS pools of "
            "confidential VMs (AMD SEV-SNP): data in use is encrypted in memory",
            posture=BLUEPRINT_POSTURES["confidential"],
            silo_defaults=MappingProxyType(
                {"kind": "aks", "pool": {"vmSize": "Standard_DC4as_v5"}}
            ),
        ),
    )
}

BLUEPRINT_NAMES: tuple[str, ...] = tuple(BLUEPRINTS)


def blueprint(name: str) -> Blueprint:
    """The named blueprint; KeyError names the known ones."""
    try:
        return BLUEPRINTS[name]
    except KeyError:
        raise KeyError(f"unknown blueprint {name!r}; known: {', '.join(BLUEPRINT_NAMES)}") from None


def posture_of(name: str | None) -> NetworkPosture | None:
    """The posture of a blueprint name, or None when the name is unknown or missing."""
    found = BLUEPRINTS.get(name or "")
    return found.posture if found is not None else None
