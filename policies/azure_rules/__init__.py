"""Azure's own rules (what ARM refuses, what makes jobs fail at run time) as checks over the
same resource graph as the isolation invariants, each with its source in its module.

Numbers are stable (``docs/azure-rules.md``, generated from the docstrings, lists them with
their sources); rule 13 (every pipeline step runs with
``identity: managed``) concerns jobs, not resources, and is enforced by the pipeline's
data-flow check (``fl_jobs/aml/dataflow.py``) before submission.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.azure_rules import (
    agent_pool_drift,
    aks_for_azure_ml,
    aks_outbound,
    aks_region,
    aks_subnet_role,
    attach_roles,
    attach_subscription,
    bastion,
    compute_identity_reach,
    compute_location,
    compute_logs,
    container_scope,
    dns_link_fallback,
    dns_serialised,
    endpoint_nsg,
    extension_on_ready_cluster,
    hbi_aks_storage,
    hbi_at_creation,
    image_build,
    kubernetes_attach,
    outbound,
    peering_sync,
    premium_registry,
    role_conditions,
    storage_ip_rules,
    submitter_network,
    submitter_roles,
    trusted_access,
    vnet_serialised,
    workspace_endpoint,
    workspace_identity,
)
from policies.check_module import RegisteredCheck
from policies.graph import ResourceGraph
from policies.violation import Violation


@dataclass(frozen=True)
class AzureRule(RegisteredCheck):
    """One of Azure's rules: its number, stable id, title and check, plus its source and
    whether a Microsoft source states its effect outright (``SOURCE``, ``UNVERIFIED``)."""

    source: str
    unverified: bool


RULES: tuple[AzureRule, ...] = tuple(
    AzureRule.of(m)
    for m in (
        workspace_endpoint,
        premium_registry,
        hbi_at_creation,
        dns_serialised,
        container_scope,
        submitter_roles,
        submitter_network,
        trusted_access,
        image_build,
        outbound,
        workspace_identity,
        compute_logs,
        storage_ip_rules,
        compute_location,
        aks_subnet_role,
        aks_for_azure_ml,
        extension_on_ready_cluster,
        kubernetes_attach,
        attach_roles,
        hbi_aks_storage,
        aks_region,
        attach_subscription,
        agent_pool_drift,
        dns_link_fallback,
        compute_identity_reach,
        role_conditions,
        bastion,
        vnet_serialised,
        aks_outbound,
        endpoint_nsg,
        peering_sync,
    )
)


def check_rules(graph: ResourceGraph) -> dict[str, list[Violation]]:
    """Every rule's violations, keyed by rule id, in rule order."""
    return {rule.id: rule.check(graph) for rule in RULES}


__all__ = ["RULES", "AzureRule", "check_rules"]
