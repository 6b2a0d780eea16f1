"""What the Kubernetes silo kinds (``arc``, ``aks``) share: the jobs' namespace and their
instance types."""

from __future__ import annotations

import re

from pydantic import Field

from blueprints.silo_kinds.base import SiloSpecBase
from blueprints.spec_base import ConfigError, SpecModel

DEFAULT_NAMESPACE = "fl-jobs"
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


class InstanceTypeSpec(SpecModel):
    """A Kubernetes instance type: the resources (and node selector) one job pod gets."""

    name: str
    cpu: str = "1"
    memory: str = "4Gi"
    gpu: int = Field(default=0, ge=0, le=8)
    node_selector: dict[str, str] = Field(default_factory=dict)

    def check(self, key: str) -> None:
        if not DNS_LABEL.match(self.name):
            raise ConfigError(
                f"{key}.name",
                self.name,
                "not a Kubernetes name",
                "use lowercase letters, digits, '-'",
            )
        for field, value in (("cpu", self.cpu), ("memory", self.memory)):
            if not QUANTITY.match(value):
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


class KubernetesSiloSpec(SiloSpecBase):
    """The settings of a silo whose jobs run on a Kubernetes cluster."""

    namespace: str = DEFAULT_NAMESPACE
    instance_types: list[InstanceTypeSpec] = Field(default_factory=_default_instance_types)
    install_prom_op: bool = Field(
        default=True,
        description="the Azure ML extension's installPromOp (its documented default, true); "
        "false reuses a Prometheus operator the cluster already runs",
    )

    def check_jobs(self, key: str, gpus: int, nodes: str, gpu_fix: str) -> None:
        """The namespace is a Kubernetes name; instance types fit ``gpus`` per node."""
        if not DNS_LABEL.match(self.namespace):
            raise ConfigError(
                f"{key}.namespace", self.namespace, "not a Kubernetes name", "e.g. fl-jobs"
            )
        _check_instance_types(f"{key}.instanceTypes", self.instance_types, gpus, nodes, gpu_fix)
