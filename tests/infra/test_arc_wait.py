"""The wait for an Arc cluster's connectivity, against a loopback stand-in for ARM."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from components.kubernetes.arc_wait import (
    API_VERSION,
    ArcConnectionTimeout,
    ArcConnectivityProvider,
    ConnectivityPoller,
)

CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-site/providers/"
    "Microsoft.Kubernetes/connectedClusters/site"
)


class FakeArm:
    """Answers GETs of the connected cluster with the next scripted (code, status)."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str | None]] = []
        arm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                arm.requests.append((self.path, self.headers.get("Authorization")))
                code, status = arm.script.pop(0) if len(arm.script) > 1 else arm.script[0]
                body = json.dumps({"properties": {"connectivityStatus": status}}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def arm(request: pytest.FixtureRequest) -> Iterator[FakeArm]:
    fake = FakeArm(request.param)
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def poller(arm: FakeArm, sleeps: list[float]) -> ConnectivityPoller:
    return ConnectivityPoller(
        endpoint=arm.endpoint, token=lambda: "tok", interval_s=7, sleep=sleeps.append
    )


@pytest.mark.parametrize(
    "arm", [[(404, ""), (200, "Connecting"), (200, "Connected")]], indirect=True
)
def test_waits_until_the_cluster_reports_connected(arm: FakeArm) -> None:
    sleeps: list[float] = []
    assert poller(arm, sleeps).wait(CLUSTER, timeout_s=3600) == "Connected"
    assert sleeps == [7, 7]  # not yet created, connecting, connected
    path, auth = arm.requests[-1]
    assert path == f"{CLUSTER}?api-version={API_VERSION}" and auth == "Bearer tok"


@pytest.mark.parametrize("arm", [[(200, "Offline")]], indirect=True)
def test_a_cluster_that_never_connects_fails_with_its_last_status(arm: FakeArm) -> None:
    with pytest.raises(ArcConnectionTimeout, match=r"still reports 'Offline'.*azure-arc get pods"):
        poller(arm, []).wait(CLUSTER, timeout_s=0)


@pytest.mark.parametrize("arm", [[(403, "")]], indirect=True)
def test_missing_read_access_is_named(arm: FakeArm) -> None:
    with pytest.raises(ArcConnectionTimeout, match=r"403.*read access"):
        poller(arm, []).wait(CLUSTER, timeout_s=60)


@pytest.mark.parametrize("arm", [[(200, "Connected")]], indirect=True)
def test_the_resource_is_created_once_connected_and_replaced_for_another_cluster(
    arm: FakeArm,
) -> None:
    provider = ArcConnectivityProvider()
    provider.poller = poller(arm, [])
    created = provider.create({"cluster_id": CLUSTER, "timeout_s": 60})
    assert created.id == CLUSTER and created.outs["status"] == "Connected"
    same = provider.diff(CLUSTER, {"cluster_id": CLUSTER}, {"cluster_id": CLUSTER})
    other = provider.diff(CLUSTER, {"cluster_id": CLUSTER}, {"cluster_id": CLUSTER + "2"})
    assert not same.changes and other.changes and other.replaces == ["cluster_id"]
