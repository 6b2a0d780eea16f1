"""The job path: will one FL round, as the Azure ML pipeline runs it, work on this sandbox?

Every data movement of a round is listed as (actor identity, target, role it needs, network
path) and both halves are checked over the same graph as the invariants: the identity holds
a role that allows the movement on the target (at its scope or above), and the actor can reach
the target over the network (``policies.network_paths``). The round, in order:

1. submit, for each submitter: call the workspace API; upload the code snapshot to the
   workspace storage (azure-ai-ml does it with the submitter's own credential);
   seeding, before the first round: each silo's uploaders write its raw data into its data
   container, the test-set uploaders write the test set into ``global`` (``dataUploaders``);
   a movement that relies on something the sandbox does not build (a host on the hub
   network; the data of a storage account the silo brings) is reported *assumed*, with what
   the user provides; a storage account this stack creates with nobody listed to upload
   into it is *broken*: no one, subscription Owners included, can write its first data;
2. image build, on the workspace's image-build compute (or Azure's serverless build):
   read the build context from the workspace storage, push the image to the registry;
3. each silo's agent (step ``silo <s>: agent``), on the silo's compute, as its identity
   (steps run with ``identity: managed``): pull the image, download the snapshot, talk to
   the workspace (job control, MLflow metrics), write logs and MLflow artifacts, then its
   declared movements: read its data, keep its silo store, read the global model, poll the
   round announcements and secure-aggregation requests, write its update and its heartbeat
   and secure-aggregation replies, publish its signing key and read its peers';
4. the orchestrator's agent (``orchestrator: agent``), on its compute, as its jobs identity:
   the same common movements, then its declared ones: its run folder, every silo's update,
   heartbeat and replies, the test set, the global model and the round announcements.

The movements of the agents and of seeding are not written here: they come from the one
declaration the submission builder mounts its ports from (``fl_jobs.aml.round_movements``),
each store mapped to its resource in the graph and each access to the blob roles that allow
it, so no step moves data the job path does not check. Which compute and datastore each step
uses comes from the ``federation`` manifest, exactly as the pipeline builder uses it. A broken
movement is reported like a violation, naming the resource that decides it and the fix;
``plan`` prints the whole table and exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from components.jump_host import HOST_SUBNET, PURPOSE_JUMP_HOST
from components.vocabulary.arm_types import BASTION_HOST, VIRTUAL_MACHINE
from components.vocabulary.conventions import SIGNING_KEYS_CONTAINER, WORKSPACE_LOGS_CONTAINER
from fl_jobs.aml import round_movements
from fl_jobs.aml.round_movements import DataMovement, Store
from policies.control_paths import aml_compute_control, kubernetes_control
from policies.graph import (
    CONTAINER_REGISTRY,
    DATASTORE,
    KEY_VAULT,
    STORAGE_ACCOUNT,
    Node,
    ResourceGraph,
    purpose_of,
)
from policies.movement import (
    ACR_PULL,
    ACR_PUSH,
    BLOB_READ,
    BLOB_WRITE,
    ROLE_WORDS,
    SUBMIT,
    VM_LOGIN,
    VM_READ,
    Actor,
    Movement,
    Target,
    checked_movement,
    holding_grant,
    resource_target,
)
from policies.network_paths import (
    Origin,
    compute_named,
    compute_origin,
    submitter_origin,
)
from policies.service_paths import service_movements
from policies.violation import Violation

GLOBAL_UPLOADS = "global"
"""The ``data_uploaders`` target of the test set (``blueprints.uploaders.GLOBAL``)."""


def _outbound(step: str, what: str, actor: Actor) -> Movement:
    """A movement to public internet endpoints (Microsoft Entra ID, ARM, package indexes)."""
    origin = actor.origin
    problem = (
        ""
        if origin.outbound
        else f"{origin.label} has no outbound path: {origin.outbound_problem}."
    )
    fix = (
        ""
        if origin.outbound
        else (
            "Set defaultOutboundAccess=true on the compute subnet or attach a NAT gateway "
            "(fl-sandbox:computeOutbound)"
        )
    )
    return Movement(
        step,
        what,
        actor.label,
        "the internet",
        "none (network only)",
        True,
        "not needed",
        "outbound" if origin.outbound else "none",
        origin.outbound,
        problem,
        fix,
        None if origin.outbound else actor.node,
    )


# ----- resolving the manifest to resources ------------------------------------------------


def _workspace(graph: ResourceGraph) -> Node | None:
    name = (graph.federation.get("workspace") or {}).get("name")
    workspaces = graph.workspaces()
    for workspace in workspaces:
        if workspace.arm_name == name:
            return workspace
    return workspaces[0] if len(workspaces) == 1 else None


def _linked(
    graph: ResourceGraph, workspace: Node | None, key: str, only: list[Node]
) -> Node | None:
    """The resource the workspace names under ``key``; else the graph's only candidate."""
    if workspace is not None:
        found = graph.find(workspace.get(key))
        if found is not None:
            return found
    return only[0] if len(only) == 1 else None


def _datastore(graph: ResourceGraph, name: str | None, group: str = "blob") -> Target:
    label = f"datastore '{name}'"
    if not name:
        return Target(None, group, label=label, missing="the manifest names no datastore here")
    store = next((d for d in graph.of_type(DATASTORE) if d.arm_name == name), None)
    if store is None:
        return Target(
            None, group, label=label, missing=f"{label} is not registered in this sandbox"
        )
    account_name = store.get("properties", "accountName")
    container = store.get("properties", "containerName")
    account = graph.named(STORAGE_ACCOUNT, str(account_name)) if account_name else None
    if account is None:
        return Target(
            None,
            group,
            label=label,
            missing=f"{label} points at storage account {account_name!r}, not in this sandbox",
        )
    return Target(
        account,
        group,
        str(container) if container else None,
        label=f"{label} (storage '{account.arm_name}', container '{container}')",
    )


def _compute_actor(graph: ResourceGraph, compute: Node, label: str) -> Actor:
    identities = graph.compute_identities(compute)
    principal = identities[0].get("principalId") if identities else None
    who = f"{label} (compute '{compute.arm_name}'"
    who += f", identity '{identities[0].arm_name}')" if identities else ", no identity)"
    return Actor(
        who,
        principal if isinstance(principal, str) else None,
        compute_origin(graph, compute),
        compute,
    )


# ----- the round -------------------------------------------------------------------------------


def _submit(
    graph: ResourceGraph, workspace: Node | None, ws_storage: Node | None
) -> list[Movement]:
    submitters = graph.outputs.get("submitters")
    entries = [s for s in submitters or [] if isinstance(s, Mapping)]
    if not entries:
        return [
            Movement(
                "submit",
                "submit a job",
                "nobody",
                "the workspace",
                ROLE_WORDS[SUBMIT],
                False,
                "no submitter",
                "",
                False,
                "no principal is set up to submit jobs (the stack lists no submitters)",
                "List the people, groups or apps that submit jobs under fl-sandbox:submitters",
                workspace,
            )
        ]
    found: list[Movement] = []
    for entry in entries:
        principal = str(entry.get("principal_id") or "")
        name = "the deployer" if entry.get("deployer") else f"submitter {principal}"
        origin = submitter_origin(
            graph, str(entry.get("network") or "internet"), list(entry.get("ip_ranges") or [])
        )
        actor = Actor(f"{name} from {origin.label}", principal, origin)
        assumed, route = _hub_route(graph, "submit", actor)
        found += route
        found.append(
            _assume(
                checked_movement(
                    graph,
                    "submit",
                    "call the workspace API",
                    actor,
                    resource_target(workspace, "amlworkspace", "workspace"),
                    SUBMIT,
                ),
                assumed,
            )
        )
        found.append(
            _assume(
                checked_movement(
                    graph,
                    "submit",
                    "upload the code snapshot",
                    actor,
                    resource_target(ws_storage, "blob", "workspace storage"),
                    BLOB_WRITE,
                ),
                assumed,
            )
        )
    return found


HUB_HOST = (
    "the stack builds no host on the hub network: set fl-sandbox:jumpHost (a jump host behind "
    "Azure Bastion), or provide a host of your own in the hub VNet that resolves the "
    "privatelink zones linked there"
)


def _jump_host(graph: ResourceGraph) -> Node | None:
    """The hub's jump host (``components.jump_host``), when the stack builds it with its
    Bastion host: then people on "the hub network" are there for real."""
    if not graph.of_type(BASTION_HOST):
        return None
    return next(
        (vm for vm in graph.of_type(VIRTUAL_MACHINE) if purpose_of(vm) == PURPOSE_JUMP_HOST),
        None,
    )


def _hub_route(graph: ResourceGraph, step: str, actor: Actor) -> tuple[str, list[Movement]]:
    """For someone on the hub network: what is assumed (no host there) or the checked
    connection through Bastion to the stack's jump host; nothing for anyone else."""
    if actor.origin.kind != "vnet":
        return "", []
    jump = _jump_host(graph)
    if jump is None:
        return HUB_HOST, []
    return "", [_through_bastion(graph, step, actor, jump)]


def _through_bastion(graph: ResourceGraph, step: str, actor: Actor, vm: Node) -> Movement:
    """Connecting to the jump host with ``az network bastion ssh --auth-type AAD`` needs Reader
    on the VM (and on its NIC and the Bastion host, granted with it) and Virtual Machine User
    Login to sign in as oneself; Bastion's own public endpoint is the route."""
    target = Target(vm, "vm", label=f"jump host '{vm.arm_name}'")
    reader = holding_grant(graph, actor.principal_id or "", VM_READ, target)
    login = holding_grant(graph, actor.principal_id or "", VM_LOGIN, target)
    held = f"{reader}; {login}" if reader and login else None
    role_words = f"{ROLE_WORDS[VM_READ]} and {ROLE_WORDS[VM_LOGIN]}"
    return Movement(
        step,
        "connect to the jump host through Azure Bastion",
        actor.label.split(" from ")[0],
        target.label,
        role_words,
        held is not None,
        held or "missing",
        "Azure Bastion (public endpoint, native client), then the hub VNet",
        True,
        "" if held else f"{actor.label} lacks a role on {target.label}; it needs {role_words}.",
        ""
        if held
        else "List the person under fl-sandbox:submitters or dataUploaders: the "
        "jump host grants both to each",
        None if held else vm,
    )


def _on_jump_host(graph: ResourceGraph, origin: Origin) -> Origin:
    """The hub origin narrowed to the jump host's subnet, where a hub-route person works."""
    jump = next(
        (
            s
            for s in graph.subnets
            if s.name == HOST_SUBNET and s.vnet is origin.vnet and s.address_prefixes
        ),
        None,
    )
    if jump is None:
        return origin
    return replace(origin, source_prefix=jump.address_prefixes[0])


def _assume(movement: Movement, assumed: str) -> Movement:
    return replace(movement, assumed=assumed) if assumed else movement


def _seeding(graph: ResourceGraph) -> list[Movement]:
    """Putting the data in place before the first round: each silo's raw data into its data
    container, the test set into ``global`` (``dataUploaders``).

    Nobody listed: the data of a storage account the silo brings is *assumed* (its owner
    places it); a storage account this stack creates is *broken*, because only a data role
    writes blobs under Entra ID and no person holds one (Microsoft Learn, "Authorize access to
    blobs using Microsoft Entra ID": *Owner, Contributor and Storage Account Contributor
    permit a security principal to manage a storage account, but don't provide access to the
    blob data*), and the account admits no shared key."""
    uploaders = [u for u in graph.outputs.get("data_uploaders") or [] if isinstance(u, Mapping)]
    found: list[Movement] = []
    declared = round_movements.seeding_movements(str(s.get("name")) for s in _cloud_silos(graph))
    for declared_movement in declared:
        key = declared_movement.silo or GLOBAL_UPLOADS
        step = "seed " + (f"silo {key}" if key != GLOBAL_UPLOADS else "the test set")
        what = declared_movement.what
        target = _store_target(graph, declared_movement, _whose(graph, declared_movement))
        allowed = _blob_role(declared_movement)
        mine = [u for u in uploaders if u.get("target") == key]
        if not mine:
            found.append(_nobody_seeds(graph, step, what, key, target))
            continue
        for entry in mine:
            principal = str(entry.get("principal_id") or "")
            origin = submitter_origin(
                graph, str(entry.get("network") or "internet"), list(entry.get("ip_ranges") or [])
            )
            actor = Actor(f"uploader {principal} from {origin.label}", principal, origin)
            assumed, route = _hub_route(graph, step, actor)
            if route:
                actor = replace(actor, origin=_on_jump_host(graph, origin))
            found += route
            found.append(
                _assume(checked_movement(graph, step, what, actor, target, allowed), assumed)
            )
    return found


def _nobody_seeds(graph: ResourceGraph, step: str, what: str, key: str, target: Target) -> Movement:
    """The seeding movement of a target nobody is listed to upload into."""
    setting = f"fl-sandbox:dataUploaders.{key}"
    existing = graph.outputs.get("existing_storage")
    brought = (target.node is not None and target.node.read) or (
        isinstance(existing, Mapping) and key in existing
    )
    if brought or target.node is None:
        # The silo's own account (or one the manifest names outside the sandbox): its owner
        # places the data with grants this stack neither makes nor sees.
        role_ok, detail, problem, fix, resource = None, "not checked", "", "", None
        assumed = (
            f"{target.label} is not created by this stack: its owner must place the data "
            "there, with a data role this stack neither grants nor checks"
        )
    else:
        role_ok, detail, resource, assumed = False, "no person holds it", target.node, ""
        problem = (
            f"this stack creates {target.node.arm_name} and lists nobody under {setting}: "
            "only a blob data role writes data (Owner and Contributor do not, and the account "
            "takes no shared key), and no person holds one, so the data custodian's upload is "
            "refused and the first job finds no data (the only writer is a compute identity, "
            "i.e. a job some submitter runs there)."
        )
        fix = (
            f"List the data custodian's object id under {setting} (docs/infrastructure.md, "
            '"Data seeding")'
        )
    return Movement(
        step,
        what,
        "nobody listed",
        target.label,
        ROLE_WORDS[BLOB_WRITE],
        role_ok,
        detail,
        "not checked",
        None,
        problem,
        fix,
        resource,
        assumed=assumed,
    )


def _image_build(
    graph: ResourceGraph, workspace: Node | None, ws_storage: Node | None, registry: Node | None
) -> list[Movement]:
    name = workspace.get("imageBuildCompute") if workspace is not None else None
    if name:
        compute = compute_named(graph, str(name), workspace)
        if compute is None:
            return [
                Movement(
                    "image build",
                    "build the job environment",
                    f"compute '{name}'",
                    "registry",
                    ROLE_WORDS[ACR_PUSH],
                    False,
                    "",
                    "",
                    False,
                    f"the workspace's imageBuildCompute '{name}' is not a compute of it",
                    f"Declare an AML cluster named '{name}' in the workspace's VNet",
                    workspace,
                )
            ]
        actor = _compute_actor(graph, compute, "image builder")
    else:
        primary = graph.find(workspace.get("primaryUserAssignedIdentity")) if workspace else None
        principal = primary.get("principalId") if primary is not None else None
        actor = Actor(
            "Azure ML serverless image build (workspace identity)",
            principal if isinstance(principal, str) else None,
            Origin("azure", "Azure ML's serverless image build"),
        )
    return [
        _outbound(
            "image build", "pull the base image and packages (mcr.microsoft.com, PyPI)", actor
        ),
        checked_movement(
            graph,
            "image build",
            "read the build context",
            actor,
            resource_target(ws_storage, "blob", "workspace storage"),
            BLOB_READ,
        ),
        checked_movement(
            graph,
            "image build",
            "push the environment image",
            actor,
            resource_target(registry, "registry", "registry"),
            ACR_PUSH,
        ),
        *_control(graph, "image build", actor, workspace),
    ]


def _common(
    graph: ResourceGraph,
    step: str,
    actor: Actor,
    workspace: Node | None,
    ws_storage: Node | None,
    registry: Node | None,
) -> list[Movement]:
    logs = Target(
        ws_storage,
        "blob",
        WORKSPACE_LOGS_CONTAINER,
        label=f"workspace storage '{ws_storage.arm_name}'" if ws_storage else "workspace storage",
        missing="the workspace storage is not in this sandbox",
    )
    return [
        _outbound(step, "reach Microsoft Entra ID and Azure Resource Manager", actor),
        checked_movement(
            graph,
            step,
            "pull the job image",
            actor,
            resource_target(registry, "registry", "registry"),
            ACR_PULL,
        ),
        checked_movement(
            graph,
            step,
            "download the code snapshot",
            actor,
            resource_target(ws_storage, "blob", "workspace storage"),
            BLOB_READ,
        ),
        checked_movement(
            graph,
            step,
            "talk to the workspace (job control, MLflow metrics)",
            actor,
            resource_target(workspace, "amlworkspace", "workspace"),
            None,
        ),
        checked_movement(graph, step, "write logs and MLflow artifacts", actor, logs, BLOB_WRITE),
        *_control(graph, step, actor, workspace),
    ]


def _control(
    graph: ResourceGraph, step: str, actor: Actor, workspace: Node | None
) -> list[Movement]:
    """The compute's control traffic (``policies.control_paths``)."""

    if actor.node is None:
        return []
    hbi = workspace is not None and workspace.get("hbiWorkspace") is True
    return [
        *aml_compute_control(graph, step, actor, actor.node, hbi),
        *kubernetes_control(graph, step, actor, actor.node),
    ]


def _missing_compute(step: str, name: Any, workspace: Node | None) -> Movement:
    return Movement(
        step,
        "run on its compute",
        f"compute '{name}'",
        "-",
        "",
        False,
        "",
        "",
        False,
        f"the manifest's compute '{name}' is not a compute of this sandbox",
        "Regenerate the manifest from the stack outputs (`pulumi stack output --json federation`)",
        workspace,
    )


def silo_step(name: object) -> str:
    """The job path's step of silo ``name``'s agent (its pipeline step ``silo_<name>``)."""
    return f"silo {name}: agent"


ORCHESTRATOR_STEP = "orchestrator: agent"


def _cloud_silos(graph: ResourceGraph) -> list[Mapping[str, Any]]:
    """The manifest's silos that run on Azure (a local silo has no part in a cloud round)."""
    return [
        s
        for s in graph.federation.get("silos") or []
        if isinstance(s, Mapping) and s.get("kind", "internal") != "local"
    ]


def _store_target(
    graph: ResourceGraph, movement: DataMovement, silo: Mapping[str, Any] | None
) -> Target:
    """The resource behind a declared movement's store: ``silo``'s stores for a silo's
    (the actor's own, or the one a per-silo movement names), the model store's otherwise."""
    global_store = _datastore(graph, (graph.federation.get("orchestrator") or {}).get("datastore"))
    if movement.store is Store.SILO_DATA:
        return _datastore(graph, (silo or {}).get("datastore"))
    if movement.store is Store.SILO_UPDATES:
        return _datastore(graph, (silo or {}).get("update_datastore"))
    if movement.store is Store.SIGNING_KEYS:
        return _signing_keys(global_store)
    return global_store  # the global models and the test set, in ``global``


def _blob_role(movement: DataMovement) -> frozenset[str]:
    return BLOB_WRITE if movement.access.writes else BLOB_READ


def _whose(graph: ResourceGraph, movement: DataMovement) -> Mapping[str, Any] | None:
    """The manifest entry of the silo a per-silo movement names."""
    return next((s for s in _cloud_silos(graph) if str(s.get("name")) == movement.silo), None)


def _silos(
    graph: ResourceGraph, workspace: Node | None, ws_storage: Node | None, registry: Node | None
) -> list[Movement]:
    """Each silo's agent: its compute's common movements, then the declared ones
    (``fl_jobs.aml.round_movements.silo_movements``)."""
    found: list[Movement] = []
    for silo in _cloud_silos(graph):
        step = silo_step(silo.get("name"))
        compute = compute_named(graph, str(silo.get("compute")), workspace)
        if compute is None:
            found.append(_missing_compute(step, silo.get("compute"), workspace))
            continue
        actor = _compute_actor(graph, compute, f"silo {silo.get('name')}")
        found += _common(graph, step, actor, workspace, ws_storage, registry)
        found += [
            checked_movement(
                graph, step, m.what, actor, _store_target(graph, m, silo), _blob_role(m)
            )
            for m in round_movements.silo_movements()
        ]
    return found


def _signing_keys(global_models: Target) -> Target:
    """The model store's signing-keys container (beside ``global``)."""
    if global_models.node is None:
        return replace(global_models, container=SIGNING_KEYS_CONTAINER)
    label = f"model store '{global_models.node.arm_name}', container '{SIGNING_KEYS_CONTAINER}'"
    return Target(global_models.node, "blob", SIGNING_KEYS_CONTAINER, label=label)


def _aggregate(
    graph: ResourceGraph, workspace: Node | None, ws_storage: Node | None, registry: Node | None
) -> list[Movement]:
    """The orchestrator's agent: its compute's common movements, then the declared ones
    (``fl_jobs.aml.round_movements.orchestrator_movements``)."""
    orchestrator = graph.federation.get("orchestrator") or {}
    step = ORCHESTRATOR_STEP
    compute = compute_named(graph, str(orchestrator.get("compute")), workspace)
    if compute is None:
        return [_missing_compute(step, orchestrator.get("compute"), workspace)]
    actor = _compute_actor(graph, compute, "orchestrator")
    found = _common(graph, step, actor, workspace, ws_storage, registry)
    declared = round_movements.orchestrator_movements(
        str(s.get("name")) for s in _cloud_silos(graph)
    )
    found += [
        checked_movement(
            graph, step, m.what, actor, _store_target(graph, m, _whose(graph, m)), _blob_role(m)
        )
        for m in declared
    ]
    return found


def job_path(graph: ResourceGraph) -> list[Movement]:
    """Every data movement of one FL round, checked. Empty without a cloud manifest (one
    with a workspace), e.g. on a first preview when the outputs are not known yet."""
    if not graph.federation.get("workspace"):
        return []
    workspace = _workspace(graph)
    ws_storage = _linked(graph, workspace, "storageAccount", graph.workspace_storage())
    registry = _linked(graph, workspace, "containerRegistry", graph.of_type(CONTAINER_REGISTRY))
    vault = _linked(graph, workspace, "keyVault", graph.of_type(KEY_VAULT))

    return [
        *_submit(graph, workspace, ws_storage),
        *_seeding(graph),
        *_image_build(graph, workspace, ws_storage, registry),
        *service_movements(graph, workspace, ws_storage, vault, registry),
        *_silos(graph, workspace, ws_storage, registry),
        *_aggregate(graph, workspace, ws_storage, registry),
    ]


def check_job_path(graph: ResourceGraph) -> list[Violation]:
    """A violation per broken movement."""
    return [m.violation() for m in job_path(graph) if not m.ok]


def summarize(movements: Iterable[Movement]) -> dict[str, int]:
    moves: Sequence[Movement] = list(movements)
    return {"movements": len(moves), "broken": sum(1 for m in moves if not m.ok)}
