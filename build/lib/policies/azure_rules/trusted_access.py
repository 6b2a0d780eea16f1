"""Rule 8: trusted-service access needs selected networks, not public access Disabled.

Source: Azure Storage docs, "Grant access to trusted Azure services" and "resource instance
rules": exceptions apply only when public network access is Enabled with a Deny default;
with public access Disabled, ``bypass: AzureServices`` and resource-instance rules have no
effect. Two checks: a Disabled account must not carry them (they only mislead), and a
workspace's default storage, which the Azure ML service itself reaches, must admit the
workspace (open, or a resource-instance rule for it).
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.graph import ResourceGraph, normalize_id
from policies.violation import Violation

NUMBER = 8
ID = "azure-8-trusted-access"
TITLE = "Trusted access only where it works: selected networks with a workspace instance rule"
SOURCE = "Azure Storage docs: trusted Azure services and resource instance rules"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for account in graph.storage_accounts:
        if str(account.get("publicNetworkAccess") or "") != "Disabled":
            continue
        rules = account.get("networkRuleSet") or {}
        bypass = str(rules.get("bypass") or "None")
        if bypass != "None" or rules.get("resourceAccessRules"):
            found.append(
                Violation.at(
                    ID,
                    account,
                    f"has public network access Disabled but bypass {bypass!r} / "
                    "resource-instance rules, which then have no effect.",
                    "Set networkRuleSet.bypass='None' and drop resourceAccessRules, or use "
                    "selected networks (public access Enabled, default action Deny).",
                )
            )
    for workspace in graph.workspaces():
        storage = graph.find(workspace.get("storageAccount"))
        if storage is None:
            continue
        access = str(storage.get("publicNetworkAccess") or "Enabled")
        rules = storage.get("networkRuleSet") or {}
        default = str(rules.get("defaultAction") or "Allow")
        instances = {
            normalize_id(str(r.get("resourceId")))
            for r in rules.get("resourceAccessRules") or []
            if isinstance(r, Mapping) and r.get("resourceId")
        }
        admitted = access == "Enabled" and (
            default == "Allow" or bool(instances & set(workspace.ids))
        )
        if not admitted:
            found.append(
                Violation.at(
                    ID,
                    storage,
                    f"is workspace '{workspace.arm_name}''s default storage but does not admit "
                    f"the workspace (publicNetworkAccess {access!r}, default action "
                    f"{default!r}, no resource-instance rule for it).",
                    "Use selected networks: publicNetworkAccess 'Enabled', defaultAction "
                    "'Deny', and a resourceAccessRule with the workspace's id.",
                )
            )
    return found
