"""The blueprints, as data: the single source of their names and network postures.

One builder (``blueprints.builder``) walks any of them; the spec validates blueprint names
against ``BLUEPRINTS``; the checks in ``policies/`` and the CrossGuard pack's config schema
read the same table. What every sandbox holds (orchestrator, silos, identities, the
permissions table) is the same for all; a blueprint only says how isolated the network is.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.posture import NetworkPosture


@dataclass(frozen=True)
class Blueprint:
    """A named network posture with a one-line summary for people."""

    name: str
    summary: str
    posture: NetworkPosture


BLUEPRINTS: dict[str, Blueprint] = {
    bp.name: bp
    for bp in (
        Blueprint(
            name="minimal",
            summary="public endpoints, isolation by RBAC only; the fastest way to learn",
            posture=NetworkPosture(networked=False, storage_private=False, node_public_ip=True),
        ),
        Blueprint(
            name="eyes-on",
            summary="a VNet per silo with an AML-ready NSG, peered to the orchestrator hub; "
            "storage still reachable publicly (with RBAC)",
            posture=NetworkPosture(networked=True, storage_private=False, node_public_ip=True),
        ),
        Blueprint(
            name="eyes-off",
            summary="silo and model storage private (private endpoints, DNS linked to every "
            "VNet); computes without public IPs behind a workspace private endpoint; the "
            "workspace storage admits only the workspace and the submitters' IP ranges",
            posture=NetworkPosture(networked=True, storage_private=True, node_public_ip=False),
        ),
        Blueprint(
            name="private",
            summary="as eyes-off, and the workspace, its key vault and a Premium registry are "
            "reachable only through private endpoints (high business impact workspace); "
            "submitters come in through the hub network",
            posture=NetworkPosture(
                networked=True, storage_private=True, node_public_ip=False, workspace_private=True
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
