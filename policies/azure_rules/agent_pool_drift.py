"""Rule 27: a managed cluster with separate AgentPool resources ignores changes to its
inline agent pool profiles.

Source: pulumi-azure-native issue 2719 (ARM: "A new agent pool was introduced. Adding agent
pools to an existing cluster is not allowed through managed cluster operations", with
separate AgentPools) and issue 1686 (``agentPoolProfiles`` drift): without
``ignore_changes=["agentPoolProfiles"]`` a later ``pulumi up`` or refresh fails or drifts. The
first ``up`` is unaffected, so the failure is *unverified* here.
"""

from __future__ import annotations

from components.vocabulary.arm_types import AGENT_POOL, MANAGED_CLUSTER
from policies.graph import ResourceGraph
from policies.violation import Violation

NUMBER = 27
ID = "azure-27-agent-pool-drift"
TITLE = "A cluster with separate AgentPools ignores changes to its inline pool profiles"
SOURCE = "pulumi-azure-native issues 2719 and 1686 (agentPoolProfiles with separate AgentPools)"
UNVERIFIED = True


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for cluster in graph.of_type(MANAGED_CLUSTER):
        separate = [
            p
            for p in graph.of_type(AGENT_POOL)
            if str(p.get("resourceName") or "").lower() == cluster.arm_name.lower()
        ]
        options = cluster.options
        if not separate or not options:
            continue  # no separate pool, or the source records no options (CrossGuard)
        if "agentPoolProfiles" not in options.get("ignoreChanges", []):
            found.append(
                Violation.at(
                    ID,
                    cluster,
                    f"has {len(separate)} separate AgentPool(s) but does not ignore changes to "
                    "agentPoolProfiles; a later update would try to remove them.",
                    "Declare the cluster with ignore_changes=['agentPoolProfiles'].",
                )
            )
    return found
