"""The orchestrator's model store as the jobs see it: one datastore per container.

The infrastructure gives every silo its own container in the model store for its updates
(registered as datastore ``updates_<silo>``, writable only by that silo's identity) and one
``global`` container for aggregated models (the manifest's orchestrator datastore, read-only
for silos). A silo step therefore writes its update to its own update datastore, never to the
global one: RBAC would refuse it at run time, and the data-flow check refuses it before.

The per-silo datastore names come from each silo's ``update_datastore`` in the manifest,
which the infrastructure writes and the manifest schema requires for cloud silos; the jobs
never guess a name from the infrastructure's naming rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fl_jobs.run.manifest import FederationManifest, ManifestError, SiloRef


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


def model_store_for(manifest: FederationManifest) -> ModelStore:
    """The model store of ``manifest`` (each cloud silo names its update datastore; local
    silos have none and cannot run on Azure ML); checked so that no datastore plays two
    roles."""
    cloud = [silo for silo in manifest.silos if silo.kind != "local"]
    updates = {silo.name: _update_datastore(silo) for silo in cloud}
    roles: dict[str, str] = {manifest.orchestrator.datastore: "the global model store"}
    for silo in cloud:
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


def _update_datastore(silo: SiloRef) -> str:
    if not silo.update_datastore:
        raise ManifestError(
            f"silo {silo.name!r} names no update_datastore; only a local silo can run without "
            "one. Regenerate the manifest with `pulumi stack output --json federation`"
        )
    return silo.update_datastore
