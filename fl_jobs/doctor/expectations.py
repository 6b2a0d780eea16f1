"""What the plan expects of each actor on storage: the movements of one round (allowed) and the
isolation negatives (denied), from the federation manifest.

The positives are the job path's storage movements (policies/job_path.py); the negatives are
the invariants' promises (docs/isolation.md): a silo never reads another silo's data or update
and never writes ``global``; the orchestrator never reads silo data and never writes a silo's
update container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fl_jobs.run.manifest import FederationManifest, SiloRef

Operation = Literal["read", "write"]
ORCHESTRATOR = "orchestrator"


@dataclass(frozen=True)
class Expectation:
    """One movement: ``actor`` does ``operation`` on ``datastore``; ``allowed`` is the plan's
    answer."""

    actor: str
    movement: str
    datastore: str
    operation: Operation
    allowed: bool


def _cloud_silos(manifest: FederationManifest) -> list[SiloRef]:
    return [s for s in manifest.silos if s.kind != "local"]


def _update(silo: SiloRef) -> str:
    if not silo.update_datastore:
        raise ValueError(f"silo {silo.name} has no update_datastore in the manifest")
    return silo.update_datastore


def actors(manifest: FederationManifest) -> list[str]:
    """Every actor doctor probes: each cloud silo, then the orchestrator."""
    return [*(f"silo:{s.name}" for s in _cloud_silos(manifest)), ORCHESTRATOR]


def uploader_actors(manifest: FederationManifest) -> list[str]:
    """A silo's data uploader (``dataUploaders.<silo>``), probed from where it uploads."""
    return [f"uploader:{s.name}" for s in _cloud_silos(manifest)]


def _uploader(manifest: FederationManifest, actor: str) -> list[Expectation]:
    silos = _cloud_silos(manifest)
    name = actor.removeprefix("uploader:")
    me = next(s for s in silos if s.name == name)
    found = [
        Expectation(actor, "upload its silo's data", me.datastore, "write", True),
        Expectation(actor, "write its silo's update", _update(me), "write", False),
        Expectation(
            actor, "write the global model", manifest.orchestrator.datastore, "write", False
        ),
    ]
    for other in silos:
        if other.name != name:
            found += [
                Expectation(
                    actor, f"read silo {other.name}'s data", other.datastore, "read", False
                ),
                Expectation(
                    actor, f"write silo {other.name}'s data", other.datastore, "write", False
                ),
            ]
    return found


def expectations(manifest: FederationManifest, actor: str) -> list[Expectation]:
    """The movements ``actor`` (``silo:<name>``, ``orchestrator`` or ``uploader:<name>``) is
    probed on."""
    silos = _cloud_silos(manifest)
    global_store = manifest.orchestrator.datastore
    if actor in uploader_actors(manifest):
        return _uploader(manifest, actor)
    if actor == ORCHESTRATOR:
        found = [
            Expectation(actor, f"read silo {s.name}'s update", _update(s), "read", True)
            for s in silos
        ]
        found += [
            Expectation(actor, "read the test set", global_store, "read", True),
            Expectation(actor, "write the global model", global_store, "write", True),
        ]
        for s in silos:
            found += [
                Expectation(actor, f"read silo {s.name}'s data", s.datastore, "read", False),
                Expectation(actor, f"write silo {s.name}'s update", _update(s), "write", False),
            ]
        return found
    name = actor.removeprefix("silo:")
    me = next((s for s in silos if s.name == name), None)
    if me is None or not actor.startswith("silo:"):
        known = ", ".join([*actors(manifest), *uploader_actors(manifest)])
        raise ValueError(f"unknown actor {actor!r}; known: {known}")
    found = [
        Expectation(actor, "read its data", me.datastore, "read", True),
        Expectation(actor, "write preprocessed data", me.datastore, "write", True),
        Expectation(actor, "read the global model", global_store, "read", True),
        Expectation(actor, "write its model update", _update(me), "write", True),
        Expectation(actor, "write the global model", global_store, "write", False),
    ]
    for other in silos:
        if other.name == name:
            continue
        found += [
            Expectation(actor, f"read silo {other.name}'s data", other.datastore, "read", False),
            Expectation(actor, f"read silo {other.name}'s update", _update(other), "read", False),
            Expectation(actor, f"write silo {other.name}'s update", _update(other), "write", False),
        ]
    return found


def datastores_of(manifest: FederationManifest) -> list[str]:
    """Every datastore the probes touch, in manifest order."""
    names = [manifest.orchestrator.datastore]
    for silo in _cloud_silos(manifest):
        names += [silo.datastore, _update(silo)]
    return names
