"""One step of the job path: who moves what to which target, with which role, over which
network; and the check of one movement against the resource graph (the identity holds a role
allowing it at the target's scope or above, and the actor reaches the target). The job path
(``policies.job_path``), its control paths and its service paths all list movements in these
terms."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from components.vocabulary import builtin_roles as names
from policies import roles
from policies.graph import STORAGE_ACCOUNT, Node, ResourceGraph
from policies.network_paths import Origin, Path, reach
from policies.violation import Violation

CHECK_ID = "job-path"


def role_guids(*role_names: str) -> frozenset[str]:
    return frozenset(names.BUILTIN_ROLES[n].lower() for n in role_names)


BLOB_READ = role_guids(names.BLOB_DATA_READER, names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER)
BLOB_WRITE = role_guids(names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER)
FILE_WRITE = role_guids(names.FILE_DATA_PRIVILEGED_CONTRIBUTOR)
ACR_PULL = role_guids(names.ACR_PULL, "AcrPush", names.CONTRIBUTOR, names.OWNER)
ACR_PUSH = role_guids("AcrPush", names.CONTRIBUTOR, names.OWNER)
SUBMIT = role_guids(names.AML_DATA_SCIENTIST, names.CONTRIBUTOR, names.OWNER)
VM_READ = role_guids(names.READER, names.CONTRIBUTOR, names.OWNER)
VM_LOGIN = role_guids(names.VM_USER_LOGIN)

ROLE_WORDS = {
    BLOB_READ: "Storage Blob Data Reader (or Contributor/Owner)",
    BLOB_WRITE: "Storage Blob Data Contributor (or Owner)",
    FILE_WRITE: "Storage File Data Privileged Contributor",
    ACR_PULL: "AcrPull (or AcrPush/Contributor/Owner)",
    ACR_PUSH: "AcrPush (or Contributor/Owner)",
    SUBMIT: "AzureML Data Scientist (or Contributor/Owner)",
    VM_READ: "Reader (or Contributor/Owner)",
    VM_LOGIN: "Virtual Machine User Login",
}


@dataclass(frozen=True)
class Actor:
    """Who moves the data: a principal id (None when unknown) and where it runs."""

    label: str
    principal_id: str | None
    origin: Origin
    node: Node | None = None
    """The resource that runs it (a compute), to name in reports."""


@dataclass(frozen=True)
class Movement:
    """One data movement of the round, checked."""

    step: str
    what: str
    actor: str
    target: str
    role: str
    role_ok: bool | None
    """None: not checked (the movement is then *assumed*, never *ok*)."""
    role_detail: str
    route: str
    network_ok: bool | None
    """None: not checked, as for ``role_ok``."""
    problem: str
    fix: str
    resource: Node | None
    assumed: str = ""
    """What the sandbox does not build and the movement relies on (a host in the hub VNet);
    set, the movement is reported *assumed*, not *ok*, and the plan says what to provide."""

    @property
    def ok(self) -> bool:
        return self.role_ok is not False and self.network_ok is not False

    @property
    def status(self) -> str:
        """``ok``, ``assumed`` (holds if the user provides what ``assumed`` says) or
        ``broken``."""
        if not self.ok:
            return "broken"
        unchecked = self.role_ok is None or self.network_ok is None
        return "assumed" if self.assumed or unchecked else "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("resource")
        data["resource"] = self.resource.label if self.resource is not None else None
        data["ok"] = self.ok
        data["status"] = self.status
        return data

    def violation(self) -> Violation:
        where = f"{self.step}: {self.what}: {self.actor} -> {self.target}: "
        if self.resource is not None:
            return Violation.at(CHECK_ID, self.resource, where + self.problem, self.fix)
        return Violation(
            CHECK_ID, "job step", self.step, self.step, None, where + self.problem, self.fix
        )


@dataclass(frozen=True)
class Target:
    """What a movement touches: a resource, a blob container in it, and its sub-resource."""

    node: Node | None
    group: str
    container: str | None = None
    label: str = ""
    missing: str = ""
    """Why the target is not in the sandbox (a manifest entry that resolves to nothing)."""


def holding_grant(
    graph: ResourceGraph, principal_id: str, allowed: frozenset[str], target: Target
) -> str | None:
    """A description of the grant that allows the movement, or None."""
    assert target.node is not None
    for grant in graph.grants_of(principal_id):
        if roles.role_guid(grant.role_definition_id) not in allowed:
            continue
        if target.node.type == STORAGE_ACCOUNT:
            for reached in grant.targets:
                if reached.account is not target.node:
                    continue
                if reached.container is None or reached.container == target.container:
                    limited = (
                        ", paths limited by a condition"
                        if grant.assignment.get("condition")
                        else ""
                    )
                    return f"{grant.role} at {reached.level} scope{limited}"
            continue
        level = graph.scope_covers(grant.scope, target.node)
        if level is not None:
            return f"{grant.role} at {level} scope"
    return None


def checked_movement(
    graph: ResourceGraph,
    step: str,
    what: str,
    actor: Actor,
    target: Target,
    allowed: frozenset[str] | None,
) -> Movement:
    role_words = ROLE_WORDS.get(allowed, "") if allowed is not None else "none (network only)"
    if target.node is None:
        return Movement(
            step,
            what,
            actor.label,
            target.label,
            role_words,
            False,
            "",
            "",
            False,
            target.missing,
            "Fix the manifest or declare the resource in the stack",
            actor.node,
        )
    role_ok, role_detail = True, "not needed"
    if allowed is not None:
        if actor.principal_id is None:
            role_ok, role_detail = False, "the actor's identity is not in this sandbox"
        else:
            found = holding_grant(graph, actor.principal_id, allowed, target)
            role_ok, role_detail = found is not None, found or "missing"
    path: Path = reach(graph, actor.origin, target.node, target.group)
    problem, fix, resource = "", "", None
    if not role_ok:
        on = f"{target.label}" + (f" (container '{target.container}')" if target.container else "")
        problem = f"{actor.label} holds no role allowing this on {on}; it needs {role_words}."
        fix = f"Grant {actor.label} {role_words.split(' (')[0]} on {on}" + (
            " (the submitters' roles come from the stack's `submitters` setting)"
            if step == "submit"
            else ""
        )
        resource = target.node
    if not path.ok:
        problem = (problem + " " if problem else "") + path.problem + "."
        fix = (fix + "; " if fix else "") + path.fix
        resource = resource or path.blocker or target.node
    return Movement(
        step,
        what,
        actor.label,
        target.label,
        role_words,
        role_ok,
        role_detail,
        path.route,
        path.ok,
        problem,
        fix,
        resource,
    )


def resource_target(
    node: Node | None, group: str, label: str, container: str | None = None
) -> Target:
    if node is None:
        return Target(
            None, group, container, label=label, missing=f"{label} is not in this sandbox"
        )
    return Target(node, group, container, label=f"{label} '{node.arm_name}'")
