"""The silo kinds a stack file can declare, one module each (``kind`` tells them apart).

- ``aml`` (the default): an Azure ML compute cluster in the silo's region and VNet;
- ``arc``: a Kubernetes cluster on the silo's own premises, attached through Azure Arc;
- ``aks``: an AKS cluster in the silo's VNet, optionally on confidential nodes.

A kind's module holds its spec model (which checks what only it knows; what all silos share,
names, regions and address ranges, is checked by ``blueprints.spec``) and its ``SiloKind``:
the model, its component (``components/silos/``) and the answers the builder and the checks
ask of it. Adding a kind is that module plus one line in ``registry.SILO_KINDS``.
"""

from blueprints.silo_kinds.base import DEFAULT_SKU, ExistingStorage, SiloKind, SiloSpecBase
from blueprints.silo_kinds.registry import (
    DEFAULT_KIND,
    SILO_KINDS,
    SILO_MODELS,
    SiloSpec,
    holds_silos,
    kind_names,
    registered,
)

__all__ = [
    "DEFAULT_KIND",
    "DEFAULT_SKU",
    "SILO_KINDS",
    "SILO_MODELS",
    "ExistingStorage",
    "SiloKind",
    "SiloSpec",
    "SiloSpecBase",
    "holds_silos",
    "kind_names",
    "registered",
]
