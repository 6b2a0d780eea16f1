"""A toy silo kind, ``lab``: a one-node Azure ML cluster in the silo's VNet, sized by a word.

It reuses the ``aml`` component (which reads ``compute_sku`` and ``max_nodes`` from the spec)
and is the whole of what a new kind writes; the tests register it with
``blueprints.silo_kinds.registered`` in place of the line in ``registry.SILO_KINDS``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from blueprints.silo_kinds import SiloKind, SiloSpecBase
from blueprints.spec_base import ConfigError
from components.silos.aml_cluster import AmlClusterSilo
from components.vocabulary.posture import NetworkPosture

SIZES = {"small": "Standard_DS3_v2", "large": "Standard_D4s_v5"}


class LabSiloSpec(SiloSpecBase):
    """A lab machine's silo: ``size`` picks the node, there is always one."""

    kind: Literal["lab"]
    size: Literal["small", "large"] = "small"
    address_space: str | None = Field(default=None, description="CIDR of the silo VNet")

    @property
    def compute_sku(self) -> str:
        return SIZES[self.size]

    @property
    def max_nodes(self) -> int:
        return 1

    def check(self, key: str, blueprint: str, posture: NetworkPosture, confidential: bool) -> None:
        self.check_common(key)
        if confidential:
            raise ConfigError(
                f"{key}.kind", self.kind, "a lab machine is not confidential", "use kind: aks"
            )


KIND = SiloKind("lab", LabSiloSpec, AmlClusterSilo, "one lab machine as an Azure ML cluster")
