"""The federation manifest schema: the seam between infra and jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fl_jobs.run.manifest import FederationManifest, ManifestError


def _cloud_manifest() -> dict:
    return {
        "version": 1,
        "blueprint": "minimal",
        "workspace": {
            "subscription_id": "sub",
            "resource_group": "rg",
            "name": "mlw-fl",
            "region": "westeurope",
        },
        "orchestrator": {"compute": "orch-cpu", "datastore": "orchestrator_models"},
        "silos": [
            {
                "name": "hospital-a",
                "region": "westeurope",
                "compute": "silo-hospital-a",
                "datastore": "silo_hospital_a_data",
                "update_datastore": "updates_hospital_a",
                "identity_client_id": "abc",
            }
        ],
    }


def test_accepts_pulumi_stack_output_shape(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"federation": _cloud_manifest(), "other": 1}))
    manifest = FederationManifest.load(path)
    assert manifest.silo("hospital-a").compute == "silo-hospital-a"


def test_round_trips_through_json() -> None:
    manifest = FederationManifest.parse(_cloud_manifest())
    assert FederationManifest.parse(json.loads(manifest.to_json())) == manifest


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda m: m.update(version=2), "version"),
        (lambda m: m["silos"].append(dict(m["silos"][0])), "appears twice"),
        (lambda m: m["silos"][0].update(name="Bad_Name"), "lowercase"),
        (lambda m: m.update(silos=[]), "silos"),
        (lambda m: m.pop("workspace"), "workspace"),
        (lambda m: m["silos"][0].update(kind="cloud"), "kind"),
        (lambda m: m["silos"][0].pop("update_datastore"), "needs update_datastore"),
        (lambda m: m.update(surprise=True), "surprise"),
    ],
)
def test_bad_manifest_names_the_problem(mutate, expected: str) -> None:
    data = _cloud_manifest()
    mutate(data)
    with pytest.raises(ManifestError, match=expected):
        FederationManifest.parse(data)


def test_missing_file_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="pulumi stack output"):
        FederationManifest.load(tmp_path / "nope.json")


def test_unknown_silo_lists_known_ones() -> None:
    with pytest.raises(ManifestError, match="hospital-a"):
        FederationManifest.parse(_cloud_manifest()).silo("nope")
