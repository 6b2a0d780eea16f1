"""The silo kinds a stack file can declare, each its own model (``kind`` tells them apart).

- ``aml`` (the default): an Azure ML compute cluster in the silo's region and VNet;
- ``arc``: a Kubernetes cluster on the silo's own premises, attached through Azure Arc, either
  onboarded by fl-sandbox (``mode: onboard``) or already connected (``mode: existing``);
- ``aks``: an AKS cluster in the silo's VNet, optionally on confidential nodes.

Every kind may bring an existing storage account instead of a new one (``storage``). Each model
checks what only it knows (``check``); what all silos share (names, regions, address ranges)
is checked by ``blueprints.spec``. Adding a kind means a model here and a component module
under ``components/silos/``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from blueprints.spec_base import (
    ConfigError,
    Secret,
    SpecModel,
    check_ip_range,
    check_nodes,
    check_region,
    check_sku,
    secret_value,
)
from components.posture import NetworkPosture
from components.vm_sizes import confidential_families

DEFAULT_SKU = "Standard_DS3_v2"
DEFAULT_NAMESPACE = "fl-jobs"
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_STORAGE_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/"
    r"Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}$",
    re.IGNORECASE,
)
_CONNECTED_CLUSTER_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/"
    r"Microsoft\.Kubernetes/connectedClusters/[-\w.]{1,63}$",
    re.IGNORECASE,
)
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_CHART_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class ExistingStorage(SpecModel):
    """A storage account the silo already has (any resource group or subscription)."""

    account_id: str = Field(description="the account's ARM id")
    container: str = Field(default="data", description="the blob container holding the data")

    @property
    def account_name(self) -> str:
        return self.account_id.rstrip("/").rsplit("/", 1)[-1]

    def check(self, key: str) -> None:
        if not _STORAGE_ID.match(self.account_id):
            raise ConfigError(
                f"{key}.accountId",
                self.account_id,
                "not a storage account id",
                "give the full id, /subscriptions/<id>/resourceGroups/<group>/providers/"
                "Microsoft.Storage/storageAccounts/<name> (`az storage account show -n <name> "
                "--query id -o tsv`)",
            )
        if not re.match(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", self.container):
            raise ConfigError(
                f"{key}.container",
                self.container,
                "not a blob container name",
                "use 3-63 lowercase letters, digits and single '-'",
            )


class InstanceTypeSpec(SpecModel):
    """A Kubernetes instance type: the resources (and node selector) one job pod gets."""

    name: str
    cpu: str = "1"
    memory: str = "4Gi"
    gpu: int = Field(default=0, ge=0, le=8)
    node_selector: dict[str, str] = Field(default_factory=dict)

    def check(self, key: str) -> None:
        if not _DNS_LABEL.match(self.name):
            raise ConfigError(
                f"{key}.name",
                self.name,
                "not a Kubernetes name",
                "use lowercase letters, digits, '-'",
            )
        for field, value in (("cpu", self.cpu), ("memory", self.memory)):
            if not _QUANTITY.match(value):
                raise ConfigError(
                    f"{key}.{field}",
                    value,
                    "not a Kubernetes quantity",
                    "write it like 500m, 2, 8Gi or 512Mi",
                )


def _check_instance_types(
    key: str, types: list[InstanceTypeSpec], gpus: int, pool: str, gpu_fix: str
) -> None:
    if not types:
        raise ConfigError(
            key, [], "no instance type", "list at least one (its first is the default)"
        )
    seen: set[str] = set()
    for i, itype in enumerate(types):
        itype.check(f"{key}[{i}]")
        if itype.name in seen:
            raise ConfigError(f"{key}[{i}].name", itype.name, "listed twice", "name each once")
        seen.add(itype.name)
        if itype.gpu > gpus:
            raise ConfigError(
                f"{key}[{i}].gpu",
                itype.gpu,
                f"asks for {itype.gpu} GPU(s) per pod but {pool} has {gpus} per node, so its "
                "jobs would never be scheduled",
                gpu_fix,
            )


def _default_instance_types() -> list[InstanceTypeSpec]:
    return [InstanceTypeSpec(name="cpu-small", cpu="1", memory="4Gi")]


class _SiloBase(SpecModel):
    """What every kind has, and the traits the builder, the spec checks and the uploaders ask
    a silo about, so that no code outside a kind tests its name."""

    #: Runs jobs on a Kubernetes cluster attached through the Azure ML extension.
    kubernetes: ClassVar[bool] = False
    #: The cluster is an AKS cluster this stack creates in the silo's VNet.
    managed_cluster: ClassVar[bool] = False
    #: The cluster is the site's own, outside Azure (Azure Arc); its storage admits only
    #: listed addresses.
    on_premises: ClassVar[bool] = False

    name: str
    region: str
    storage: ExistingStorage | None = Field(
        default=None, description="an existing storage account instead of a new one"
    )

    @property
    def network_range(self) -> str | None:
        """The silo VNet's CIDR, for kinds that run in one (None otherwise, or not assigned)."""
        return getattr(self, "address_space", None)

    @property
    def egress_ranges(self) -> list[str]:
        """Public addresses the silo's compute reaches Azure from (on-premises kinds)."""
        return []

    def check_common(self, key: str) -> None:
        check_region(f"{key}.region", self.region)
        if self.storage is not None:
            self.storage.check(f"{key}.storage")


class AmlSiloSpec(_SiloBase):
    """A silo whose compute is an Azure ML compute cluster (the default kind)."""

    kind: Literal["aml"] = "aml"
    compute_sku: str = DEFAULT_SKU
    max_nodes: int = 2
    address_space: str | None = Field(
        default=None, description="CIDR of the silo VNet; assigned automatically when unset"
    )

    def check(self, key: str, blueprint: str, posture: NetworkPosture, confidential: bool) -> None:
        self.check_common(key)
        size = check_sku(f"{key}.computeSku", self.compute_sku)
        check_nodes(f"{key}.maxNodes", self.max_nodes)
        if confidential and not size.confidential:
            raise ConfigError(
                f"{key}.kind",
                self.kind,
                f"blueprint {blueprint!r} runs every silo on confidential nodes, and Azure ML "
                "compute clusters do not offer them here",
                f"use kind: aks with a confidential pool ({confidential_families()})",
            )


class _KubernetesSiloBase(_SiloBase):
    """What the Kubernetes kinds share: the jobs' namespace and their instance types."""

    kubernetes: ClassVar[bool] = True

    namespace: str = DEFAULT_NAMESPACE
    instance_types: list[InstanceTypeSpec] = Field(default_factory=_default_instance_types)
    install_prom_op: bool = Field(
        default=True,
        description="the Azure ML extension's installPromOp (its documented default, true); "
        "false reuses a Prometheus operator the cluster already runs",
    )

    def check_jobs(self, key: str, gpus: int, nodes: str, gpu_fix: str) -> None:
        """The namespace is a Kubernetes name; instance types fit ``gpus`` per node."""
        if not _DNS_LABEL.match(self.namespace):
            raise ConfigError(
                f"{key}.namespace", self.namespace, "not a Kubernetes name", "e.g. fl-jobs"
            )
        _check_instance_types(f"{key}.instanceTypes", self.instance_types, gpus, nodes, gpu_fix)


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
        if not _QUANTITY.match(self.capacity):
            raise ConfigError(f"{key}.capacity", self.capacity, "not a quantity", "e.g. 100Gi")


class ArcSiloSpec(_KubernetesSiloBase):
    """A silo on the site's own Kubernetes cluster, attached through Azure Arc."""

    on_premises: ClassVar[bool] = True

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


class AksPool(SpecModel):
    """The AKS user pool FL jobs run on."""

    vm_size: str = "Standard_D4s_v5"
    node_count: int = Field(default=1, ge=1, le=100)
    max_count: int | None = Field(default=None, ge=1, le=100)


class AksSiloSpec(_KubernetesSiloBase):
    """A silo on an AKS cluster in its own VNet, optionally on confidential nodes."""

    managed_cluster: ClassVar[bool] = True

    kind: Literal["aks"]
    address_space: str | None = Field(
        default=None, description="CIDR of the silo VNet; assigned automatically when unset"
    )
    system_vm_size: str = "Standard_D2s_v5"
    pool: AksPool = Field(default_factory=AksPool)
    kubernetes_version: str | None = None

    def check(self, key: str, blueprint: str, posture: NetworkPosture, confidential: bool) -> None:
        self.check_common(key)
        if not posture.networked:
            raise ConfigError(
                f"{key}.kind",
                self.kind,
                f"an AKS silo runs in the silo's VNet, and blueprint {blueprint!r} has none",
                "use a networked blueprint (eyes-on, eyes-off, private, confidential)",
            )
        check_sku(f"{key}.systemVmSize", self.system_vm_size)
        size = check_sku(f"{key}.pool.vmSize", self.pool.vm_size)
        if self.pool.max_count is not None and self.pool.max_count < self.pool.node_count:
            raise ConfigError(
                f"{key}.pool.maxCount", self.pool.max_count, "below nodeCount", "raise it"
            )
        if confidential and not size.confidential:
            raise ConfigError(
                f"{key}.pool.vmSize",
                self.pool.vm_size,
                f"blueprint {blueprint!r} runs silos on confidential nodes",
                f"use a confidential size ({confidential_families()}), e.g. Standard_DC4as_v5",
            )
        self.check_jobs(
            key,
            size.gpus,
            f"pool {self.pool.vm_size}",
            "lower the GPU request, or give the pool a GPU size (see components/vm_sizes.py)",
        )


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "aml"))
    return str(getattr(value, "kind", "aml"))


SiloSpec = Annotated[
    Annotated[AmlSiloSpec, Tag("aml")]
    | Annotated[ArcSiloSpec, Tag("arc")]
    | Annotated[AksSiloSpec, Tag("aks")],
    Discriminator(_kind_of),
]
"""One silo, of any kind (``kind`` picks the model; ``aml`` when unset)."""

SILO_MODELS: dict[str, type[_SiloBase]] = {
    "aml": AmlSiloSpec,
    "arc": ArcSiloSpec,
    "aks": AksSiloSpec,
}
KubernetesSiloSpec = ArcSiloSpec | AksSiloSpec
