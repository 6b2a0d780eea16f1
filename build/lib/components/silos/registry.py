"""Silo kind -> its component: the one place the builder looks a kind up."""

from __future__ import annotations

from components.silos.aks_cluster import AksClusterSilo
from components.silos.aml_cluster import AmlClusterSilo
from components.silos.arc_cluster import ArcClusterSilo
from components.silos.base import SiloComponent

SILO_KINDS: dict[str, type[SiloComponent]] = {
    cls.kind: cls for cls in (AmlClusterSilo, ArcClusterSilo, AksClusterSilo)
}
