"""Where updates go: each silo's own update datastore, as the infrastructure registers it."""

from __future__ import annotations

import pytest

from fl_jobs.aml.model_store import model_store_for
from fl_jobs.run.manifest import FederationManifest, ManifestError
from tests.aml.conftest import blueprint_outputs


@pytest.mark.parametrize(("blueprint", "silos"), [("minimal", 1), ("eyes-off", 3)])
def test_update_datastores_match_what_the_blueprint_registers(blueprint: str, silos: int) -> None:
    outputs = blueprint_outputs(blueprint, silos)
    store = model_store_for(FederationManifest.parse(outputs))
    assert dict(store.update_datastores) == outputs["model_store"]["update_datastores"]
    assert store.global_datastore == outputs["model_store"]["global_datastore"]


def test_the_manifest_names_each_silos_update_datastore(manifest3: FederationManifest) -> None:
    store = model_store_for(manifest3)
    assert dict(store.update_datastores) == {s.name: s.update_datastore for s in manifest3.silos}
    assert store.update_owner(manifest3.silos[1].update_datastore or "") == manifest3.silos[1].name
    assert store.update_owner(manifest3.orchestrator.datastore) is None


def test_a_cloud_silo_without_update_datastore_is_refused(manifest3: FederationManifest) -> None:
    data = manifest3.model_dump(mode="json")
    data["silos"][1]["update_datastore"] = None
    with pytest.raises(ManifestError, match=r"needs update_datastore"):
        FederationManifest.parse(data)


def test_a_datastore_in_two_roles_is_refused(manifest3: FederationManifest) -> None:
    first = manifest3.silos[0]
    silos = [
        s.model_copy(update={"update_datastore": s.datastore if s is first else f"u_{s.name}"})
        for s in manifest3.silos
    ]
    with pytest.raises(ManifestError, match=f"{first.datastore!r} is used both"):
        model_store_for(manifest3.model_copy(update={"silos": silos}))
