"""Rule 3: ``hbi_workspace`` can only be set when the workspace is created.

Source: Azure ML REST reference for workspaces (``hbiWorkspace``: "can only be set at
creation") and the archived Azure-Samples FL accelerator, which fixes it per variant. An
in-place change is refused by ARM halfway through an update, so the flag must be stated
explicitly, and the workspace must declare it replace-on-change: a change then shows in
``pulumi preview`` as a replacement a reviewer can stop.

The replacement must not reuse the name: Azure ML docs, "Workspace soft deletion"
(https://learn.microsoft.com/azure/machine-learning/concept-soft-delete): "You can't reuse the
name of a workspace that has been soft deleted until the retention period has passed or the
workspace is permanently deleted" (ARM: "Soft-deleted workspace exists. Please purge or
recover it.", Azure/ResourceModules#3596). So the name follows the flag (``-hbi-`` in an HBI
workspace's name, ``components.vocabulary.naming.workspace``) and Pulumi creates the new
workspace before deleting the old one. The old one's run history is soft-deleted with it; to
reuse the old name sooner, purge it: ``az ml workspace delete --permanently-delete``.
"""

from __future__ import annotations

from components.vocabulary.naming import HBI_MARK
from policies.graph import WORKSPACE, ResourceGraph
from policies.violation import Violation

NUMBER = 3
ID = "azure-3-hbi-at-creation"
TITLE = "hbiWorkspace stated explicitly and replaced, never updated in place"
SOURCE = "Azure ML REST API: hbiWorkspace is settable only at workspace creation"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for workspace in graph.of_type(WORKSPACE):
        value = workspace.get("hbiWorkspace")
        if not isinstance(value, bool):
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    f"leaves hbiWorkspace unset ({value!r}); Azure fixes it at creation, so "
                    "it must be a deliberate choice.",
                    "Set hbiWorkspace explicitly (true for a private, high business impact "
                    "workspace).",
                )
            )
        if isinstance(value, bool) and (HBI_MARK in workspace.arm_name) != value:
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    f"keeps the name {workspace.arm_name!r} whatever hbiWorkspace is; a change "
                    "replaces it under the same name, which soft delete blocks for 14 days "
                    "('Soft-deleted workspace exists').",
                    f"Name it with '{HBI_MARK}' exactly when hbiWorkspace is true "
                    "(components.vocabulary.naming.workspace), or purge the old one first with "
                    "az ml workspace delete --permanently-delete.",
                )
            )
        options = workspace.options
        if not options:
            continue  # the source records no resource options (CrossGuard)
        if "hbiWorkspace" not in options.get("replaceOnChanges", []):
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    "does not declare replaceOnChanges=['hbiWorkspace'], so changing the flag "
                    "would be an in-place update ARM refuses.",
                    "Declare the workspace with replace_on_changes=['hbiWorkspace'].",
                )
            )
        if options.get("deleteBeforeReplace"):
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    "is deleted before its replacement is created: the sandbox has no "
                    "workspace in between, and a same-name replacement hits soft delete.",
                    "Drop delete_before_replace; the name follows hbiWorkspace.",
                )
            )
    return found
