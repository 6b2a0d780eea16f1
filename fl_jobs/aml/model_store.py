"""The orchestrator's model store as the jobs see it: one datastore per container.

The infrastructure gives every silo its own container in the model store for its updates
(registered as datastore ``updates_<silo>``, writable only by that silo's identity) and one
``global`` container for aggregated models (the manifest's orchestrator datastore, read-only
for silos). A silo step therefore writes its update to its own update datastore, never to the
global one: RBAC would refuse it at run time, and the data-flow check refuses it before.

The per-silo datastore names come from each silo's ``update_datastore`` in the manifest; for
older manifests without it, from the full stack output (``model_store.update_datastores``), and
failing that from the infrastructure's own naming function, so both sides share one definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fl_jobs.manifest import FederationManifest, ManifestError, SiloRef


@dataclass(frozen=True)
class ModelStore:
    """Datastores of the model store: the global one and one per silo for its updates."""

    global_datastore: str
    update_datastores: Mapping[str, str]

    def update_datastore(self, silo: str) -> str:
        try:
            return self.update_datastores[silo]
        except KeyError:
            raise ManifestError(
                f"the model store has no update datastore for silo {silo!r}; known: "
                f"{sorted(self.update_datastores)}"
            ) from None

    def update_owner(self, datastore: str) -> str | None:
        """The silo whose update datastore ``datastore`` is, if it is one."""
        for silo, name in self.update_datastores.items():
            if name == datastore:
                return silo
        return None


def conventional_update_datastore(silo: str) -> str:
    """The name the infrastructure registers for ``silo``'s update container."""
    from components.naming import datastore

    return datastore("updates", silo)


def _update_datastore(silo: SiloRef, declared: Mapping[str, Any] | None) -> str:
    """The manifest's own field first, then the stack output, then the shared naming rule."""
    if silo.update_datastore:
        return silo.update_datastore
    if declared and silo.name in declared:
        return str(declared[silo.name])
    return conventional_update_datastore(silo.name)


def model_store_for(
    manifest: FederationManifest, stack_outputs: Mapping[str, Any] | None = None
) -> ModelStore:
    """The model store of ``manifest``, from the stack outputs when given; checked so that no
    datastore plays two roles."""
    declared = None
    if stack_outputs is not None:
        declared = (stack_outputs.get("model_store") or {}).get("update_datastores")
    if declared is not None and not isinstance(declared, Mapping):
        raise ManifestError("stack output model_store.update_datastores must be a mapping")
    updates = {silo.name: _update_datastore(silo, declared) for silo in manifest.silos}
    roles: dict[str, str] = {manifest.orchestrator.datastore: "the global model store"}
    for silo in manifest.silos:
        for datastore, role in (
            (silo.datastore, f"silo {silo.name!r}'s data"),
            (updates[silo.name], f"silo {silo.name!r}'s updates"),
        ):
            if datastore in roles:
                raise ManifestError(
                    f"datastore {datastore!r} is used both for {roles[datastore]} and for "
                    f"{role}; every silo needs its own data and update datastores"
                )
            roles[datastore] = role
    return ModelStore(manifest.orchestrator.datastore, updates)


def read_stack_outputs(path: Path) -> dict[str, Any] | None:
    """The whole stack output when ``path`` holds one (it has a ``federation`` key)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None  # FederationManifest.load reports unreadable files with the right message
    if isinstance(data, dict) and "federation" in data:
        return data
    return None
