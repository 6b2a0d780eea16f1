"""Azurite, Microsoft's Azure Storage emulator, as a real blob endpoint for the tests.

Why it runs the way it does:
- over HTTPS with a certificate made here, and with ``--oauth basic``, so that the code path
  under test is the one used on Azure: a bearer token from an azure-identity style
  ``TokenCredential``, never an account key (Azurite checks the token's issuer, audience and
  lifetime, not its signature, so :class:`EmulatorCredential` mints an unsigned one);
- on free loopback ports, with its data in a throw-away folder, telemetry off;
- container-scoped SAS tokens (:meth:`AzuriteServer.container_sas`) stand in for Azure RBAC
  where a test must prove that an actor needs nothing beyond its own container: Azurite
  enforces a SAS's scope and permissions, not role assignments;
- :meth:`AzuriteServer.stop` and :meth:`AzuriteServer.start` keep the port and the data, so a
  test can take the endpoint away for a while and bring it back.

The emulator is the npm package pinned in ``tools/azurite`` (``make setup`` installs it).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_DIR = REPO_ROOT / "tools" / "azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account (public, documented by Microsoft); used only to
# sign SAS tokens in tests, never by the code under test.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
STARTUP_TIMEOUT_S = 30.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class EmulatorCredential:
    """A ``TokenCredential`` whose tokens Azurite's basic OAuth accepts.

    The token is a JWT with an Entra ID issuer, the storage audience and a one-hour lifetime,
    left unsigned: Azurite validates the claims only. ``object_id`` names the principal, so
    that logs and messages can tell actors apart.
    """

    def __init__(self, object_id: str = "00000000-0000-0000-0000-000000000001") -> None:
        self.object_id = object_id

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": "https://sts.windows.net/ab1f708d-50f6-404c-a006-d71b2ac7a606/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": self.object_id,
            "tid": "ab1f708d-50f6-404c-a006-d71b2ac7a606",
        }
        header = {"alg": "none", "typ": "JWT"}
        token = ".".join(
            [_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()), ""]
        )
        return AccessToken(token, now + 3600)

    def close(self) -> None:
        """Nothing to release (present for the credential protocol)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_loopback_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost; returns (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fl-sandbox test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@dataclass
class AzuriteServer:
    """One Azurite blob service on a free loopback port; start, stop and restart keep its data."""

    folder: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.folder / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ca_path, self.cert_path, self.key_path = make_loopback_certificate(self.folder)
        self.log_path = self.folder / "azurite.log"

    @property
    def account_url(self) -> str:
        """The blob endpoint, path-style: ``https://127.0.0.1:<port>/devstoreaccount1``."""
        return f"https://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def client_env(self) -> dict[str, str]:
        """Environment for a client process: trust the test CA (requests and azure-core)."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca_path), "SSL_CERT_FILE": str(self.ca_path)}

    def credential(
        self, object_id: str = "00000000-0000-0000-0000-000000000001"
    ) -> EmulatorCredential:
        """A token credential that this server accepts (see :class:`EmulatorCredential`)."""
        return EmulatorCredential(object_id)

    def service_client(self, credential: Any = None) -> BlobServiceClient:
        """A ``BlobServiceClient`` on this server with a token credential, trusting the test CA."""
        return BlobServiceClient(
            self.account_url,
            credential=credential or self.credential(),
            connection_verify=str(self.ca_path),
        )

    def container_sas(
        self,
        container: str,
        permission: str,
        hours: float = 2.0,
    ) -> str:
        """A SAS token scoped to one container, standing in for a container-scoped role.

        ``permission`` uses the SAS letters: ``r`` read, ``a`` add, ``c`` create, ``w`` write,
        ``d`` delete, ``l`` list (e.g. ``"rl"`` for a reader, ``"racwl"`` for a writer).
        """
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        return generate_container_sas(
            account_name=ACCOUNT_NAME,
            container_name=container,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
            start=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        )

    def start(self) -> None:
        """Start (or restart) the emulator on this server's port and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return
        if not AZURITE_BIN.exists():
            raise RuntimeError(
                f"Azurite is not installed at {AZURITE_BIN} - run `make setup` "
                "(it runs `npm ci --prefix tools/azurite`)"
            )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(AZURITE_BIN),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(self.data_dir),
                "--cert",
                str(self.cert_path),
                "--key",
                str(self.key_path),
                "--oauth",
                "basic",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Azurite exited with {self.process.returncode} on start - see {self.log_path}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"Azurite did not listen on port {self.port} in {STARTUP_TIMEOUT_S:.0f} s "
            f"- see {self.log_path}"
        )

    def stop(self) -> None:
        """Stop the emulator (its data stays on disk, so :meth:`start` brings it back)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """One Azurite for the session: HTTPS, OAuth, free port; tests use their own containers."""
    folder = Path(tempfile.mkdtemp(prefix="fl-sandbox-azurite-"))
    server = AzuriteServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_azurite(tmp_path: Path) -> Iterator[AzuriteServer]:
    """An Azurite of the test's own, for tests that stop and restart the endpoint."""
    server = AzuriteServer(tmp_path / "azurite")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sas_store(azurite: AzuriteServer, grants: dict[str, str]) -> Any:
    """A :class:`fl_jobs.store.blobs.Store` whose only credentials are container-scoped SAS
    tokens (``grants``: container -> permissions): the stand-in for RBAC in the tests."""
    from azure.storage.blob import ContainerClient

    from fl_jobs.store.blobs import Store

    return Store(
        {
            name: ContainerClient(
                azurite.account_url,
                name,
                credential=azurite.container_sas(name, permission),
                connection_verify=str(azurite.ca_path),
                retry_total=0,
            )
            for name, permission in grants.items()
        }
    )
