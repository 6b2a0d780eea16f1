"""Silo kind ``aml`` (the default): an Azure ML compute cluster in the silo's region and VNet."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from blueprints.silo_kinds.base import DEFAULT_SKU, SiloKind, SiloSpecBase
from blueprints.spec_base import ConfigError, check_nodes, check_sku
from components.silos.aml_cluster import AmlClusterSilo
from components.vocabulary.posture import NetworkPosture
from components.vocabulary.vm_sizes import confidential_families


class AmlSiloSpec(SiloSpecBase):
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


KIND = SiloKind(
    "aml", AmlSiloSpec, AmlClusterSilo, "an Azure ML compute cluster in the silo's VNet"
)
