"""Rule 5: a role assignment scoped to a blob container waits for the container.

Source: the accelerator's notes and ARM's scope validation ("The scope ... is invalid" when
it does not exist yet); *unverified* whether ARM accepts a container scope created later in
the same deployment, and cheap to prevent: use the container's own id as the scope (an
input dependency) or depend on it.
"""

from __future__ import annotations

from policies.graph import ROLE_ASSIGNMENT, ResourceGraph
from policies.violation import Violation

NUMBER = 5
ID = "azure-5-container-scope-order"
TITLE = "Container-scoped role assignments are created after their container"
SOURCE = "ARM scope validation; unverified, prevented by ordering"
UNVERIFIED = True


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for assignment in graph.of_type(ROLE_ASSIGNMENT):
        for target in graph.scope_targets(assignment.get("scope")):
            if target.level != "container" or target.container is None:
                continue
            container = graph.container(target.account, target.container)
            if container is None:
                found.append(
                    Violation.at(
                        ID,
                        assignment,
                        f"is scoped to container '{target.container}' of "
                        f"'{target.account.arm_name}', which this stack does not declare.",
                        "Declare the container in the stack and scope the assignment to its id.",
                    )
                )
            elif not graph.waits_for(assignment, container):
                found.append(
                    Violation.at(
                        ID,
                        assignment,
                        f"is scoped to container '{target.container}' but is not created after "
                        f"it; ARM may see a scope that does not exist yet.",
                        "Use the container resource's id as the scope (or depend on it).",
                    )
                )
    return found
