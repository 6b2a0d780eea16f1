"""The identity a step runs as: ``managed`` always (Azure's rule 13), with the compute's
client id on an Azure ML cluster and none on an attached Kubernetes compute.

Microsoft Learn ("Access data in a job", managed identity on Kubernetes compute): "In the case
of kubernetes cluster compute, the ManagedIdentityCredential object should be provided without
any client_id"; the cluster's extension gets the tokens itself. The data-flow check
(``fl_jobs.aml.dataflow``) refuses a job that names one there.
"""

from __future__ import annotations

from typing import Any


def step_identity(compute_type: str, client_id: str | None) -> Any:
    """An azure-ai-ml ``ManagedIdentityConfiguration`` for a step on that compute."""
    from azure.ai.ml.entities import ManagedIdentityConfiguration

    if compute_type == "kubernetes":
        return ManagedIdentityConfiguration()
    return ManagedIdentityConfiguration(client_id=client_id)
