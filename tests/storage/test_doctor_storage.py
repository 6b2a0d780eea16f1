"""``doctor``'s storage half over a real storage endpoint (Azurite): every movement of one round
and the isolation negatives, tried with each actor's own grants (a container-scoped SAS per
role assignment standing in for RBAC), compared with what the plan expects."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from rich.console import Console

from fl_jobs.doctor.expectations import ORCHESTRATOR, actors, expectations
from fl_jobs.doctor.probe import main, run_probe
from fl_jobs.run.manifest import FederationManifest
from fl_jobs.silo.data_upload import Destination
from tests.aml.conftest import blueprint_manifest
from tests.azurite import AzuriteServer

WRITER = "racwdl"
READER = "rl"


@pytest.fixture(scope="module")
def manifest() -> FederationManifest:
    return blueprint_manifest("eyes-off", 3)


@pytest.fixture
def sandbox(azurite: AzuriteServer, manifest: FederationManifest) -> dict[str, Destination]:
    """Each datastore of the manifest as its own Azurite container, each holding a blob."""
    tag = uuid.uuid4().hex[:6]
    names = {manifest.orchestrator.datastore}
    for s in manifest.silos:
        names |= {s.datastore, str(s.update_datastore)}
    found = {n: Destination(n, azurite.account_url, f"{n.replace('_', '-')}-{tag}") for n in names}
    service = azurite.service_client()
    for d in found.values():
        service.create_container(d.container)
        service.get_blob_client(d.container, "seed/blob.bin").upload_blob(b"x")
    return found


def grants(manifest: FederationManifest, actor: str) -> dict[str, str]:
    """Datastore -> SAS permissions: the sandbox's role assignments for ``actor``."""
    global_store = manifest.orchestrator.datastore
    if actor == ORCHESTRATOR:
        return {
            global_store: WRITER,
            **{str(s.update_datastore): READER for s in manifest.silos},
        }
    me = next(s for s in manifest.silos if f"silo:{s.name}" == actor)
    return {me.datastore: WRITER, str(me.update_datastore): WRITER, global_store: READER}


def clients(azurite: AzuriteServer, sandbox: dict[str, Destination], held: dict[str, str]):
    """Container clients with only the SAS the actor holds; on any other container it
    presents one of its own (refused there, as a token without a role would be)."""
    sas = {
        sandbox[d].container: azurite.container_sas(sandbox[d].container, p)
        for d, p in held.items()
    }
    fallback = next(iter(sas.values()))

    def make(d: Destination) -> ContainerClient:
        return ContainerClient(
            d.account_url, d.container, credential=sas.get(d.container, fallback),
            connection_verify=str(azurite.ca_path),
        )  # fmt: skip

    return make


def doctor(
    azurite: AzuriteServer,
    sandbox: dict[str, Destination],
    manifest: FederationManifest,
    actor: str,
    held: dict[str, str],
) -> tuple[int, str]:
    console = Console(record=True, width=200)
    code = run_probe(manifest, actor, sandbox, clients(azurite, sandbox, held), console)
    return code, console.export_text()


def test_correct_grants_pass_for_every_actor(
    azurite: AzuriteServer, sandbox: dict[str, Destination], manifest: FederationManifest
) -> None:
    assert actors(manifest) == ["silo:silo1", "silo:silo2", "silo:silo3", ORCHESTRATOR]
    for actor in actors(manifest):
        code, text = doctor(azurite, sandbox, manifest, actor, grants(manifest, actor))
        assert code == 0, text
        assert "0 differ" in text
    listed = azurite.service_client().get_container_client(sandbox["fl_models"].container)
    assert [b.name for b in listed.list_blobs()] == ["seed/blob.bin"]  # probes removed


def test_a_sas_one_container_too_wide_fails_naming_the_movement(
    azurite: AzuriteServer,
    sandbox: dict[str, Destination],
    manifest: FederationManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    held = grants(manifest, "silo:silo1") | {manifest.orchestrator.datastore: WRITER}
    code, text = doctor(azurite, sandbox, manifest, "silo:silo1", held)
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("doctor: difference: silo:silo1: write the global model (write ")
    assert "expected denied, observed allowed" in line
    assert "1 differ" in text


def test_a_sas_reaching_another_silos_update_fails_naming_the_movement(
    azurite: AzuriteServer,
    sandbox: dict[str, Destination],
    manifest: FederationManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    held = grants(manifest, "silo:silo1") | {str(manifest.silos[1].update_datastore): READER}
    code, _ = doctor(azurite, sandbox, manifest, "silo:silo1", held)
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "silo:silo1: read silo silo2's update" in line


def test_a_sas_one_container_too_narrow_fails_naming_the_movement(
    azurite: AzuriteServer,
    sandbox: dict[str, Destination],
    manifest: FederationManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    held = grants(manifest, "silo:silo2") | {str(manifest.silos[1].update_datastore): READER}
    code, _ = doctor(azurite, sandbox, manifest, "silo:silo2", held)
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("doctor: difference: silo:silo2: write its model update (write ")
    assert "expected allowed, observed denied (403" in line


def test_the_orchestrator_writing_a_silo_update_is_a_difference(
    azurite: AzuriteServer,
    sandbox: dict[str, Destination],
    manifest: FederationManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    held = grants(manifest, ORCHESTRATOR) | {str(manifest.silos[2].update_datastore): WRITER}
    code, _ = doctor(azurite, sandbox, manifest, ORCHESTRATOR, held)
    assert code == 1
    assert "orchestrator: write silo silo3's update" in capsys.readouterr().err


def test_expectations_cover_the_round_and_the_negatives(manifest: FederationManifest) -> None:
    silo = expectations(manifest, "silo:silo1")
    assert sum(e.allowed for e in silo) == 4 and sum(not e.allowed for e in silo) == 1 + 3 * 2
    orchestrator = expectations(manifest, ORCHESTRATOR)
    assert [e.movement for e in orchestrator if e.allowed] == [
        "read silo silo1's update",
        "read silo silo2's update",
        "read silo silo3's update",
        "read the test set",
        "write the global model",
    ]


@pytest.mark.parametrize(
    ("actor", "outputs", "fragment"),
    [
        ("silo:nosuch", {"datastores": {"x": {"account": "a", "container": "c"}}}, "--actor"),
        ("orchestrator", {}, "has no 'datastores' output"),
    ],
)
def test_bad_probe_input_is_one_line(
    manifest: FederationManifest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    actor: str,
    outputs: dict[str, object],
    fragment: str,
) -> None:
    (tmp_path / "m.json").write_text(manifest.to_json())
    (tmp_path / "o.json").write_text(json.dumps(outputs))
    args = ["--manifest", str(tmp_path / "m.json"), "--outputs", str(tmp_path / "o.json")]
    assert main([*args, "--actor", actor]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and fragment in line


def test_an_uploader_may_write_its_silos_data_and_nothing_else(
    azurite: AzuriteServer,
    sandbox: dict[str, Destination],
    manifest: FederationManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = manifest.silos[0].datastore
    code, text = doctor(azurite, sandbox, manifest, "uploader:silo1", {mine: WRITER})
    assert code == 0, text
    other = manifest.silos[1].datastore
    code, _ = doctor(azurite, sandbox, manifest, "uploader:silo1", {mine: WRITER, other: WRITER})
    assert code == 1
    err = capsys.readouterr().err
    assert "uploader:silo1: read silo silo2's data" in err
    assert "uploader:silo1: write silo silo2's data" in err
