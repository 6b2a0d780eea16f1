"""Role assignments are exactly the permissions table's rows, and keep silos isolated."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import pytest

from blueprints.builder import sandbox_access_table
from blueprints.mock_runtime import MOCK_SUBSCRIPTION, MockRun, RecordedResource, deployer_object_id
from blueprints.spec import SandboxSpec, load_stack_file
from components.permissions import (
    ATTACH_ROLES,
    DEPLOYER,
    GRANTS_PER_SILO,
    IMAGE_BUILDER_IDENTITY,
    JOBS_IDENTITY,
    SUBMITTER_ROLES,
    WORKSPACE_IDENTITY,
    WORKSPACE_SYSTEM_IDENTITY,
    Grant,
    Grantee,
    aks_identity,
    aks_rows,
    attach_rows,
    hbi_aks_rows,
    image_builder_rows,
    signing_key_condition,
    silo_identity,
)
from components.silo_network import COMPUTE_SUBNET
from components.vocabulary.builtin_roles import (
    BLOB_DATA_CONTRIBUTOR,
    BLOB_DATA_READER,
    BUILTIN_ROLES,
)
from components.vocabulary.conventions import (
    MEMBER_OF_MARKER,
    PURPOSE_AKS_CONTROL_PLANE,
    PURPOSE_IMAGE_BUILD,
    PURPOSE_JOBS,
    PURPOSE_MODELS,
    PURPOSE_WORKSPACE,
    SUBMITTER_MARKER,
    TAG_PURPOSE,
    TAG_SILO,
)
from tests.infra.helpers import (
    BLUEPRINT_NAMES,
    blueprint_run,
    blueprint_spec,
    owner_component,
    run_spec,
)

REPO = Path(__file__).resolve().parents[2]
ROLE = "azure-native:authorization:RoleAssignment"
STORAGE = "azure-native:storage:StorageAccount"
SUBSCRIPTION = f"/subscriptions/{MOCK_SUBSCRIPTION}"


@functools.cache
def stack_run() -> tuple[SandboxSpec, MockRun]:
    """The eyes-on sample stack: it grants a silo custodian and a group extra roles."""
    spec = load_stack_file(REPO / "stacks" / "Pulumi.eyes-on.yaml")
    assert spec.extra_role_assignments
    return spec, run_spec(spec)


CASES = [(bp, n) for bp in BLUEPRINT_NAMES for n in (1, 3)]


@pytest.fixture(params=[*CASES, "stack"], ids=[*(f"{bp}-{n}" for bp, n in CASES), "eyes-on-stack"])
def case(request: pytest.FixtureRequest) -> tuple[SandboxSpec, MockRun]:
    if request.param == "stack":
        return stack_run()
    bp, n = request.param
    return blueprint_spec(bp, n), blueprint_run(bp, n)


def _by_tag(run: MockRun, type_token: str, silo: str | None, purpose: str | None = None):
    for resource in run.of_type(type_token):
        tags = resource.inputs.get("tags", {})
        if tags.get(TAG_SILO) == silo and (purpose is None or tags.get(TAG_PURPOSE) == purpose):
            return resource
    raise AssertionError(f"no {type_token} for silo={silo} purpose={purpose}")


def _principals(run: MockRun, spec: SandboxSpec) -> dict[Grantee, str]:
    identities = run.of_type("azure-native:managedidentity:UserAssignedIdentity")
    out = {DEPLOYER: deployer_object_id()}
    for identity in identities:
        owner = owner_component(run, identity)
        assert owner is not None
        tags = identity.inputs["tags"]
        silo, purpose = tags.get(TAG_SILO), tags.get(TAG_PURPOSE)
        if purpose == PURPOSE_AKS_CONTROL_PLANE:
            key = aks_identity(silo)
        elif purpose == PURPOSE_IMAGE_BUILD:
            key = IMAGE_BUILDER_IDENTITY
        elif silo:
            key = silo_identity(silo)
        else:
            key = JOBS_IDENTITY if purpose == PURPOSE_JOBS else WORKSPACE_IDENTITY
        assert key not in out, key
        out[key] = identity.outputs["principalId"]
    builder = 1 if spec.posture.image_build_compute else 0
    assert len(out) == len(spec.silos) + 3 + len(spec.aks_clusters) + builder
    for workspace in run.of_type("azure-native:machinelearningservices:Workspace"):
        out[WORKSPACE_SYSTEM_IDENTITY] = workspace.outputs["identity"]["principalId"]
    return out


def _compute_subnets(run: MockRun) -> dict[str, str]:
    """``compute-subnet:<silo|hub>`` -> the compute subnet's ARM id, found through its VNet."""
    vnets = {
        r.inputs["virtualNetworkName"]: (r.inputs.get("tags") or {}).get(TAG_SILO) or "hub"
        for r in run.of_type("azure-native:network:VirtualNetwork")
    }
    return {
        f"compute-subnet:{vnets[r.inputs['virtualNetworkName']]}": r.outputs["id"]
        for r in run.of_type("azure-native:network:Subnet")
        if r.inputs["subnetName"] == COMPUTE_SUBNET
    }


def _scopes(run: MockRun, spec: SandboxSpec) -> dict[str, str]:
    """Symbolic target -> the ARM id of the recorded resource it must resolve to."""
    one = {
        t: run.of_type(f"azure-native:{t}")[0].outputs["id"]
        for t in (
            "keyvault:Vault",
            "containerregistry:Registry",
            "applicationinsights:Component",
            "machinelearningservices:Workspace",
        )
    }
    scopes = {
        "key-vault": one["keyvault:Vault"],
        "container-registry": one["containerregistry:Registry"],
        "app-insights": one["applicationinsights:Component"],
        "workspace": one["machinelearningservices:Workspace"],
        "orchestrator-storage": _by_tag(run, STORAGE, None, PURPOSE_WORKSPACE).outputs["id"],
        "models-storage": _by_tag(run, STORAGE, None, PURPOSE_MODELS).outputs["id"],
        "orchestrator-resource-group": _by_tag(
            run, "azure-native:resources:ResourceGroup", None
        ).outputs["id"],
        "subscription": SUBSCRIPTION,
        **_compute_subnets(run),
    }
    models = _by_tag(run, STORAGE, None, PURPOSE_MODELS).inputs["accountName"]
    workspace = _by_tag(run, STORAGE, None, PURPOSE_WORKSPACE).inputs["accountName"]
    for container in run.of_type("azure-native:storage:BlobContainer"):
        name = container.inputs["containerName"]
        if container.inputs["accountName"] == models:
            scopes[f"models-container:{name}"] = container.outputs["id"]
        if container.inputs["accountName"] == workspace:
            scopes[f"orchestrator-storage-container:{name}"] = container.outputs["id"]
    for cluster in run.of_type("azure-native:containerservice:ManagedCluster"):
        silo = (cluster.inputs.get("tags") or {}).get(TAG_SILO)
        scopes[f"cluster:{silo or 'orchestrator'}"] = cluster.outputs["id"]
    for silo in spec.silo_names:
        account = _by_tag(run, STORAGE, silo)
        scopes[f"silo:{silo}-storage"] = account.outputs["id"]
        for container in run.of_type("azure-native:storage:BlobContainer"):
            if container.inputs["accountName"] == account.inputs["accountName"]:
                scopes[f"silo:{silo}-data-container"] = container.outputs["id"]
        scopes[f"silo:{silo}-resource-group"] = _by_tag(
            run, "azure-native:resources:ResourceGroup", silo
        ).outputs["id"]
    return scopes


def _expected(grant: Grant, principals: dict[Grantee, str], scopes: dict[str, str]) -> tuple:
    principal = (
        grant.grantee.principal_id if grant.grantee.kind == "person" else principals[grant.grantee]
    )
    role_id = (
        f"{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{BUILTIN_ROLES[grant.role]}"
    )
    return principal, grant.principal_type, role_id, scopes[str(grant.target)]


def _actual(assignment: RecordedResource) -> tuple:
    i = assignment.inputs
    return i["principalId"], i.get("principalType"), i["roleDefinitionId"], i["scope"]


def test_role_assignments_are_exactly_the_table(case: tuple[SandboxSpec, MockRun]) -> None:
    spec, run = case
    table = sandbox_access_table(spec)
    principals, scopes = _principals(run, spec), _scopes(run, spec)
    expected = Counter(_expected(g, principals, scopes) for g in table)
    actual = Counter(_actual(r) for r in _table_roles(run))
    assert actual == expected
    fixed = 8 + 4  # the workspace identity's rows, the jobs identity's silo-independent rows
    submitters = len(SUBMITTER_ROLES) * len(spec.submitters)
    silos = GRANTS_PER_SILO * len(spec.silos)
    aks = len(aks_rows(None)) * len(spec.aks_clusters)
    attach = len(attach_rows(None, arc=False)) * len(spec.aks_clusters)  # no Arc silo here
    hbi_aks = len(hbi_aks_rows()) if spec.posture.workspace_private and spec.aks_clusters else 0
    extra = len(spec.extra_role_assignments)
    builder = len(image_builder_rows()) if spec.posture.image_build_compute else 0
    uploaders = sum(len(listed) for listed in spec.data_uploaders.values())
    assert len(table) == (
        fixed + silos + submitters + aks + attach + hbi_aks + extra + builder + uploaders
    )


def _table_roles(run: MockRun) -> list[RecordedResource]:
    """Every role assignment but the jump host's: Reader on its VM, NIC and Bastion host and
    VM login for each person who uses it (``components/jump_host.py``, checked four per
    person in tests/infra/test_jump_host.py and here)."""
    jump = [r for r in run.of_type(ROLE) if r.name.startswith("jump-host-")]
    people = {r.inputs["principalId"] for r in jump}
    assert len(jump) == 4 * len(people)
    return [r for r in run.of_type(ROLE) if r not in jump]


def test_descriptions_say_who_what_why_and_membership(case: tuple[SandboxSpec, MockRun]) -> None:
    spec, run = case
    descriptions = sorted(r.inputs["description"] for r in _table_roles(run))
    assert descriptions == sorted(g.description for g in sandbox_access_table(spec))
    members = {e.principal_id: e.member_of for e in spec.extra_role_assignments if e.member_of}
    for assignment in run.of_type(ROLE):
        member_of = members.get(assignment.inputs["principalId"])
        marker = f"{MEMBER_OF_MARKER}{member_of}"
        assert (marker in assignment.inputs["description"]) == (member_of is not None)
    submitter_rows = [
        r for r in run.of_type(ROLE) if f"[{SUBMITTER_MARKER}]" in r.inputs["description"]
    ]
    assert len(submitter_rows) == len(SUBMITTER_ROLES) * len(spec.submitters)


def test_orchestrator_side_holds_nothing_on_silo_resources(
    case: tuple[SandboxSpec, MockRun],
) -> None:
    spec, run = case
    principals, scopes = _principals(run, spec), _scopes(run, spec)
    silo_scopes = [v for k, v in scopes.items() if k.startswith("silo:")]
    clusters = {v for k, v in scopes.items() if k.startswith("cluster:")}
    attach = {BUILTIN_ROLES[r] for r in ATTACH_ROLES}
    orchestrator_side = {principals[g] for g in (WORKSPACE_IDENTITY, JOBS_IDENTITY, DEPLOYER)}
    for assignment in run.of_type(ROLE):
        if assignment.inputs["principalId"] in orchestrator_side:
            scope = assignment.inputs["scope"]
            role = assignment.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
            if scope in clusters and role in attach:
                # Azure ML attaches a silo's cluster as the workspace identity (rule 20):
                # roles on the cluster only, never on its storage or resource group.
                assert assignment.inputs["principalId"] == principals[WORKSPACE_IDENTITY]
                continue
            assert not any(scope.startswith(s) for s in silo_scopes), scope
            assert scope != SUBSCRIPTION


def test_the_jobs_identity_holds_data_roles_only(case: tuple[SandboxSpec, MockRun]) -> None:
    spec, run = case
    principals, scopes = _principals(run, spec), _scopes(run, spec)
    mine = {
        r.inputs["scope"]: r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
        for r in run.of_type(ROLE)
        if r.inputs["principalId"] == principals[JOBS_IDENTITY]
    }
    reader, writer = BUILTIN_ROLES[BLOB_DATA_READER], BUILTIN_ROLES[BLOB_DATA_CONTRIBUTOR]
    expected = {
        scopes["models-container:global"]: writer,
        scopes["orchestrator-storage"]: reader,
        scopes["orchestrator-storage-container:azureml"]: writer,
        scopes["container-registry"]: BUILTIN_ROLES["AcrPull"],
        **{scopes[f"models-container:silo-{s}"]: reader for s in spec.silo_names},
    }
    assert mine == expected


def test_the_image_builder_runs_as_its_own_identity_that_can_push_and_read_only(
    case: tuple[SandboxSpec, MockRun],
) -> None:
    """Any submitter may send a job to the image builder, so it must not run as the workspace
    identity (vault admin, storage control): its identity pushes images and reads the build
    context, nothing else."""
    spec, run = case
    builders = [
        c
        for c in run.of_type("azure-native:machinelearningservices:Compute")
        if c.inputs["computeName"] == "image-builder"
    ]
    if not spec.posture.image_build_compute:
        assert builders == []
        return
    principals, scopes = _principals(run, spec), _scopes(run, spec)
    (builder,) = builders
    (identity_id,) = builder.inputs["identity"]["userAssignedIdentities"]
    (own,) = [
        r
        for r in run.of_type("azure-native:managedidentity:UserAssignedIdentity")
        if r.outputs["id"] == identity_id
    ]
    assert own.outputs["principalId"] == principals[IMAGE_BUILDER_IDENTITY]
    mine = {
        (r.inputs["scope"], r.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
        for r in run.of_type(ROLE)
        if r.inputs["principalId"] == principals[IMAGE_BUILDER_IDENTITY]
    }
    assert mine == {
        (scopes["container-registry"], BUILTIN_ROLES["AcrPush"]),
        (scopes["orchestrator-storage"], BUILTIN_ROLES[BLOB_DATA_READER]),
    }


def test_silo_identities_reach_only_their_own_things(case: tuple[SandboxSpec, MockRun]) -> None:
    spec, run = case
    principals, scopes = _principals(run, spec), _scopes(run, spec)
    for silo in spec.silo_names:
        mine = [
            r
            for r in run.of_type(ROLE)
            if r.inputs["principalId"] == principals[silo_identity(silo)]
        ]
        reached = {r.inputs["scope"]: r.inputs["roleDefinitionId"] for r in mine}
        assert set(reached) == {
            scopes[f"silo:{silo}-storage"],
            scopes[f"models-container:silo-{silo}"],
            scopes["models-container:global"],
            scopes["container-registry"],
            scopes["orchestrator-storage"],
            scopes["orchestrator-storage-container:azureml"],
            scopes["models-container:signing-keys"],
        }
        # The global model and the workspace storage are read-only for silos.
        for read_only in ("models-container:global", "orchestrator-storage"):
            assert reached[scopes[read_only]].endswith(BUILTIN_ROLES[BLOB_DATA_READER])
        # The signing keys: every silo reads them, and writes only its own (by condition).
        (keys,) = [r for r in mine if r.inputs["scope"] == scopes["models-container:signing-keys"]]
        assert keys.inputs["condition"] == signing_key_condition(silo)
        assert keys.inputs["conditionVersion"] == "2.0"


def test_only_the_silo_and_its_members_hold_roles_on_its_storage(
    case: tuple[SandboxSpec, MockRun],
) -> None:
    spec, run = case
    principals, scopes = _principals(run, spec), _scopes(run, spec)
    for silo in spec.silo_names:
        allowed = (
            {principals[silo_identity(silo)]}
            | {e.principal_id for e in spec.extra_role_assignments if e.member_of == silo}
            | {u.principal_id for u in spec.data_uploaders.get(silo, [])}
        )
        for assignment in run.of_type(ROLE):
            if assignment.inputs["scope"].startswith(scopes[f"silo:{silo}-storage"]):
                assert assignment.inputs["principalId"] in allowed
