"""Rule 3: ``hbi_workspace`` can only be set when the workspace is created.

Source: Azure ML REST reference for workspaces (``hbiWorkspace``: "can only be set at
creation") and the archived Azure-Samples FL accelerator, which fixes it per variant. An
in-place change is refused by ARM halfway through an update, so the flag must be stated
explicitly, and the workspace must declare it replace-on-change: a change then shows in
``pulumi preview`` as a replacement (delete first, same name) a reviewer can stop.
"""

from __future__ import annotations

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
        options = workspace.options
        if not options:
            continue  # the source records no resource options (CrossGuard)
        if "hbiWorkspace" not in options.get("replaceOnChanges", []) or not options.get(
            "deleteBeforeReplace"
        ):
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    "does not declare replaceOnChanges=['hbiWorkspace'] with "
                    "deleteBeforeReplace, so changing the flag would be an in-place update "
                    "ARM refuses.",
                    "Declare the workspace with replace_on_changes=['hbiWorkspace'] and "
                    "delete_before_replace=True.",
                )
            )
    return found
