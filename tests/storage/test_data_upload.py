"""Seeding over a real storage endpoint (Azurite): scripts/prepare_silo_data.py uploads each
silo's folder and the test set with the uploader's own credential, a container-scoped SAS
standing in for the uploader's container-scoped role. Nothing else is reachable with it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from fl_jobs.run.manifest import FederationManifest
from fl_jobs.silo.data_upload import Destination
from scripts.prepare_silo_data import main, prepare_silo_data, upload_all
from tests.aml.conftest import blueprint_manifest, job_config
from tests.azurite import AzuriteServer


@pytest.fixture(scope="module")
def manifest() -> FederationManifest:
    return blueprint_manifest("eyes-off", 2)


def destinations(server: AzuriteServer, manifest: FederationManifest) -> dict[str, Destination]:
    """Every datastore of the manifest in its own Azurite container (one account here)."""
    tag = uuid.uuid4().hex[:6]
    stores = [*(s.datastore for s in manifest.silos), manifest.orchestrator.datastore]
    found = {
        name: Destination(name, server.account_url, f"{name.replace('_', '-')}-{tag}")
        for name in stores
    }
    service = server.service_client()
    for d in found.values():
        service.create_container(d.container)
    return found


def sas_clients(server: AzuriteServer, grants: dict[str, str]):
    """Container clients holding only the SAS of the containers in ``grants`` (container ->
    permissions); any other container gets the first grant's SAS, which it refuses."""
    sas = {c: server.container_sas(c, p) for c, p in grants.items()}
    fallback = next(iter(sas.values()))

    def make(d: Destination) -> ContainerClient:
        return ContainerClient(
            d.account_url, d.container, credential=sas.get(d.container, fallback),
            connection_verify=str(server.ca_path),
        )  # fmt: skip

    return make


def test_each_uploader_uploads_its_folder_with_a_container_sas(
    azurite: AzuriteServer, manifest: FederationManifest, tmp_path: Path
) -> None:
    where = destinations(azurite, manifest)
    uploads = prepare_silo_data(
        manifest, job_config(), tmp_path / "out", data_prefix="fl-sandbox/digits"
    )
    grants = {where[u.datastore].container: "cw" for u in uploads}
    assert upload_all(uploads, where, sas_clients(azurite, grants)) == 0
    service = azurite.service_client()
    for upload in uploads:
        container = service.get_container_client(where[upload.datastore].container)
        blobs = sorted(b.name for b in container.list_blobs())
        local = sorted(p for p in upload.local.rglob("*") if p.is_file())
        assert blobs == [f"{upload.path}/{p.relative_to(upload.local).as_posix()}" for p in local]
        for path, name in zip(local, blobs, strict=True):
            assert container.download_blob(name).readall() == path.read_bytes()


def test_an_uploader_of_one_silo_is_refused_on_another_naming_the_datastore(
    azurite: AzuriteServer,
    manifest: FederationManifest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = destinations(azurite, manifest)
    uploads = prepare_silo_data(
        manifest, job_config(), tmp_path / "out", data_prefix="fl-sandbox/digits"
    )
    first, second = manifest.silos[0].datastore, manifest.silos[1].datastore
    code = upload_all(uploads, where, sas_clients(azurite, {where[first].container: "cw"}))
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: uploading to {second}:fl-sandbox/digits/") and "403" in line
    assert "fl-sandbox:dataUploaders" in line
    listed = azurite.service_client().get_container_client(where[first].container).list_blobs()
    assert any(b.name.startswith("fl-sandbox/digits/") for b in listed)  # its own folder is in


@pytest.fixture
def manifest_file(manifest: FederationManifest, tmp_path: Path) -> Path:
    path = tmp_path / "federation.json"
    path.write_text(manifest.to_json())
    return path


@pytest.mark.parametrize(
    ("extra", "outputs", "fragment"),
    [
        (["--upload"], None, "error: --upload needs --outputs"),
        (["--outputs", "o.json"], None, "error: --outputs and --only go with --upload"),
        (["--upload", "--outputs", "{o}"], {"other": 1}, "has no 'datastores' output"),
        (
            ["--upload", "--outputs", "{o}"],
            {"datastores": {"fl_models": {"account": "a", "container": "global"}}},
            "is not in the stack outputs' datastores",
        ),
        (
            ["--upload", "--outputs", "{o}", "--data-prefix", "mine/digits"],
            {"datastores": {}},
            "test-set uploaders may write only paths matching 'fl-sandbox/*/test/*'",
        ),
        (
            ["--upload", "--outputs", "{o}", "--only", "nosuch"],
            {"datastores": {}},
            "error: --only names 'nosuch'",
        ),
    ],
)
def test_bad_upload_arguments_are_one_line_before_anything_is_written(
    manifest_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    outputs: dict[str, object] | None,
    fragment: str,
) -> None:
    out_json = tmp_path / "outputs.json"
    if outputs is not None:
        out_json.write_text(json.dumps(outputs))
    out = tmp_path / "data"
    args = [a.replace("{o}", str(out_json)) for a in extra]
    code = main(["--manifest", str(manifest_file), "--example", "digits", "--out", str(out), *args])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert fragment in line and " - " in line
    assert not out.exists()


def test_the_test_path_condition_admits_the_test_set_and_no_global_model() -> None:
    from fl_jobs.aml.layout import global_model_path
    from fl_jobs.aml.pipeline import default_data_prefix
    from fl_jobs.aml.submit import default_job_name
    from fl_jobs.silo.data_upload import test_path_allowed
    from tests.aml.conftest import job_config

    prefix = default_data_prefix(job_config())
    assert test_path_allowed(f"{prefix}/test/X.npy")
    for round_index in (0, 1, 7):
        path = global_model_path(default_job_name("digits"), round_index)
        assert not test_path_allowed(f"{path}/model.pt"), path
