"""What each blueprint declares, at 1 and 3 silos: types and counts, tags, names, outputs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from blueprints.mock_runtime import MockRun
from components.vocabulary import naming
from components.vocabulary.conventions import (
    PURPOSE_MODELS,
    PURPOSE_SILO_DATA,
    PURPOSE_WORKSPACE,
    ROLE_ORCHESTRATOR,
    ROLE_SILO,
    TAG_PURPOSE,
    TAG_ROLE,
    TAG_SILO,
)
from fl_jobs.run.manifest import FederationManifest
from tests.infra.helpers import (
    BLUEPRINT_NAMES,
    USER_TAGS,
    blueprint_run,
    blueprint_spec,
    custom,
    owner_component,
    walk_strings,
)

AZ = "azure-native"
RG = f"{AZ}:resources:ResourceGroup"
UAI = f"{AZ}:managedidentity:UserAssignedIdentity"
STORAGE = f"{AZ}:storage:StorageAccount"
CONTAINER = f"{AZ}:storage:BlobContainer"
VAULT = f"{AZ}:keyvault:Vault"
ACR = f"{AZ}:containerregistry:Registry"
LOGS = f"{AZ}:operationalinsights:Workspace"
APPI = f"{AZ}:applicationinsights:Component"
WORKSPACE = f"{AZ}:machinelearningservices:Workspace"
COMPUTE = f"{AZ}:machinelearningservices:Compute"
DATASTORE = f"{AZ}:machinelearningservices:Datastore"
ROLE = f"{AZ}:authorization:RoleAssignment"
NSG = f"{AZ}:network:NetworkSecurityGroup"
VNET = f"{AZ}:network:VirtualNetwork"
SUBNET = f"{AZ}:network:Subnet"
PEERING = f"{AZ}:network:VirtualNetworkPeering"
PE = f"{AZ}:network:PrivateEndpoint"
PE_DNS = f"{AZ}:network:PrivateDnsZoneGroup"
ZONE = f"{AZ}:privatedns:PrivateZone"
LINK = f"{AZ}:privatedns:VirtualNetworkLink"
CLUSTER = f"{AZ}:containerservice:ManagedCluster"
POOL = f"{AZ}:containerservice:AgentPool"
FEDERATED = f"{AZ}:managedidentity:FederatedIdentityCredential"
EXTENSION = f"{AZ}:kubernetesconfiguration:Extension"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NAMESPACE = "kubernetes:core/v1:Namespace"
INSTANCE_TYPE = "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType"
RANDOM = "random:index/randomString:RandomString"
C_ORCH = "fl-sandbox:infra:Orchestrator"
C_SILO = "fl-sandbox:infra:Silo"
C_NET = "fl-sandbox:infra:SiloNetwork"
C_ACCESS = "fl-sandbox:infra:AccessControl"
C_JUMP = "fl-sandbox:infra:JumpHost"
BASTION = f"{AZ}:network:BastionHost"
PUBLIC_IP = f"{AZ}:network:PublicIPAddress"
NIC = f"{AZ}:network:NetworkInterface"
VM = f"{AZ}:compute:VirtualMachine"
VM_EXTENSION = f"{AZ}:compute:VirtualMachineExtension"

# What one silo adds, per blueprint: the same for every silo, however many there are.
PER_SILO: dict[str, Counter[str]] = {
    "minimal": Counter(
        {
            C_SILO: 1,
            RG: 1,
            UAI: 1,
            STORAGE: 1,
            CONTAINER: 2,  # its data container + its update container in the model store
            COMPUTE: 1,
            DATASTORE: 2,  # its data + its updates
            # its identity's seven (one: its signing key, by condition) + the orchestrator's
            # read of its updates + its data uploader's
            ROLE: 8 + 1,
        }
    ),
}
# A VNet whose endpoints subnet has its own NSG (HTTPS from the silo's compute only).
PER_SILO["eyes-on"] = PER_SILO["minimal"] + Counter(
    {C_NET: 1, NSG: 2, VNET: 1, SUBNET: 2, PEERING: 2}
)
# Its storage endpoint, and its VNet linked to every zone (blob, file, AML api, notebooks).
PER_SILO["eyes-off"] = PER_SILO["eyes-on"] + Counter({PE: 1, PE_DNS: 1, LINK: 4})
PER_SILO["private"] = PER_SILO["eyes-off"] + Counter({LINK: 2})  # + vault, registry zones
PER_SILO["hybrid"] = PER_SILO["eyes-on"]  # by default its silos run in Azure, as eyes-on's
# An AKS cluster (control-plane identity and its subnet role, user pool; no workload-identity
# federated credential: Azure ML does not use one) attached through the ML extension, in
# place of an ML cluster; the workspace identity holds Reader, Extension Contributor and
# Cluster Admin on it (rule 20).
AKS_ATTACHED = Counter(
    {
        UAI: 1,
        ROLE: 1 + 3,
        CLUSTER: 1,
        POOL: 1,
        K8S_PROVIDER: 1,
        EXTENSION: 1,
        NAMESPACE: 1,
        INSTANCE_TYPE: 1,
    }
)
PER_SILO["confidential"] = PER_SILO["private"] + AKS_ATTACHED
# Private and confidential build the jump host (the only route to a silo's endpoints); each
# silo's uploader gets its four grants to reach it (Reader on VM, NIC, Bastion; VM login).
for _bp in ("private", "confidential"):
    PER_SILO[_bp] = PER_SILO[_bp] + Counter({ROLE: 4})

# What the orchestrator side holds regardless of the number of silos.
FIXED: dict[str, Counter[str]] = {
    "minimal": Counter(
        {
            RANDOM: 1,
            C_ORCH: 1,
            C_ACCESS: 1,
            RG: 1,
            UAI: 2,  # the workspace's identity, the jobs identity
            STORAGE: 2,  # workspace storage + model store
            CONTAINER: 3,  # global models, signing keys, the workspace storage's log container
            VAULT: 1,
            ACR: 1,
            LOGS: 1,
            APPI: 1,
            WORKSPACE: 1,
            COMPUTE: 1,
            DATASTORE: 1,
            # workspace identity, jobs identity, the deployer as submitter, the test set's uploader
            ROLE: 8 + 4 + 3 + 1,
        }
    ),
}
FIXED["eyes-on"] = FIXED["minimal"] + Counter({C_NET: 1, NSG: 1, VNET: 1, SUBNET: 2})
# Four zones linked to the hub; endpoints for the workspace storage (blob, file), the model
# store and the workspace; the image builder, its own identity and its two roles.
FIXED["eyes-off"] = FIXED["eyes-on"] + Counter(
    {ZONE: 4, LINK: 4, PE: 4, PE_DNS: 4, COMPUTE: 1, UAI: 1, ROLE: 2}
)
# Two more zones (vault, registry) and their endpoints.
FIXED["private"] = FIXED["eyes-off"] + Counter({ZONE: 2, LINK: 2, PE: 2, PE_DNS: 2})
FIXED["hybrid"] = FIXED["eyes-on"]
# Aggregation on an AKS cluster; HBI + AKS: the workspace's system identity's two storage roles.
FIXED["confidential"] = FIXED["private"] + AKS_ATTACHED + Counter({ROLE: 2})
# The jump host behind Bastion (its subnets, NSG, public IP, NIC, VM and sign-in extension)
# and the four grants each of the submitter and the test set's uploader gets to reach it.
JUMP_HOST = Counter(
    {C_JUMP: 1, BASTION: 1, PUBLIC_IP: 1, NIC: 1, NSG: 1, SUBNET: 2, VM: 1, VM_EXTENSION: 1}
)
for _bp in ("private", "confidential"):
    FIXED[_bp] = FIXED[_bp] + JUMP_HOST + Counter({ROLE: 8})

CASES = [(bp, n) for bp in BLUEPRINT_NAMES for n in (1, 3)]
case_ids = [f"{bp}-{n}" for bp, n in CASES]


@pytest.fixture(params=CASES, ids=case_ids)
def case(request: pytest.FixtureRequest) -> tuple[str, int, MockRun]:
    bp, n = request.param
    return bp, n, blueprint_run(bp, n)


def test_resource_types_and_counts(case: tuple[str, int, MockRun]) -> None:
    bp, n, run = case
    expected = FIXED[bp] + Counter({t: c * n for t, c in PER_SILO[bp].items()})
    assert Counter(r.type for r in run.resources) == expected


# --- tags -----------------------------------------------------------------------------------

NOT_TAGGABLE = {CONTAINER, SUBNET, PEERING, PE_DNS, ROLE, DATASTORE, FEDERATED, EXTENSION}
"""Types whose ARM resource has no tags (a datastore's tags live in its properties)."""


def test_untaggable_types_really_take_no_tags() -> None:
    import importlib
    import inspect

    for token in NOT_TAGGABLE - {DATASTORE}:
        _, service, kind = token.split(":")
        args_class = getattr(
            importlib.import_module(f"pulumi_azure_native.{service}"), f"{kind}Args"
        )
        assert "tags" not in inspect.signature(args_class.__init__).parameters, token


def test_every_taggable_resource_is_tagged_with_its_owner(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    checked = 0
    for resource in custom(run):
        if not resource.type.startswith(AZ) or resource.type in NOT_TAGGABLE - {DATASTORE}:
            continue
        tags = (
            resource.inputs["properties"].get("tags")
            if resource.type == DATASTORE
            else resource.inputs.get("tags")
        )
        assert isinstance(tags, dict), f"{resource.name} has no tags"
        assert USER_TAGS.items() <= tags.items(), resource.name
        owner = owner_component(run, resource)
        assert owner is not None, resource.name
        if owner.type == C_SILO:
            silo = owner.name.removeprefix("silo-")
            assert tags[TAG_ROLE] == ROLE_SILO, resource.name
            assert tags[TAG_SILO] == silo, resource.name
        else:
            assert tags[TAG_ROLE] == ROLE_ORCHESTRATOR, resource.name
            assert TAG_SILO not in tags, resource.name
        checked += 1
    assert checked > 10


def test_storage_accounts_say_what_they_hold(case: tuple[str, int, MockRun]) -> None:
    _, n, run = case
    purposes = Counter(r.inputs["tags"][TAG_PURPOSE] for r in run.of_type(STORAGE))
    assert purposes == Counter({PURPOSE_WORKSPACE: 1, PURPOSE_MODELS: 1, PURPOSE_SILO_DATA: n})


# --- names ----------------------------------------------------------------------------------

NAME_RULES = {
    STORAGE: ("accountName", "storage_account"),
    VAULT: ("vaultName", "key_vault"),
    ACR: ("registryName", "container_registry"),
    WORKSPACE: ("workspaceName", "workspace"),
    COMPUTE: ("computeName", "compute"),
    DATASTORE: ("name", "datastore"),
    CONTAINER: ("containerName", "blob_container"),
    RG: ("resourceGroupName", "resource_group"),
    UAI: ("resourceName", "identity"),
    LOGS: ("workspaceName", "log_analytics"),
    APPI: ("resourceName", "app_insights"),
    VNET: ("virtualNetworkName", "network"),
    NSG: ("networkSecurityGroupName", "network"),
    PE: ("privateEndpointName", "network"),
    PEERING: ("virtualNetworkPeeringName", "network"),
    LINK: ("virtualNetworkLinkName", "network"),
}
GLOBALLY_UNIQUE = {STORAGE, VAULT, ACR}


def test_names_follow_azure_rules_and_are_unique(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    seen: set[tuple[str, ...]] = set()
    for resource in custom(run):
        if resource.type not in NAME_RULES:
            continue
        key, kind = NAME_RULES[resource.type]
        name = resource.inputs[key]
        assert naming.RULES[kind].match(name), (resource.type, name)
        # Unique where Azure needs it: globally, or within the parent scope.
        scope = (
            ()
            if resource.type in GLOBALLY_UNIQUE
            else tuple(
                str(resource.inputs.get(k, ""))
                for k in (
                    "resourceGroupName",
                    "workspaceName",
                    "accountName",
                    "virtualNetworkName",
                    "privateZoneName",
                )
            )
        )
        identity = (resource.type, *scope, name)
        assert identity not in seen, identity
        seen.add(identity)


def test_pulumi_names_are_unique(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    urns = [r.urn for r in run.resources]
    assert len(urns) == len(set(urns))


# --- outputs --------------------------------------------------------------------------------


def test_federation_manifest_matches_the_declared_resources(case: tuple[str, int, MockRun]) -> None:
    bp, n, run = case
    spec = blueprint_spec(bp, n)
    manifest = FederationManifest.parse(run.result)  # the whole outputs, as `stack output`
    assert manifest.blueprint == bp
    assert [s.name for s in manifest.silos] == spec.silo_names
    assert [s.region for s in manifest.silos] == [s.region for s in spec.silos]
    assert all(s.kind == "internal" for s in manifest.silos)

    workspace = run.of_type(WORKSPACE)[0]
    assert manifest.workspace is not None
    assert manifest.workspace.name == workspace.inputs["workspaceName"]
    assert manifest.workspace.region == spec.region
    assert manifest.workspace.resource_group == workspace.inputs["resourceGroupName"]

    computes = {r.inputs["computeName"]: r for r in run.of_type(COMPUTE)}
    datastores = {r.inputs["name"]: r for r in run.of_type(DATASTORE)}
    identities = {r.outputs["id"]: r for r in run.of_type(UAI)}
    assert manifest.orchestrator.compute in computes
    assert manifest.orchestrator.datastore in datastores
    clusters = {r.outputs["id"]: r for r in run.of_type(CLUSTER)}
    for silo in manifest.silos:
        compute = computes[silo.compute]
        properties = compute.inputs["properties"]
        if silo.compute_type == "kubernetes":
            assert properties["computeType"] == "Kubernetes"
            assert clusters[properties["resourceId"]].inputs["location"] == silo.region
            assert silo.instance_type == properties["properties"]["defaultInstanceType"]
        else:
            assert properties["computeLocation"] == silo.region
        assert compute.inputs["location"] == spec.region  # the workspace's
        (identity_id,) = compute.inputs["identity"]["userAssignedIdentities"]
        assert identities[identity_id].outputs["clientId"] == silo.identity_client_id
        assert identities[identity_id].inputs["tags"][TAG_SILO] == silo.name
        store = datastores[silo.datastore]
        account = store.inputs["properties"]["accountName"]
        owners = [
            r.inputs["tags"] for r in run.of_type(STORAGE) if r.inputs["accountName"] == account
        ]
        assert owners == [owners[0]] and owners[0][TAG_SILO] == silo.name


def test_outputs_hold_no_secret(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    secretish = re.compile(
        r"(?i)(accountkey=|sharedaccesssignature|[?&]sig=|password|connectionstring|"
        r"instrumentationkey|primarykey|secondarykey|-----begin)"
    )
    for path, text in walk_strings(run.result):
        assert not secretish.search(text), (path, text)


def test_outputs_describe_the_sandbox(case: tuple[str, int, MockRun]) -> None:
    bp, n, run = case
    spec = blueprint_spec(bp, n)
    outputs = run.result
    assert outputs["blueprint"] == bp
    assert set(outputs["silo_resource_groups"]) == set(spec.silo_names)
    assert len(outputs["storage_accounts"]) == n + 2
    assert set(outputs["model_store"]["update_datastores"]) == set(spec.silo_names)
    assert ("network" in outputs) == (bp != "minimal")
    (submitter,) = outputs["submitters"]
    assert submitter["deployer"] and submitter["ip_ranges"] == spec.submitter_ip_ranges
    assert submitter["network"] == ("hub" if bp in ("private", "confidential") else "internet")
    assert outputs["image_build_compute"] == (
        "image-builder" if bp in ("eyes-off", "private", "confidential") else ""
    )


def test_no_code_ever_lists_keys() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [
        root / "__main__.py",
        *(root / "components").rglob("*.py"),
        *(root / "blueprints").rglob("*.py"),
    ]
    for path in sources:
        assert not re.search(r"list\w*keys|connection_string", path.read_text(), re.I), path
