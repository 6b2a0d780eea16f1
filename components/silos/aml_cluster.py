"""Silo kind ``aml``: an Azure ML compute cluster in the silo's region and subnet.

The cluster scales to 0, runs as the silo's identity, has no public node IPs where the
posture says so, and waits for the workspace's private endpoint then (Azure's rule 1).
"""

from __future__ import annotations

from typing import Any

from pulumi_azure_native import machinelearningservices

from components.aml import aml_cluster
from components.silos.base import SiloComponent
from components.vocabulary import naming
from components.vocabulary.vm_sizes import vm_size


class AmlClusterSilo(SiloComponent):
    """A silo whose compute is an Azure ML compute cluster."""

    def _compute(self) -> machinelearningservices.Compute:
        args, spec = self.args, self.args.spec
        return aml_cluster(
            f"{self.name}-compute",
            compute_name=naming.compute(self.silo),
            workspace_location=args.workspace_location,
            location=spec.region,
            vm_size=spec.compute_sku,
            max_nodes=spec.max_nodes,
            identity_id=self.identity.id,
            workspace=args.workspace,
            resource_group_name=args.workspace_resource_group,
            subnet_id=self.network.compute_subnet.id if self.network else None,
            node_public_ip=args.posture.node_public_ip,
            tags=self.tags,
            parent=self,
            depends_on=args.compute_prerequisites,
        )

    def manifest_fields(self) -> dict[str, Any]:
        """The cluster's GPUs per node: jobs on a GPU size get the CUDA environment."""
        return {**super().manifest_fields(), "gpus": vm_size(self.args.spec.compute_sku).gpus}
