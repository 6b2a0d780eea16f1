"""A managed-identity token endpoint on loopback, so that agent processes authenticate with
azure-identity's ``DefaultAzureCredential`` exactly as on Azure.

It speaks the App Service managed-identity protocol (``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER``, https://learn.microsoft.com/azure/app-service/overview-managed-identity
#rest-endpoint-reference), which ``ManagedIdentityCredential`` picks from the environment, and
hands out the tokens Azurite's basic OAuth accepts (:class:`tests.azurite.EmulatorCredential`).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.azurite import EmulatorCredential


class IdentityEndpoint:
    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.secret:
                    self.send_response(401)
                    self.end_headers()
                    return
                token = EmulatorCredential().get_token("https://storage.azure.com/.default")
                body = json.dumps(
                    {
                        "access_token": token.token,
                        "expires_on": str(token.expires_on),
                        "resource": "https://storage.azure.com",
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def env(self) -> dict[str, str]:
        port = self.server.server_address[1]
        return {
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{port}/msi/token",
            "IDENTITY_HEADER": self.secret,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def identity_endpoint() -> Iterator[IdentityEndpoint]:
    endpoint = IdentityEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()
