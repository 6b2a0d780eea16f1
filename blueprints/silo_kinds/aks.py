"""Silo kind ``aks``: an AKS cluster in the silo's VNet, optionally on confidential nodes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from blueprints.silo_kinds.base import SiloKind
from blueprints.silo_kinds.kubernetes import KubernetesSiloSpec
from blueprints.spec_base import ConfigError, SpecModel, check_sku
from components.silos.aks_cluster import AksClusterSilo
from components.vocabulary.posture import NetworkPosture
from components.vocabulary.vm_sizes import confidential_families


class AksPool(SpecModel):
    """The AKS user pool FL jobs run on."""

    vm_size: str = "Standard_D4s_v5"
    node_count: int = Field(default=1, ge=1, le=100)
    max_count: int | None = Field(default=None, ge=1, le=100)


class AksSiloSpec(KubernetesSiloSpec):
    """A silo on an AKS cluster in its own VNet, optionally on confidential nodes."""

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
            "lower the GPU request, or give the pool a GPU size (see "
            "components/vocabulary/vm_sizes.py)",
        )


KIND = SiloKind(
    "aks",
    AksSiloSpec,
    AksClusterSilo,
    "an AKS cluster in the silo's VNet, optionally on confidential nodes",
    managed_cluster=True,
)
