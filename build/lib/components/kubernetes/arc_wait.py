"""Wait until an Arc-connected cluster reports ``Connected``, as ``az connectedk8s connect`` does.

A Helm release waits only for its pods; Azure learns the cluster is connected a little later,
and extensions installed before that fail with "Unable to get response from the Agent in
time". This resource polls the connected cluster's ``connectivityStatus`` in ARM after the
agents' release and fails with a clear message (and the status it last saw) if it is not
``Connected`` within the timeout, so the Azure ML extension is created only after it is.

It is a Pulumi dynamic resource: the polling runs in the deployment, with the deploying
principal's Azure credential (``DefaultAzureCredential``, as the azure-native provider), and
nothing secret is stored in its state.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

ARM_ENDPOINT = "https://management.azure.com"
API_VERSION = "2024-01-01"
DEFAULT_TIMEOUT_S = 1200
POLL_INTERVAL_S = 15


class ArcConnectionTimeout(RuntimeError):
    """The cluster did not report Connected in time; the message says what it reported."""


def _default_token() -> str:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token("https://management.azure.com/.default").token


@dataclass
class ConnectivityPoller:
    """Reads a connected cluster's status from ARM until it is Connected."""

    endpoint: str = ARM_ENDPOINT
    token: Callable[[], str] = _default_token
    interval_s: float = POLL_INTERVAL_S
    sleep: Callable[[float], None] = time.sleep

    def status(self, cluster_id: str) -> str:
        url = f"{self.endpoint.rstrip('/')}{cluster_id}?api-version={API_VERSION}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token()}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read().decode())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return "NotFound"
            raise ArcConnectionTimeout(
                f"ARM answered {exc.code} for {cluster_id}: the deploying principal needs read "
                "access to the connected cluster"
            ) from None
        return str((body.get("properties") or {}).get("connectivityStatus") or "Unknown")

    def wait(self, cluster_id: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        last = "Unknown"
        while True:
            last = self.status(cluster_id)
            if last == "Connected":
                return last
            if time.monotonic() >= deadline:
                raise ArcConnectionTimeout(
                    f"connected cluster {cluster_id} still reports {last!r} after "
                    f"{timeout_s:.0f} s; check the azure-arc agents (kubectl -n azure-arc get "
                    "pods) and their outbound access to Azure's Arc endpoints"
                )
            self.sleep(self.interval_s)


class ArcConnectivityProvider(ResourceProvider):
    """Create = wait for Connected; nothing to update or delete in Azure."""

    poller: ConnectivityPoller | None = None

    def create(self, props: dict[str, Any]) -> CreateResult:
        poller = self.poller or ConnectivityPoller()
        status = poller.wait(str(props["cluster_id"]), float(props.get("timeout_s", 0) or 0))
        return CreateResult(id_=str(props["cluster_id"]), outs={**props, "status": status})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("cluster_id") != news.get("cluster_id")
        return DiffResult(changes=changed, replaces=["cluster_id"] if changed else [])


class ArcConnected(pulumi.dynamic.Resource):
    """Exists once the connected cluster ``cluster_id`` reports Connected."""

    status: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cluster_id: pulumi.Input[str],
        timeout_s: int = DEFAULT_TIMEOUT_S,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ArcConnectivityProvider(),
            name,
            {"cluster_id": cluster_id, "timeout_s": timeout_s, "status": None},
            opts,
        )
