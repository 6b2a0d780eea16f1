"""The Azure ML service as an actor: what the workspace's own identities must reach.

Azure ML works on the workspace's resources with the workspace's managed identity: the
primary user-assigned identity when one is set, otherwise the system-assigned one
(https://learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication).
With an HBI workspace and Kubernetes computes the system-assigned identity also needs Storage
Blob Data Contributor and Storage Account Contributor on the workspace storage
(https://learn.microsoft.com/azure/machine-learning/how-to-secure-kubernetes-inferencing-environment).

The service's traffic comes from Azure's network, not a VNet, so it reaches a resource whose
public endpoint denies by default only through an exception:

- storage: a resource-instance rule (``networkRuleSet.resourceAccessRules``) naming this
  workspace, or, for the system-assigned identity, ``bypass: AzureServices`` ("trusted access
  based on a managed identity"; Azure ML is on that list)
  (https://learn.microsoft.com/azure/storage/common/storage-network-security, "Grant access
  from Azure resource instances", "Trusted access for resources registered in your
  subscription"). With public network access ``Disabled`` neither applies (azure-rules.md
  rule 8); Azure ML documents private-endpoint-only storage as supported for a VNet workspace,
  through a path this model cannot see, so that movement is reported *assumed*;
- key vault: ``networkAcls.bypass: AzureServices`` (trusted services), which holds even with
  public network access ``Disabled``: *"If set to 'disabled' all traffic except private
  endpoint traffic and that that originates from trusted services will be blocked"* (Key
  Vault ``publicNetworkAccess``,
  https://learn.microsoft.com/dotnet/api/azure.provisioning.keyvault.keyvaultproperties.publicnetworkaccess),
  and Azure ML requires it for a workspace key vault behind a firewall ("Allow trusted
  Microsoft services to bypass this firewall",
  https://learn.microsoft.com/azure/machine-learning/how-to-secure-workspace-vnet). Without
  it the movement is broken, whatever the public access;
- registry: ``networkRuleBypassOptions: AzureServices`` (trusted services, which also
  works with public network access disabled), for Machine Learning only as the
  system-assigned identity
  (https://learn.microsoft.com/azure/container-registry/allow-access-trusted-services):
  reached so by the user-assigned identity, the movement is reported *assumed*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from components.vocabulary import builtin_roles as names
from components.vocabulary.arm_types import CONTAINER_REGISTRY, KEY_VAULT, STORAGE_ACCOUNT
from policies.graph import COMPUTE, Node, ResourceGraph
from policies.movement import (
    ACR_PULL,
    BLOB_WRITE,
    ROLE_WORDS,
    Actor,
    Movement,
    checked_movement,
    resource_target,
    role_guids,
)
from policies.network_paths import Origin, Path

STEP = "Azure ML service"
KV_READ = role_guids(names.KEY_VAULT_ADMINISTRATOR, "Key Vault Secrets User")
ACCOUNT_CONTROL = role_guids(names.STORAGE_ACCOUNT_CONTRIBUTOR, names.CONTRIBUTOR, names.OWNER)
# The job path names a movement's role from ROLE_WORDS; these two are the service's own.
ROLE_WORDS.setdefault(KV_READ, "Key Vault Administrator (or Key Vault Secrets User)")
ROLE_WORDS.setdefault(ACCOUNT_CONTROL, "Storage Account Contributor (or Contributor/Owner)")

SERVICE_ORIGIN = Origin("azure", "Azure ML's service (Azure's network)")


def _instance_rule(graph: ResourceGraph, target: Node, workspace: Node) -> bool:
    rules = target.get("networkRuleSet", "resourceAccessRules") or []
    return any(
        isinstance(r, Mapping) and graph.find(r.get("resourceId")) is workspace for r in rules
    )


def service_path(graph: ResourceGraph, target: Node, workspace: Node, system: bool) -> Path:
    """How Azure ML's service reaches ``target``; ``system``: as the system-assigned id."""
    if target.read and target.get("publicNetworkAccess") is None:
        return Path(True, "not managed by fl-sandbox: its network rules are the owner's")
    if target.type == KEY_VAULT:
        props = target.get("properties") or {}
        access = str(props.get("publicNetworkAccess") or "Enabled")
        acls = props.get("networkAcls") or {}
        default, bypass = str(acls.get("defaultAction") or "Allow"), str(acls.get("bypass") or "")
    else:
        access = str(target.get("publicNetworkAccess") or "Enabled")
        rules = target.get("networkRuleSet") or {}
        default = str(rules.get("defaultAction") or "Allow")
        bypass = str(
            target.get("networkRuleBypassOptions")
            if target.type == CONTAINER_REGISTRY
            else rules.get("bypass") or ""
        )
    trusted = "azureservices" in bypass.lower()
    if target.type == CONTAINER_REGISTRY:
        if access.lower() == "enabled" and default.lower() == "allow":
            return Path(True, "public endpoint (open; by role)")
        if trusted:
            return Path(True, "trusted services (networkRuleBypassOptions AzureServices)")
        return Path(
            False,
            "none",
            f"{target.label} is closed to the public and does not admit trusted services",
            f"Set networkRuleBypassOptions=AzureServices on {target.arm_name}",
            blocker=target,
        )
    if target.type == KEY_VAULT and not (
        access.lower() == "enabled" and default.lower() == "allow"
    ):
        if trusted:
            return Path(True, "trusted services (bypass AzureServices)")
        return Path(
            False,
            "none",
            f"{target.label} is closed to the public and does not admit trusted services, "
            "which Azure ML's service needs for the workspace's key vault",
            f"Set networkAcls.bypass=AzureServices on {target.arm_name}",
            blocker=target,
        )
    if access.lower() == "disabled":
        return Path(True, "private endpoints only (no service exception applies)")
    if default.lower() == "allow":
        return Path(True, "public endpoint (open; by role)")
    if target.type == STORAGE_ACCOUNT:
        if _instance_rule(graph, target, workspace):
            return Path(True, f"resource-instance rule for workspace '{workspace.arm_name}'")
        if trusted and system:
            return Path(True, "trusted access for the system-assigned identity (AzureServices)")
        return Path(
            False,
            "none",
            f"{target.label} denies by default and no resource-instance rule admits workspace "
            f"'{workspace.arm_name}'",
            f"Add networkRuleSet.resourceAccessRules [{{resourceId: {workspace.arm_name}'s id, "
            f"tenantId}}] to {target.arm_name}",
            blocker=target,
        )
    if trusted:
        return Path(True, "trusted services (bypass AzureServices)")
    return Path(
        False,
        "none",
        f"{target.label} denies by default and does not admit trusted services",
        f"Set networkAcls.bypass=AzureServices on {target.arm_name}",
        blocker=target,
    )


def _with_service_path(
    graph: ResourceGraph, movement: Movement, target: Node | None, ws: Node, system: bool
) -> Movement:
    """``movement`` (checked for its role) with the service's own network path."""
    if target is None:
        return movement
    path = service_path(graph, target, ws, system)
    problem = fix = ""
    if not movement.role_ok:
        problem = (
            f"{movement.actor} holds no role allowing this on {movement.target}; it needs "
            f"{movement.role}."
        )
        fix = f"Grant {movement.actor} {movement.role.split(' (')[0]} on {movement.target}"
    if not path.ok:
        problem = (problem + " " if problem else "") + path.problem + "."
        fix = (fix + "; " if fix else "") + path.fix
    assumed = ""
    if path.ok and target.type == CONTAINER_REGISTRY and "trusted" in path.route and not system:
        assumed = (
            f"{target.arm_name} admits Azure ML as a trusted service only as the workspace's "
            "system-assigned identity (ACR trusted services: no user-assigned identity for "
            "Machine Learning), which holds no role on it; the round itself builds on the "
            "image-build compute and pulls through the private endpoint"
        )
    if path.ok and path.route.startswith("private endpoints only"):
        assumed = (
            f"{target.arm_name} refuses public network access, so no resource-instance rule "
            "or trusted-service exception applies; Azure ML's service reaches it only through "
            "its own platform path, which is not checked offline (fl-sandbox doctor shows it)"
        )
    return replace(
        movement,
        route=path.route,
        network_ok=path.ok,
        problem=problem,
        fix=fix,
        resource=(movement.resource or path.blocker or target) if problem else None,
        assumed=assumed,
    )


def _kv_uses_rbac(vault: Node | None) -> bool:
    return vault is not None and vault.get("properties", "enableRbacAuthorization") is True


def service_movements(
    graph: ResourceGraph,
    workspace: Node | None,
    ws_storage: Node | None,
    vault: Node | None,
    registry: Node | None,
) -> list[Movement]:
    """What Azure ML's service does on the workspace's resources, as its identities."""
    if workspace is None:
        return []
    primary = graph.find(workspace.get("primaryUserAssignedIdentity"))
    system_id = workspace.get("identity", "principalId")
    system = Actor(
        f"Azure ML service (workspace '{workspace.arm_name}', system-assigned identity)",
        system_id if isinstance(system_id, str) else None,
        SERVICE_ORIGIN,
        workspace,
    )
    actor = system
    if primary is not None:
        pid = primary.get("principalId")
        actor = Actor(
            f"Azure ML service (workspace '{workspace.arm_name}', identity '{primary.arm_name}')",
            pid if isinstance(pid, str) else None,
            SERVICE_ORIGIN,
            workspace,
        )
    is_system = primary is None
    wanted = [
        (
            "work the workspace storage (datastores, snapshots)",
            actor,
            ws_storage,
            "blob",
            "workspace storage",
            BLOB_WRITE,
            is_system,
        ),
        (
            "read the workspace's secrets",
            actor,
            vault,
            "vault",
            "key vault",
            KV_READ if _kv_uses_rbac(vault) else None,
            is_system,
        ),
        (
            "read the workspace's registry",
            actor,
            registry,
            "registry",
            "registry",
            ACR_PULL,
            is_system,
        ),
    ]
    hbi = workspace.get("hbiWorkspace") is True
    kubernetes = any(
        c.get("properties", "computeType") == "Kubernetes"
        and str(c.get("workspaceName") or workspace.arm_name) == workspace.arm_name
        for c in graph.of_type(COMPUTE)
    )
    if hbi and kubernetes:
        wanted += [
            (
                "HBI + Kubernetes: write the workspace storage",
                system,
                ws_storage,
                "blob",
                "workspace storage",
                BLOB_WRITE,
                True,
            ),
            (
                "HBI + Kubernetes: manage the workspace storage",
                system,
                ws_storage,
                "blob",
                "workspace storage",
                ACCOUNT_CONTROL,
                True,
            ),
        ]
    found = []
    for what, who, node, group, label, allowed, as_system in wanted:
        checked = checked_movement(
            graph, STEP, what, who, resource_target(node, group, label), allowed
        )
        found.append(_with_service_path(graph, checked, node, workspace, as_system))
    return found
