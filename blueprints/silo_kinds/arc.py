"""Silo kind ``arc``: a Kubernetes cluster on the silo's own premises, attached through Azure
Arc, either onboarded by fl-sandbox (``mode: onboard``) or already connected
(``mode: existing``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from blueprints.silo_kinds.base import SiloKind
from blueprints.silo_kinds.kubernetes import QUANTITY, KubernetesSiloSpec
from blueprints.spec_base import (
    ConfigError,
    Secret,
    SpecModel,
    check_ip_range,
    secret_value,
)
from components.silos.arc_cluster import ArcClusterSilo
from components.vocabulary.posture import NetworkPosture

_CONNECTED_CLUSTER_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/"
    r"Microsoft\.Kubernetes/connectedClusters/[-\w.]{1,63}$",
    re.IGNORECASE,
)
_CHART_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class ArcSettings(SpecModel):
    """How an on-premises cluster is attached through Azure Arc."""

    mode: Literal["onboard", "existing"]
    cluster_id: str | None = Field(
        default=None, description="existing: the connected cluster's ARM id"
    )
    cluster_name: str | None = Field(
        default=None, description="onboard: the connected cluster's name (default arc-<silo>)"
    )
    distribution: str = "generic"
    infrastructure: str = "generic"
    chart_version: str | None = Field(
        default=None, description="onboard: the azure-arc agents chart version, pinned"
    )
    kubeconfig: Secret | None = Field(
        default=None, description="admin kubeconfig of the cluster (a secret in stack config)"
    )
    private_key: Secret | None = Field(
        default=None, description="onboard: the agents' RSA-4096 key, PEM (a secret)"
    )
    extension_version: str | None = Field(
        default=None, description="Azure ML extension version to pin (default: stable train)"
    )
    gpu: bool = Field(default=False, description="the cluster has NVIDIA GPU nodes")

    @field_validator("kubeconfig", "private_key", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> Any:
        return secret_value(value)


class DataVolume(SpecModel):
    """On-premises data the silo's jobs read: a host path or an NFS share, mounted read-only."""

    host_path: str | None = None
    nfs_server: str | None = None
    nfs_path: str | None = None
    capacity: str = "100Gi"
    mount_path: str = "/mnt/silo-data"

    def check(self, key: str) -> None:
        host = self.host_path is not None
        nfs = self.nfs_server is not None or self.nfs_path is not None
        if host == nfs:
            raise ConfigError(
                key,
                self.model_dump(by_alias=True, exclude_none=True),
                "give either hostPath or nfsServer with nfsPath",
                "e.g. hostPath: /data/fl, or nfsServer: 10.1.2.3 and nfsPath: /exports/fl",
            )
        if nfs and not (self.nfs_server and self.nfs_path):
            raise ConfigError(
                key,
                self.model_dump(by_alias=True, exclude_none=True),
                "an NFS share needs both nfsServer and nfsPath",
                "set both",
            )
        for field, value in (
            ("hostPath", self.host_path),
            ("nfsPath", self.nfs_path),
            ("mountPath", self.mount_path),
        ):
            if value is not None and not value.startswith("/"):
                raise ConfigError(f"{key}.{field}", value, "not an absolute path", "start with /")
        if not QUANTITY.match(self.capacity):
            raise ConfigError(f"{key}.capacity", self.capacity, "not a quantity", "e.g. 100Gi")


class ArcSiloSpec(KubernetesSiloSpec):
    """A silo on the site's own Kubernetes cluster, attached through Azure Arc."""

    kind: Literal["arc"]
    arc: ArcSettings
    data_volume: DataVolume | None = None
    egress_ip_ranges: list[str] = Field(
        default_factory=list,
        description="public addresses the cluster reaches Azure from; its storage admits only "
        "them (selected networks)",
    )

    @property
    def egress_ranges(self) -> list[str]:
        return list(self.egress_ip_ranges)

    def on_premises_output(self) -> dict[str, Any]:
        return {"egress_ip_ranges": list(self.egress_ip_ranges), "cluster": self.cluster_name}

    @property
    def cluster_name(self) -> str:
        if self.arc.cluster_id:
            return self.arc.cluster_id.rstrip("/").rsplit("/", 1)[-1]
        return self.arc.cluster_name or f"arc-{self.name}"

    def check(self, key: str, blueprint: str, posture: NetworkPosture, confidential: bool) -> None:
        self.check_common(key)
        arc = self.arc
        where = f"{key}.arc"
        if not posture.on_premises_silos:
            private = posture.storage_private
            raise ConfigError(
                f"{key}.kind",
                self.kind,
                f"blueprint {blueprint!r} does not take on-premises silos"
                + (
                    " (it keeps storage behind private endpoints, which a site reaches only over "
                    "a private link to Azure)"
                    if private
                    else ""
                ),
                "use blueprint 'hybrid', which mixes Azure silos with Arc-attached clusters",
            )
        if not self.egress_ip_ranges:
            raise ConfigError(
                f"{key}.egressIpRanges",
                [],
                f"blueprint {blueprint!r} admits to an on-premises silo's storage only its "
                "cluster's public addresses, and none are listed",
                "list the public IPv4 addresses the cluster reaches Azure from",
            )
        if arc.kubeconfig is None:
            raise ConfigError(
                f"{where}.kubeconfig",
                None,
                "an Arc silo needs the cluster's kubeconfig to create its namespace, instance "
                "types and data volume",
                f"pulumi config set --secret --path 'fl-sandbox:silos[{key.split('[')[1]}"
                '.arc.kubeconfig\' "$(cat kubeconfig)"',
            )
        if arc.mode == "existing":
            if not arc.cluster_id or not _CONNECTED_CLUSTER_ID.match(arc.cluster_id):
                raise ConfigError(
                    f"{where}.clusterId",
                    arc.cluster_id,
                    "mode 'existing' needs the connected cluster's ARM id",
                    "give /subscriptions/<id>/resourceGroups/<group>/providers/"
                    "Microsoft.Kubernetes/connectedClusters/<name> (`az connectedk8s show`)",
                )
            for field, key_name in (
                ("chart_version", "chartVersion"),
                ("private_key", "privateKey"),
            ):
                if getattr(arc, field) is not None:
                    raise ConfigError(
                        f"{where}.{key_name}",
                        "<set>",
                        "only used when fl-sandbox onboards the cluster (mode: onboard)",
                        "remove it, or use mode: onboard",
                    )
        else:
            if arc.cluster_id is not None:
                raise ConfigError(
                    f"{where}.clusterId",
                    arc.cluster_id,
                    "mode 'onboard' connects the cluster itself",
                    "remove clusterId, or use mode: existing for a connected cluster",
                )
            if not arc.chart_version or not _CHART_VERSION.match(arc.chart_version):
                raise ConfigError(
                    f"{where}.chartVersion",
                    arc.chart_version,
                    "onboarding installs the Arc agents chart, whose version must be pinned (a "
                    "lookup at deploy time brings drift)",
                    "set chartVersion to the azure-arc-k8sagents version to install (the one "
                    "`az connectedk8s connect` installs today; see docs/infrastructure.md)",
                )
            if arc.private_key is None:
                raise ConfigError(
                    f"{where}.privateKey",
                    None,
                    "onboarding needs the agents' persistent RSA-4096 key",
                    "python -m blueprints arc-key | pulumi config set --secret --path "
                    f"'fl-sandbox:silos[{key.split('[')[1]}.arc.privateKey'",
                )
            if arc.private_key.known:
                from components.arc_keys import ArcKeyError, check_private_key

                try:
                    check_private_key(arc.private_key.plain or "")
                except ArcKeyError as exc:
                    raise ConfigError(
                        f"{where}.privateKey", "<secret>", str(exc), exc.fix
                    ) from None
        self.check_jobs(
            key,
            8 if arc.gpu else 0,
            "the cluster (arc.gpu is false)" if not arc.gpu else "the cluster",
            "lower the GPU request, or set arc.gpu: true if the cluster has NVIDIA GPU nodes",
        )
        if self.data_volume is not None:
            self.data_volume.check(f"{key}.dataVolume")
        for i, text in enumerate(self.egress_ip_ranges):
            check_ip_range(f"{key}.egressIpRanges[{i}]", text)


KIND = SiloKind(
    "arc",
    ArcSiloSpec,
    ArcClusterSilo,
    "the site's own Kubernetes cluster, attached through Azure Arc",
    on_premises=True,
)
