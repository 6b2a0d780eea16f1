"""The Azurite harness itself: HTTPS, token auth only, SAS scope enforced, stop and restart.

If these fail, every storage test's claim ("the token path is the one under test", "a silo
needs nothing beyond its own container") is void, so they are checked on their own.
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.storage.blob import BlobServiceClient, ContainerClient

from tests.azurite import AzuriteServer


def _container(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_token_credential_over_https_writes_and_reads(azurite: AzuriteServer) -> None:
    service = azurite.service_client()
    name = _container("harness")
    service.create_container(name)
    blob = service.get_blob_client(name, "hello.txt")
    blob.upload_blob(b"hello")
    assert blob.download_blob().readall() == b"hello"
    assert azurite.account_url.startswith("https://127.0.0.1:")


def test_requests_without_a_credential_are_refused(azurite: AzuriteServer) -> None:
    name = _container("anon")
    azurite.service_client().create_container(name)
    anonymous = ContainerClient(azurite.account_url, name, connection_verify=str(azurite.ca_path))
    with pytest.raises((ClientAuthenticationError, HttpResponseError)):
        anonymous.upload_blob("x", b"x")


def test_untrusted_certificate_is_refused(azurite: AzuriteServer) -> None:
    service = BlobServiceClient(azurite.account_url, credential=azurite.credential())
    with pytest.raises(ServiceRequestError):
        service.create_container(_container("tls"), connection_timeout=5, retry_total=0)


def test_a_container_sas_reaches_its_container_only(azurite: AzuriteServer) -> None:
    service = azurite.service_client()
    mine, other = _container("mine"), _container("other")
    service.create_container(mine)
    service.create_container(other)
    sas = azurite.container_sas(mine, "racwl")
    scoped = BlobServiceClient(
        azurite.account_url, credential=sas, connection_verify=str(azurite.ca_path)
    )
    scoped.get_blob_client(mine, "update.bin").upload_blob(b"ok")
    with pytest.raises(HttpResponseError) as refused:
        scoped.get_blob_client(other, "update.bin").upload_blob(b"no")
    assert refused.value.status_code == 403
    reader = BlobServiceClient(
        azurite.account_url,
        credential=azurite.container_sas(mine, "rl"),
        connection_verify=str(azurite.ca_path),
    )
    assert reader.get_blob_client(mine, "update.bin").download_blob().readall() == b"ok"
    with pytest.raises(HttpResponseError) as read_only:
        reader.get_blob_client(mine, "more.bin").upload_blob(b"no")
    assert read_only.value.status_code == 403


def test_stop_and_start_keep_the_port_and_the_data(private_azurite: AzuriteServer) -> None:
    service = private_azurite.service_client()
    name = _container("restart")
    service.create_container(name)
    service.get_blob_client(name, "kept.txt").upload_blob(b"kept")
    port = private_azurite.port
    private_azurite.stop()
    with pytest.raises(ServiceRequestError):
        service.get_blob_client(name, "kept.txt").download_blob(retry_total=0, connection_timeout=2)
    private_azurite.start()
    assert private_azurite.port == port
    assert service.get_blob_client(name, "kept.txt").download_blob().readall() == b"kept"
