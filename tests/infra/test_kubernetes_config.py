"""Bad settings of Kubernetes silos: each a clear error naming key, value and fix, raised
before any resource is declared, never showing a secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.infra.helpers import build_from_raw, declared_before_error
from tests.infra.kubernetes_runs import SITE_KUBECONFIG, agent_key, hybrid_raw, stack_settings

Edit = Callable[[dict[str, Any]], None]
ONBOARD, EXISTING = 2, 3  # bank-c and bank-d in the hybrid sample


def _rsa_2048() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def arc(index: int, **changes: Any) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        settings = raw["silos"][index]["arc"]
        for key, value in changes.items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value

    return edit


def silo(index: int, **changes: Any) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        raw["silos"][index].update(changes)

    return edit


def top(**changes: Any) -> Edit:
    return lambda raw: raw.update(changes)


CONFIDENTIAL = "confidential"
CPU_GPU_TYPE = [{"name": "gpu-1", "cpu": "4", "memory": "16Gi", "gpu": 1}]
BAD = [
    # (id, base stack, edit, key, value shown, fragment of the fix)
    (
        "existing-without-cluster-id",
        "hybrid",
        arc(EXISTING, clusterId=None),
        f"silos[{EXISTING}].arc.clusterId",
        "None",
        "az connectedk8s show",
    ),
    (
        "existing-with-an-aks-id",
        "hybrid",
        arc(
            EXISTING,
            clusterId="/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/"
            "providers/Microsoft.ContainerService/managedClusters/aks1",
        ),
        f"silos[{EXISTING}].arc.clusterId",
        "managedClusters/aks1",
        "connectedClusters/<name>",
    ),
    (
        "arc-without-kubeconfig",
        "hybrid",
        arc(ONBOARD, kubeconfig=None),
        f"silos[{ONBOARD}].arc.kubeconfig",
        "None",
        f"pulumi config set --secret --path 'fl-sandbox:silos[{ONBOARD}].arc.kubeconfig'",
    ),
    (
        "onboard-without-chart-version",
        "hybrid",
        arc(ONBOARD, chartVersion=None),
        f"silos[{ONBOARD}].arc.chartVersion",
        "None",
        "azure-arc-k8sagents version",
    ),
    (
        "onboard-with-unpinned-chart",
        "hybrid",
        arc(ONBOARD, chartVersion="latest"),
        f"silos[{ONBOARD}].arc.chartVersion",
        "'latest'",
        "azure-arc-k8sagents version",
    ),
    (
        "onboard-with-cluster-id",
        "hybrid",
        arc(
            ONBOARD,
            clusterId="/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/"
            "providers/Microsoft.Kubernetes/connectedClusters/c",
        ),
        f"silos[{ONBOARD}].arc.clusterId",
        "connectedClusters/c",
        "mode: existing",
    ),
    (
        "onboard-without-key",
        "hybrid",
        arc(ONBOARD, privateKey=None),
        f"silos[{ONBOARD}].arc.privateKey",
        "None",
        "python -m blueprints arc-key",
    ),
    (
        "onboard-with-a-short-key",
        "hybrid",
        arc(ONBOARD, privateKey=_rsa_2048()),
        f"silos[{ONBOARD}].arc.privateKey",
        "<secret>",
        "python -m blueprints arc-key",
    ),
    (
        "onboard-with-garbage-key",
        "hybrid",
        arc(ONBOARD, privateKey="hunter2-not-a-key"),
        f"silos[{ONBOARD}].arc.privateKey",
        "<secret>",
        "python -m blueprints arc-key",
    ),
    (
        "existing-with-a-key",
        "hybrid",
        arc(EXISTING, privateKey="x"),
        f"silos[{EXISTING}].arc.privateKey",
        "<set>",
        "use mode: onboard",
    ),
    (
        "arc-without-egress-ranges",
        "hybrid",
        silo(ONBOARD, egressIpRanges=[]),
        f"silos[{ONBOARD}].egressIpRanges",
        "[]",
        "public IPv4 addresses",
    ),
    (
        "arc-with-private-egress",
        "hybrid",
        silo(ONBOARD, egressIpRanges=["10.1.0.0/16"]),
        f"silos[{ONBOARD}].egressIpRanges[0]",
        "10.1.0.0/16",
        "public IPv4",
    ),
    (
        "gpu-type-on-a-cpu-arc-cluster",
        "hybrid",
        silo(ONBOARD, instanceTypes=CPU_GPU_TYPE),
        f"silos[{ONBOARD}].instanceTypes[0].gpu",
        "1",
        "arc.gpu: true",
    ),
    (
        "memory-not-a-quantity",
        "hybrid",
        silo(ONBOARD, instanceTypes=[{"name": "big", "memory": "8GB"}]),
        f"silos[{ONBOARD}].instanceTypes[0].memory",
        "8GB",
        "8Gi",
    ),
    (
        "volume-host-path-and-nfs",
        "hybrid",
        silo(ONBOARD, dataVolume={"hostPath": "/data", "nfsServer": "10.0.0.4", "nfsPath": "/x"}),
        f"silos[{ONBOARD}].dataVolume",
        "'hostPath': '/data'",
        "hostPath: /data/fl, or nfsServer",
    ),
    (
        "existing-storage-not-a-storage-id",
        "hybrid",
        silo(
            0,
            storage={
                "accountId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                "rg/providers/Microsoft.KeyVault/vaults/kv1"
            },
        ),
        "silos[0].storage.accountId",
        "Microsoft.KeyVault/vaults/kv1",
        "Microsoft.Storage/storageAccounts/<name>",
    ),
    (
        "unknown-kind",
        "hybrid",
        silo(0, kind="gke"),
        "silos[0].kind",
        "'gke'",
        "aml, arc, aks",
    ),
    (
        "arc-on-a-private-blueprint",
        "hybrid",
        top(
            blueprint="eyes-off",
            submitters=[{"principalId": "deployer", "ipRanges": ["198.51.100.0/24"]}],
        ),
        f"silos[{ONBOARD}].kind",
        "'arc'",
        "blueprint 'hybrid'",
    ),
    (
        "gpu-type-on-a-confidential-cpu-pool",
        CONFIDENTIAL,
        silo(0, instanceTypes=CPU_GPU_TYPE),
        "silos[0].instanceTypes[0].gpu",
        "1",
        "GPU size",
    ),
    (
        "non-confidential-pool",
        CONFIDENTIAL,
        silo(0, pool={"vmSize": "Standard_D4s_v5"}),
        "silos[0].pool.vmSize",
        "Standard_D4s_v5",
        "Standard_DC4as_v5",
    ),
    (
        "aml-silo-in-confidential",
        CONFIDENTIAL,
        lambda raw: raw["silos"].__setitem__(0, {"name": "hospital-a", "region": "westeurope"}),
        "silos[0].kind",
        "'aml'",
        "kind: aks",
    ),
    (
        "aks-outside-a-private-workspace-region",
        CONFIDENTIAL,
        silo(1, region="northeurope"),
        "silos[1].region",
        "northeurope",
        "set region: westeurope, or make the silo kind 'aml'",
    ),
    (
        "non-confidential-aggregation",
        CONFIDENTIAL,
        top(orchestratorPool={"vmSize": "Standard_D4s_v5"}),
        "orchestratorPool.vmSize",
        "Standard_D4s_v5",
        "Standard_DC4as_v5",
    ),
    (
        "aggregation-pool-outside-confidential",
        "hybrid",
        top(orchestratorPool={"vmSize": "Standard_DC4as_v5"}),
        "orchestratorPool",
        "Standard_DC4as_v5",
        "remove orchestratorPool",
    ),
    (
        "aks-without-a-network",
        "hybrid",
        top(
            blueprint="minimal",
            silos=[{"name": "a", "region": "westeurope", "kind": "aks"}],
        ),
        "silos[0].kind",
        "'aks'",
        "networked blueprint",
    ),
    (
        "unknown-arc-setting",
        "hybrid",
        arc(ONBOARD, clusterID="typo"),
        f"silos[{ONBOARD}].arc.clusterID",
        "typo",
        "clusterId",
    ),
]


def _raw(base: str) -> dict[str, Any]:
    return hybrid_raw() if base == "hybrid" else stack_settings(base)


@pytest.mark.parametrize(
    ("base", "edit", "key", "shown", "fix"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD],
)
def test_bad_kubernetes_silo_settings_are_refused_before_any_resource(
    base: str, edit: Edit, key: str, shown: str, fix: str
) -> None:
    raw = _raw(base)
    edit(raw)
    error, declared = declared_before_error(build_from_raw(raw))
    message = str(error)
    assert error.key == key, message
    assert f"fl-sandbox:{key} = " in message
    assert shown in message
    assert "Fix: " in message and fix in message.split("Fix: ", 1)[1]
    assert declared == []
    for secret in (agent_key(), SITE_KUBECONFIG.split("users:")[1], "hunter2"):
        assert secret not in message


def test_arc_key_prints_a_key_onboarding_accepts() -> None:
    """`python -m blueprints arc-key` output, piped into stack config, passes the checks and
    converts to ARM's public-key form."""
    from typer.testing import CliRunner

    from blueprints.__main__ import app
    from components.arc_keys import agent_public_key_certificate

    result = CliRunner().invoke(app, ["arc-key"])
    assert result.exit_code == 0
    pem = result.stdout
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    raw = hybrid_raw()
    raw["silos"][ONBOARD]["arc"]["privateKey"] = pem
    from blueprints.spec import parse_spec

    spec = parse_spec(raw, source="test")
    assert spec.silo("bank-c").arc.private_key.plain == pem
    assert agent_public_key_certificate(pem).startswith("MIICCgKCAgEA")
