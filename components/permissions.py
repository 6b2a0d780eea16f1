"""The one declarative permissions table: who gets which built-in role on what, and why.

Every ``azure-native:authorization:RoleAssignment`` in a sandbox is created by ``assign`` from
rows of this table, so the access matrix can be printed and checked against the isolation
invariants, Azure's rules and the job-path check before deployment. Grantees and targets are
typed symbols (a silo's identity, ``models-container:silo-<name>``); the builder resolves them
to principal ids and ARM scopes.

Who holds what, and why:
- the workspace's identity: what Azure ML documents for a user-assigned workspace identity
  (its storage, key vault, registry, telemetry, the workspace itself); no compute runs as it,
  since any submitter may send a job to any compute of the workspace;
- the image builder's identity: AcrPush on the registry and read on the workspace storage
  (the build context), nothing else; the only compute identity allowed to push images;
- the orchestrator's jobs identity (aggregation): data roles on the model store and the
  workspace storage, and AcrPull; nothing that could push an image or change a resource;
- each silo's identity: its own storage, its own update container, read-only on the global
  models and the workspace storage, the workspace's log container, AcrPull;
- each submitter: AzureML Data Scientist on the workspace and the two data roles on the
  workspace storage azure-ai-ml needs to upload code (shared keys are off); nothing on silos.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_azure_native import authorization

from components.vocabulary import builtin_roles as roles
from components.vocabulary.access_targets import Target
from components.vocabulary.conventions import (
    GLOBAL_MODELS_CONTAINER,
    MEMBER_OF_MARKER,
    SIGNING_KEYS_CONTAINER,
    SUBMITTER_MARKER,
    WORKSPACE_LOGS_CONTAINER,
)
from components.vocabulary.naming import silo_container

PrincipalType = Literal["User", "Group", "ServicePrincipal"]
GranteeKind = Literal[
    "workspace-identity",
    "workspace-system-identity",
    "jobs-identity",
    "image-builder-identity",
    "silo-identity",
    "aks-identity",
    "person",
    "deployer",
]


@dataclass(frozen=True)
class Grantee:
    """Who a row grants to: an identity the sandbox creates, a person (by object id), or
    the principal that runs ``pulumi up`` (resolved from the Azure client config)."""

    kind: GranteeKind
    silo: str | None = None
    principal_id: str | None = None

    def __str__(self) -> str:
        if self.kind == "workspace-identity":
            return "orchestrator-identity"
        if self.kind == "workspace-system-identity":
            return "orchestrator-workspace-system-identity"
        if self.kind == "jobs-identity":
            return "orchestrator-jobs-identity"
        if self.kind == "image-builder-identity":
            return "orchestrator-image-builder-identity"
        if self.kind == "silo-identity":
            return f"silo:{self.silo}-identity"
        if self.kind == "aks-identity":
            return f"aks:{self.silo or 'orchestrator'}-identity"
        if self.kind == "person":
            return f"principal:{self.principal_id}"
        return "deployer"


WORKSPACE_IDENTITY = Grantee("workspace-identity")
"""The workspace's primary user-assigned identity (``id-<base>-orchestrator``)."""
WORKSPACE_SYSTEM_IDENTITY = Grantee("workspace-system-identity")
"""The workspace's system-assigned identity (known once the workspace exists)."""
JOBS_IDENTITY = Grantee("jobs-identity")
"""The identity the orchestrator's compute runs aggregation steps as."""
IMAGE_BUILDER_IDENTITY = Grantee("image-builder-identity")
"""The identity the image-build cluster runs as: push images, read build contexts, no more."""
DEPLOYER = Grantee("deployer")


def silo_identity(silo: str) -> Grantee:
    """Grantee of a silo's user-assigned identity."""
    return Grantee("silo-identity", silo=silo)


def aks_identity(silo: str | None) -> Grantee:
    """Grantee of an AKS cluster's control-plane identity (a silo's, or the orchestrator's
    when ``silo`` is None)."""
    return Grantee("aks-identity", silo=silo)


def person(principal_id: str) -> Grantee:
    """Grantee of a person, group or app given by object id in the stack file."""
    return Grantee("person", principal_id=principal_id.lower())


@dataclass(frozen=True)
class Grant:
    """One row: ``grantee`` gets ``role`` on ``target`` because ``why``."""

    grantee: Grantee
    role: str
    target: Target
    why: str
    principal_type: PrincipalType = "ServicePrincipal"
    member_of: str | None = None
    submitter: bool = False
    before_workspace: bool = False
    """Needed before the AML workspace is created (its primary identity's own access)."""
    before_cluster: bool = False
    """Needed before an AKS cluster is created (its control plane joins the subnet)."""
    condition: str | None = None
    """An ABAC role assignment condition (version 2.0) narrowing the role, e.g. to paths."""
    before_attach: bool = False
    """Needed before a Kubernetes cluster is attached as a compute (Azure's rule 20)."""

    @property
    def description(self) -> str:
        text = f"fl-sandbox: {self.role} for {self.grantee} on {self.target}: {self.why}"
        if self.member_of is not None:
            text += f" [{MEMBER_OF_MARKER}{self.member_of}]"
        if self.submitter:
            text += f" [{SUBMITTER_MARKER}]"
        return text

    @property
    def resource_name(self) -> str:
        """A stable Pulumi name: the row's identity (grantee, role, target)."""
        raw = f"ra-{self.grantee}-{self.role}-{self.target}".lower()
        return re.sub(r"[^a-z0-9]+", "-", raw).strip("-")

    def row(self) -> dict[str, str]:
        """The row as plain strings, for printing and stack outputs."""
        return {
            "grantee": str(self.grantee),
            "role": self.role,
            "target": str(self.target),
            "why": self.why,
            "member_of": self.member_of or "",
            "submitter": "yes" if self.submitter else "",
        }


WS_STORAGE = Target("orchestrator-storage")
LOGS_CONTAINER = Target("orchestrator-storage-container", container=WORKSPACE_LOGS_CONTAINER)
GLOBAL_MODELS = Target("models-container", container=GLOBAL_MODELS_CONTAINER)
REGISTRY = Target("container-registry")


def _workspace_identity_rows() -> list[Grant]:
    """Azure ML's documented roles for a user-assigned workspace identity (rule 11 of
    ``policies/azure_rules``); all but the last are needed before the workspace exists."""
    before = [
        (
            roles.BLOB_DATA_CONTRIBUTOR,
            WS_STORAGE,
            "the workspace keeps code snapshots, logs "
            "and outputs in its storage, reached by identity since shared keys are off",
        ),
        (
            roles.FILE_DATA_PRIVILEGED_CONTRIBUTOR,
            WS_STORAGE,
            "the workspace file share (notebooks, snapshots) without shared keys",
        ),
        (
            roles.STORAGE_ACCOUNT_CONTRIBUTOR,
            WS_STORAGE,
            "the workspace manages its default storage (containers, CORS)",
        ),
        (
            roles.KEY_VAULT_ADMINISTRATOR,
            Target("key-vault"),
            "the workspace stores its secrets in its RBAC-mode vault",
        ),
        (
            roles.CONTRIBUTOR,
            Target("key-vault"),
            "the workspace manages its vault (documented role for workspace identities)",
        ),
        (
            roles.CONTRIBUTOR,
            REGISTRY,
            "the workspace manages its registry (documented role for workspace identities)",
        ),
        (roles.CONTRIBUTOR, Target("app-insights"), "the workspace writes its telemetry"),
    ]
    grants = [
        Grant(WORKSPACE_IDENTITY, role, target, why, before_workspace=True)
        for role, target, why in before
    ]
    grants.append(
        Grant(
            WORKSPACE_IDENTITY,
            roles.CONTRIBUTOR,
            Target("workspace"),
            "documented role for a workspace's user-assigned identity on the workspace",
        )
    )
    return grants


def _jobs_identity_rows(silos: Sequence[str]) -> list[Grant]:
    me = JOBS_IDENTITY
    grants = [
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            GLOBAL_MODELS,
            "aggregation reads the test set and writes each round's global model",
        ),
        *(
            Grant(
                me,
                roles.BLOB_DATA_READER,
                Target("models-container", container=silo_container(silo)),
                f"aggregation reads silo {silo}'s updates, read-only",
            )
            for silo in silos
        ),
        Grant(
            me,
            roles.BLOB_DATA_READER,
            WS_STORAGE,
            "the orchestrator's compute downloads job code snapshots",
        ),
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            LOGS_CONTAINER,
            "aggregation steps write their logs and MLflow artifacts",
        ),
        Grant(me, roles.ACR_PULL, REGISTRY, "the orchestrator's compute pulls job images"),
    ]
    return grants


def image_builder_rows() -> list[Grant]:
    """The image-build cluster reads the build context from the workspace storage and pushes
    the image to the registry (Azure ML docs, "Secure the workspace resources", Azure Container
    Registry: images build on the compute cluster when the registry is behind the VNet).
    AcrPush also allows pull, for base layers already in the registry."""
    me = IMAGE_BUILDER_IDENTITY
    return [
        Grant(me, "AcrPush", REGISTRY, "the image builder pushes job environment images"),
        Grant(
            me,
            roles.BLOB_DATA_READER,
            WS_STORAGE,
            "the image builder reads the build context from the workspace storage",
        ),
    ]


SIGNING_KEYS = Target("models-container", container=SIGNING_KEYS_CONTAINER)

#: Every data action of Storage Blob Data Contributor that changes a blob (Microsoft Learn,
#: "Azure built-in roles"; "Security considerations for Azure role assignment conditions in
#: Azure Blob Storage": condition write and add alike, and the rename of ``move``).
BLOB_CHANGING_ACTIONS = ("write", "add/action", "delete", "move/action")


def signing_key_blob(silo: str) -> str:
    """Where ``silo`` publishes its Ed25519 public key in the signing-keys container
    (fl_jobs.store.layout.signing_key_blob; a test keeps them equal)."""
    return f"{silo}.pub"


def signing_key_condition(silo: str) -> str:
    """An ABAC condition (version 2.0) under which a Storage Blob Data Contributor changes
    only ``silo``'s own key blob and reads any: every blob-changing action must name that
    path. Source: Microsoft Learn, "Example Azure role assignment conditions for Blob
    Storage", *Read, write, or delete blobs in named containers with a path*."""
    prefix = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    not_matches = " AND ".join(
        f"!(ActionMatches{{'{prefix}/{action}'}})" for action in BLOB_CHANGING_ACTIONS
    )
    blob_path = f"@Resource[{prefix}:path]"
    return f"(({not_matches}) OR ({blob_path} StringEquals '{signing_key_blob(silo)}'))"


def _silo_rows(silo: str) -> list[Grant]:
    me = silo_identity(silo)
    return [
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            Target("silo-storage", silo=silo),
            f"silo {silo}'s jobs read its training data and write preprocessed data",
        ),
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            Target("models-container", container=silo_container(silo)),
            f"silo {silo} writes its model updates, only into its own container",
        ),
        Grant(
            me,
            roles.BLOB_DATA_READER,
            GLOBAL_MODELS,
            f"silo {silo} reads the current global model, read-only",
        ),
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            SIGNING_KEYS,
            f"silo {silo} publishes its signing key for secure aggregation and reads its "
            f"peers' (writes {signing_key_blob(silo)} only, by condition)",
            condition=signing_key_condition(silo),
        ),
        Grant(
            me,
            roles.ACR_PULL,
            REGISTRY,
            f"silo {silo}'s compute pulls job images (the registry admin user is off)",
        ),
        Grant(
            me,
            roles.BLOB_DATA_READER,
            WS_STORAGE,
            f"silo {silo}'s compute downloads job code snapshots from the workspace storage",
        ),
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            LOGS_CONTAINER,
            f"silo {silo}'s steps write their logs and MLflow artifacts",
        ),
    ]


GRANTS_PER_SILO = len(_silo_rows("s")) + 1
"""Role assignments each silo adds to the table: its own rows, plus the jobs identity's read
on its update container."""

SUBMITTER_ROLES: tuple[tuple[str, Target, str], ...] = (
    (roles.AML_DATA_SCIENTIST, Target("workspace"), "submits and monitors FL jobs"),
    (
        roles.BLOB_DATA_CONTRIBUTOR,
        WS_STORAGE,
        "azure-ai-ml uploads the job's code snapshot with the submitter's own credential",
    ),
    (
        roles.FILE_DATA_PRIVILEGED_CONTRIBUTOR,
        WS_STORAGE,
        "the workspace's file share, without shared keys",
    ),
)
"""What submitting a job needs, and nothing more (never anything on a silo)."""


def submitter_grants(grantee: Grantee, principal_type: PrincipalType) -> list[Grant]:
    """The rows that let ``grantee`` submit jobs, each marked ``[submitter]``."""
    return [
        Grant(grantee, role, target, why, principal_type=principal_type, submitter=True)
        for role, target, why in SUBMITTER_ROLES
    ]


def aks_rows(silo: str | None) -> list[Grant]:
    """An AKS cluster's control plane manages its nodes' addresses in the subnet it joins
    (Azure's rule 16); needed before the cluster is created."""
    return [
        Grant(
            aks_identity(silo),
            roles.NETWORK_CONTRIBUTOR,
            Target("compute-subnet", silo=silo),
            "the AKS control plane joins its nodes to the subnet",
            before_cluster=True,
        )
    ]


ATTACH_ROLES = (
    roles.READER,
    roles.KUBERNETES_EXTENSION_CONTRIBUTOR,
    roles.AKS_CLUSTER_ADMIN,
)


def attach_rows(cluster: str | None, arc: bool) -> list[Grant]:
    """Azure ML attaches a Kubernetes cluster as the workspace's user-assigned identity, which
    must hold these roles first (Azure's rule 20); an Arc cluster's Relay is created in the
    cluster's resource group, so Relay Owner goes there."""
    rows = [
        Grant(
            WORKSPACE_IDENTITY,
            role,
            Target("kubernetes-cluster", silo=cluster),
            "Azure ML attaches the cluster as the workspace's user-assigned identity",
            before_attach=True,
        )
        for role in ATTACH_ROLES
    ]
    if arc:
        rows.append(
            Grant(
                WORKSPACE_IDENTITY,
                roles.RELAY_OWNER,
                Target("cluster-resource-group", silo=cluster),
                "the extension's Azure Relay is created in the Arc cluster's resource group",
                before_attach=True,
            )
        )
    return rows


def hbi_aks_rows() -> list[Grant]:
    """An HBI workspace with AKS attached: its system-assigned identity holds these on the
    workspace storage (Azure's rule 21), after the workspace, before the attach."""
    why = "an HBI workspace reaches its private storage as its system-assigned identity"
    return [
        Grant(WORKSPACE_SYSTEM_IDENTITY, role, WS_STORAGE, why, before_attach=True)
        for role in (roles.BLOB_DATA_CONTRIBUTOR, roles.STORAGE_ACCOUNT_CONTRIBUTOR)
    ]


def access_table(
    silos: Sequence[str],
    extra: Iterable[Grant] = (),
    submitters: Iterable[Grant] = (),
    aks_clusters: Iterable[str | None] = (),
    attached_clusters: Iterable[tuple[str | None, bool]] = (),
    hbi_aks: bool = False,
    image_builder: bool = False,
) -> list[Grant]:
    """Every role assignment of a sandbox with these silos, plus submitters and extras.
    ``aks_clusters``: the silos (None: the orchestrator) that run on AKS;
    ``attached_clusters``: every Kubernetes cluster attached as a compute, and whether it
    is Arc-connected; ``hbi_aks``: an HBI workspace attaches AKS clusters; ``image_builder``:
    the workspace builds images on its own cluster."""
    table = _workspace_identity_rows()
    table.extend(_jobs_identity_rows(silos))
    if image_builder:
        table.extend(image_builder_rows())
    for silo in silos:
        table.extend(_silo_rows(silo))
    for cluster in aks_clusters:
        table.extend(aks_rows(cluster))
    for cluster, arc in attached_clusters:
        table.extend(attach_rows(cluster, arc))
    if hbi_aks:
        table.extend(hbi_aks_rows())
    table.extend(submitters)
    table.extend(extra)
    return table


def person_grant(
    principal_id: str,
    principal_type: PrincipalType,
    role: str,
    target: Target,
    why: str,
    member_of: str | None,
) -> Grant:
    """A stack-file grant (already checked against the isolation rules by the spec)."""
    return Grant(
        grantee=person(principal_id),
        role=role,
        target=target,
        why=why,
        principal_type=principal_type,
        member_of=member_of,
    )


def assign(
    grants: Iterable[Grant],
    *,
    principals: Mapping[Grantee, pulumi.Input[str]],
    scopes: Mapping[Target, pulumi.Input[str]],
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
) -> list[authorization.RoleAssignment]:
    """Create one RoleAssignment per row. ``principals`` maps identity grantees (and the
    deployer) to principal ids, people carry theirs; ``scopes`` maps targets to ARM ids, and
    a container's id comes from its own resource, so the assignment waits for it."""
    created = []
    for grant in grants:
        if grant.grantee.kind == "person":
            principal_id: pulumi.Input[str] = str(grant.grantee.principal_id)
        else:
            principal_id = principals[grant.grantee]
        if grant.target.kind == "subscription":
            scope: pulumi.Input[str] = pulumi.Output.concat("/subscriptions/", subscription_id)
        else:
            scope = scopes[grant.target]
        created.append(
            authorization.RoleAssignment(
                grant.resource_name,
                principal_id=principal_id,
                principal_type=grant.principal_type,
                role_definition_id=pulumi.Output.from_input(subscription_id).apply(
                    functools.partial(roles.role_definition_id, role=grant.role)
                ),
                scope=scope,
                description=grant.description,
                **(
                    {"condition": grant.condition, "condition_version": "2.0"}
                    if grant.condition
                    else {}
                ),
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    return created


@dataclass(frozen=True)
class AccessControlArgs:
    grants: Sequence[Grant]
    principals: Mapping[Grantee, pulumi.Input[str]]
    scopes: Mapping[Target, pulumi.Input[str]]
    subscription_id: pulumi.Input[str]


class AccessControl(pulumi.ComponentResource):
    """The table's role assignments that need silos in place (all but the workspace's own)."""

    def __init__(
        self, name: str, args: AccessControlArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:AccessControl", name, None, opts)
        self.assignments = assign(
            args.grants,
            principals=args.principals,
            scopes=args.scopes,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.register_outputs({"role_assignments": len(self.assignments)})
