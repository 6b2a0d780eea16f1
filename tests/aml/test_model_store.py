"""Where updates go: each silo's own update datastore, named as the infrastructure names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fl_jobs.aml.model_store import model_store_for, read_stack_outputs
from fl_jobs.manifest import FederationManifest, ManifestError
from tests.aml.conftest import blueprint_outputs


@pytest.mark.parametrize(("blueprint", "silos"), [("minimal", 1), ("eyes-off", 3)])
def test_update_datastores_match_what_the_blueprint_registers(blueprint: str, silos: int) -> None:
    outputs = blueprint_outputs(blueprint, silos)
    manifest = FederationManifest.parse(outputs)
    from_outputs = model_store_for(manifest, outputs)
    by_convention = model_store_for(manifest)
    assert dict(from_outputs.update_datastores) == outputs["model_store"]["update_datastores"]
    assert from_outputs == by_convention  # no drift between the jobs' and the infra's names
    assert by_convention.global_datastore == outputs["model_store"]["global_datastore"]


def _without_update_datastores(manifest: FederationManifest) -> FederationManifest:
    """A manifest as written before silos carried their update datastore."""
    silos = [s.model_copy(update={"update_datastore": None}) for s in manifest.silos]
    return manifest.model_copy(update={"silos": silos})


def test_the_manifest_names_each_silos_update_datastore(manifest3: FederationManifest) -> None:
    assert all(s.update_datastore for s in manifest3.silos)
    outputs = {"model_store": {"update_datastores": {s.name: "ignored" for s in manifest3.silos}}}
    store = model_store_for(manifest3, outputs)
    assert dict(store.update_datastores) == {s.name: s.update_datastore for s in manifest3.silos}


def test_stack_outputs_win_over_the_convention(manifest3: FederationManifest) -> None:
    manifest3 = _without_update_datastores(manifest3)
    names = {s.name: f"custom_{i}" for i, s in enumerate(manifest3.silos)}
    store = model_store_for(manifest3, {"model_store": {"update_datastores": names}})
    assert dict(store.update_datastores) == names
    assert store.update_owner("custom_1") == manifest3.silos[1].name
    assert store.update_owner(manifest3.orchestrator.datastore) is None


def test_a_datastore_in_two_roles_is_refused(manifest3: FederationManifest) -> None:
    manifest3 = _without_update_datastores(manifest3)
    first = manifest3.silos[0]
    clash = {s.name: s.datastore if s is first else f"u_{s.name}" for s in manifest3.silos}
    with pytest.raises(ManifestError, match=f"{first.datastore!r} is used both"):
        model_store_for(manifest3, {"model_store": {"update_datastores": clash}})


def test_only_whole_stack_outputs_are_read_as_such(
    manifest3: FederationManifest, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(manifest3.to_json())
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(blueprint_outputs("eyes-off", 3)))
    assert read_stack_outputs(bare) is None
    assert read_stack_outputs(tmp_path / "missing.json") is None
    outputs = read_stack_outputs(whole)
    assert outputs is not None and "model_store" in outputs
