"""Kubernetes silos under mocks: the hybrid (2 AML + 2 Arc) and confidential (2 AKS) sample
stacks deploy what the Azure ML and Arc docs ask for, in the order they ask for it, through
each cluster's own provider, and break isolation only where the checks say so."""

from __future__ import annotations

import base64
import copy
import itertools
import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from blueprints.mock_runtime import MockRun, RecordedResource
from blueprints.plan import Plan
from components.arc_keys import agent_public_key_certificate
from components.kubernetes.aks import POOL_SELECTOR
from components.kubernetes.arc_onboarding import CHART, RELEASE_NAME, RELEASE_NAMESPACE
from components.kubernetes.data_volume import MOUNT_ANNOTATION, PVC_LABEL
from components.kubernetes.instance_types import GPU_RESOURCE
from components.vocabulary.builtin_roles import (
    BLOB_DATA_CONTRIBUTOR,
    BUILTIN_ROLES,
    NETWORK_CONTRIBUTOR,
)
from components.vocabulary.vm_sizes import vm_size
from policies.graph import ResourceGraph
from policies.invariants import check_graph
from tests.infra.known_gaps import marked
from tests.infra.kubernetes_runs import agent_key, stack_run, stack_spec

AZ = "azure-native"
COMPUTE = f"{AZ}:machinelearningservices:Compute"
CONNECTED = f"{AZ}:kubernetes:ConnectedCluster"
AKS = f"{AZ}:containerservice:ManagedCluster"
POOL = f"{AZ}:containerservice:AgentPool"
EXTENSION = f"{AZ}:kubernetesconfiguration:Extension"
ROLE = f"{AZ}:authorization:RoleAssignment"
UAI = f"{AZ}:managedidentity:UserAssignedIdentity"
RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
INSTANCE_TYPE = "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType"
PV = "kubernetes:core/v1:PersistentVolume"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
K8S_PROVIDER = "pulumi:providers:kubernetes"
WAIT = "pulumi-python:dynamic:Resource"


def one(run: MockRun, type_token: str, name: str) -> RecordedResource:
    (found,) = [r for r in run.resources if r.type == type_token and r.name == name]
    return found


def of_silo(run: MockRun, silo: str) -> list[RecordedResource]:
    """Everything declared (or read) under the silo's component (its data roles belong to
    the access-control component, which grants the whole permissions table)."""
    by_urn = run.by_urn()
    (component,) = [r for r in run.resources if r.name == f"silo-{silo}" and not r.custom]
    found = []
    for record in run.resources:
        parent = record.parent
        while parent and parent in by_urn and parent != component.urn:
            parent = by_urn[parent].parent
        if parent == component.urn and record.custom:
            found.append(record)
    return found


def secret_at(record: RecordedResource, path: str) -> bool:
    """Whether the input at ``path`` is secret (itself, or a value containing it)."""
    return any(path == p or path.startswith(f"{p}.") for p in record.secret_inputs)


def graph_of(run: MockRun) -> ResourceGraph:
    return ResourceGraph.build(run.resources, json.loads(json.dumps(run.result)))


# ----- both sample stacks plan cleanly -----------------------------------------------------------


@pytest.mark.parametrize("blueprint", marked(["hybrid", "confidential"]))
def test_sample_stack_plans_cleanly(blueprint: str) -> None:
    plan = Plan(stack_spec(blueprint), stack_run(blueprint))
    assert plan.violations == [] and plan.manifest_error is None and plan.ok


AML_SILO = Counter(
    {
        f"{AZ}:resources:ResourceGroup": 1,
        UAI: 1,
        f"{AZ}:storage:StorageAccount": 1,
        f"{AZ}:storage:BlobContainer": 1,
        f"{AZ}:machinelearningservices:Datastore": 1,
        COMPUTE: 1,
        f"{AZ}:network:VirtualNetwork": 1,
        f"{AZ}:network:NetworkSecurityGroup": 2,  # the compute subnet's, the endpoints'
        f"{AZ}:network:Subnet": 2,
        f"{AZ}:network:VirtualNetworkPeering": 2,
    }
)
# The workspace identity's Reader, Extension Contributor and Cluster Admin on the cluster.
ATTACHED = Counter(
    {K8S_PROVIDER: 1, EXTENSION: 1, NAMESPACE: 1, INSTANCE_TYPE: 1, COMPUTE: 1, ROLE: 3}
)
RELAY = Counter({ROLE: 1})  # Arc: Azure Relay Owner on the cluster's resource group
ARC_BASE = Counter(
    {
        f"{AZ}:resources:ResourceGroup": 1,
        UAI: 1,
        f"{AZ}:storage:StorageAccount": 1,
        f"{AZ}:storage:BlobContainer": 1,
        f"{AZ}:machinelearningservices:Datastore": 1,
        CONNECTED: 1,
    }
)
SILO_TYPES = {
    ("hybrid", "bank-a"): AML_SILO,
    ("hybrid", "bank-b"): AML_SILO,
    # Onboarded: its own onboarding provider, the agents' release, the wait, a data volume.
    ("hybrid", "bank-c"): ARC_BASE
    + ATTACHED
    + RELAY
    + Counter({K8S_PROVIDER: 1, RELEASE: 1, WAIT: 1, PV: 1, PVC: 1}),
    ("hybrid", "bank-d"): ARC_BASE + ATTACHED + RELAY,  # its connected cluster is read, not created
    ("confidential", "hospital-a"): AML_SILO
    - Counter({COMPUTE: 1})
    + ATTACHED
    + Counter(
        {
            UAI: 1,  # the control plane's
            ROLE: 1,  # its Network Contributor on the subnet, granted by the silo first
            AKS: 1,
            POOL: 1,
            f"{AZ}:network:PrivateEndpoint": 1,
            f"{AZ}:network:PrivateDnsZoneGroup": 1,
            f"{AZ}:privatedns:VirtualNetworkLink": 6,
            f"{AZ}:network:NatGateway": 1,
            f"{AZ}:network:PublicIPAddress": 1,
        }
    ),
}
# hospital-b brings its own storage account: read, not created, no data container declared.
SILO_TYPES[("confidential", "hospital-b")] = SILO_TYPES[("confidential", "hospital-a")] - Counter(
    {f"{AZ}:storage:BlobContainer": 1}
)


@pytest.mark.parametrize(("blueprint", "silo"), list(SILO_TYPES), ids=lambda v: str(v))
def test_each_silo_kind_declares_its_resources(blueprint: str, silo: str) -> None:
    records = of_silo(stack_run(blueprint), silo)
    assert Counter(r.type for r in records) == SILO_TYPES[(blueprint, silo)]
    read = [r for r in records if r.read]
    expected_read = {"bank-d": CONNECTED, "hospital-b": f"{AZ}:storage:StorageAccount"}
    assert [r.type for r in read] == ([expected_read[silo]] if silo in expected_read else [])


def test_read_resources_are_listed_apart_in_the_plan() -> None:
    plan = Plan(stack_spec("confidential"), stack_run("confidential"))
    doc = plan.to_dict()
    (read,) = doc["read_resources"]
    assert read["id"] == stack_spec("confidential").silo("hospital-b").storage.account_id
    assert read["name"] not in {r["name"] for r in doc["resources"]}
    assert doc["resource_count"] == len(doc["resources"])


# ----- Arc onboarding: the key, the release, the order ------------------------------------------


def test_the_agent_key_reaches_arm_as_pkcs1_der_and_the_chart_as_pem() -> None:
    run = stack_run("hybrid")
    cluster = one(run, CONNECTED, "silo-bank-c-connected-cluster")
    certificate = cluster.inputs["agentPublicKeyCertificate"]
    assert certificate.startswith("MIICCgKCAgEA")  # PKCS#1 RSAPublicKey, 4096 bits
    assert certificate == agent_public_key_certificate(agent_key())
    public = serialization.load_der_public_key(base64.b64decode(certificate))
    private = serialization.load_pem_private_key(agent_key().encode(), password=None)
    assert isinstance(public, rsa.RSAPublicKey) and isinstance(private, rsa.RSAPrivateKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    release = one(run, RELEASE, "silo-bank-c-arc-agents")
    pem = release.inputs["values"]["global"]["onboardingPrivateKey"]
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert secret_at(release, "values.global.onboardingPrivateKey")


def test_the_agents_release_is_pinned_and_never_updates_itself() -> None:
    run = stack_run("hybrid")
    spec = stack_spec("hybrid").silo("bank-c")
    release = one(run, RELEASE, "silo-bank-c-arc-agents")
    inputs = release.inputs
    assert (inputs["name"], inputs["namespace"], inputs["chart"]) == (
        RELEASE_NAME,
        RELEASE_NAMESPACE,
        CHART,
    )
    assert inputs["version"] == spec.arc.chart_version == "1.21.10"
    values = inputs["values"]
    assert values["systemDefaultValues"]["azureArcAgents"]["autoUpdate"] is False
    assert values["systemDefaultValues"]["spnOnboarding"] is False
    assert values["systemDefaultValues"]["clusterconnect-agent"]["enabled"] is True
    cluster = one(run, CONNECTED, "silo-bank-c-connected-cluster")
    assert values["global"]["resourceName"] == cluster.inputs["clusterName"] == "arc-bank-c"
    assert values["global"]["location"] == cluster.inputs["location"] == spec.region
    assert values["global"]["kubernetesDistro"] == cluster.inputs["distribution"] == "k3s"
    assert cluster.inputs["identity"] == {"type": "SystemAssigned"}


def test_no_secret_is_shown_in_plain_text() -> None:
    """The plan a reviewer reads (its JSON document) and the stack outputs hold neither the
    agents' key nor any kubeconfig."""
    run = stack_run("hybrid")
    document = json.dumps(Plan(stack_spec("hybrid"), run).to_dict())
    outputs = json.dumps(run.result)
    for text in (document, outputs):
        assert (
            "PRIVATE KEY" not in text and "admin-token" not in text and "kind: Config" not in text
        )
    providers = [r for r in run.resources if r.type == K8S_PROVIDER]
    assert providers and all(secret_at(p, "kubeconfig") for p in providers)


def waits(run: MockRun, later: RecordedResource, earlier: RecordedResource) -> bool:
    graph = graph_of(run)
    return graph.waits_for(graph.by_urn[later.urn], graph.by_urn[earlier.urn])


def test_onboarding_runs_in_order_cluster_release_wait_extension_objects_compute() -> None:
    run = stack_run("hybrid")
    s = "silo-bank-c"
    chain = [
        one(run, CONNECTED, f"{s}-connected-cluster"),
        one(run, RELEASE, f"{s}-arc-agents"),
        one(run, WAIT, f"{s}-arc-connected"),
        one(run, EXTENSION, f"{s}-azureml-extension"),
    ]
    in_cluster = [
        one(run, NAMESPACE, f"{s}-namespace"),
        one(run, INSTANCE_TYPE, f"{s}-instance-type-cpu-medium"),
    ]
    compute = one(run, COMPUTE, f"{s}-compute")
    for earlier, later in itertools.pairwise(chain):
        assert waits(run, later, earlier), (later.name, earlier.name)
    for item in in_cluster:
        assert waits(run, item, chain[-1]) and waits(run, compute, item)
    for volume in (one(run, PV, f"{s}-pv"), one(run, PVC, f"{s}-pvc")):
        assert waits(run, volume, in_cluster[0]) and waits(run, compute, volume)
    # The wait polls the cluster the release connects.
    assert chain[2].inputs["cluster_id"] == chain[0].outputs["id"]


def test_an_existing_cluster_is_read_and_attached_in_order() -> None:
    run = stack_run("hybrid")
    spec = stack_spec("hybrid").silo("bank-d")
    cluster = one(run, CONNECTED, "silo-bank-d-connected-cluster")
    assert cluster.read and cluster.id == spec.arc.cluster_id
    extension = one(run, EXTENSION, "silo-bank-d-azureml-extension")
    assert extension.inputs["resourceGroupName"] == "rg-site-d-arc"
    assert extension.inputs["clusterName"] == "site-d"
    compute = one(run, COMPUTE, "silo-bank-d-compute")
    assert compute.inputs["properties"]["resourceId"] == spec.arc.cluster_id
    for item in (
        one(run, NAMESPACE, "silo-bank-d-namespace"),
        one(run, INSTANCE_TYPE, "silo-bank-d-instance-type-gpu-1"),
    ):
        assert waits(run, item, extension) and waits(run, compute, item)
    assert extension.inputs["configurationSettings"]["installNvidiaDevicePlugin"] == "True"


@pytest.mark.parametrize("blueprint", ["hybrid", "confidential"])
def test_kubernetes_objects_go_to_their_own_silos_cluster(blueprint: str) -> None:
    run = stack_run(blueprint)
    by_urn = run.by_urn()
    kube = [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert kube
    for record in kube:
        provider = by_urn[record.provider_urn]  # never the default provider
        assert provider.type == K8S_PROVIDER
        assert provider.parent == record.parent, (record.name, provider.name)
    # AKS: each provider's kubeconfig is its own cluster's admin credential.
    for cluster in run.of_type(AKS):
        (provider,) = [
            p
            for p in run.of_type(K8S_PROVIDER)
            if p.parent == cluster.parent and "onboarding" not in p.name
        ]
        assert f"https://{cluster.inputs['resourceName']}.mock" in provider.inputs["kubeconfig"]


# ----- instance types, confidential pools ------------------------------------------------------


@pytest.mark.parametrize("blueprint", ["hybrid", "confidential"])
def test_instance_types_match_the_config_and_the_compute(blueprint: str) -> None:
    run, spec = stack_run(blueprint), stack_spec(blueprint)
    for silo in spec.silos:
        if silo.kind == "aml":
            continue
        compute = one(run, COMPUTE, f"silo-{silo.name}-compute")
        listed = compute.inputs["properties"]["properties"]["instanceTypes"]
        assert list(listed) == [t.name for t in silo.instance_types]
        for wanted in silo.instance_types:
            declared = one(run, INSTANCE_TYPE, f"silo-{silo.name}-instance-type-{wanted.name}")
            expected = {"cpu": wanted.cpu, "memory": wanted.memory}
            if wanted.gpu:
                expected[GPU_RESOURCE] = str(wanted.gpu)
            body = declared.inputs["spec"]
            assert body["resources"] == {"requests": expected, "limits": expected}
            selector = POOL_SELECTOR if silo.kind == "aks" else {}
            assert body["nodeSelector"] == selector == listed[wanted.name]["nodeSelector"]
            assert listed[wanted.name]["resources"]["limits"] == expected
        assert compute.inputs["properties"]["properties"]["defaultInstanceType"] == (
            silo.instance_types[0].name
        )


def test_confidential_pools_carry_the_label_the_extension_and_types_select() -> None:
    run, spec = stack_run("confidential"), stack_spec("confidential")
    pools = {p.inputs["resourceName"]: p for p in run.of_type(POOL)}
    for cluster in run.of_type(AKS):
        pool = pools[cluster.inputs["resourceName"]]
        assert vm_size(pool.inputs["vmSize"]).confidential
        assert pool.inputs["nodeLabels"] == POOL_SELECTOR and pool.inputs["mode"] == "User"
        assert cluster.inputs["disableLocalAccounts"] is False
        assert cluster.inputs["oidcIssuerProfile"] == {"enabled": True}
        assert cluster.inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}
    sizes = {p.inputs["vmSize"] for p in pools.values()}
    assert sizes == {"Standard_DC8as_v5", "Standard_DC4ads_v5", spec.aggregation_pool.vm_size}
    hospital_a = pools[one(run, AKS, "silo-hospital-a-aks").inputs["resourceName"]]
    assert (hospital_a.inputs["minCount"], hospital_a.inputs["maxCount"]) == (1, 3)
    for extension in run.of_type(EXTENSION):
        settings = extension.inputs["configurationSettings"]
        assert {k: v for k, v in settings.items() if k.startswith("nodeSelector.")} == {
            f"nodeSelector.{k}": v for k, v in POOL_SELECTOR.items()
        }
        assert extension.inputs["clusterRp"] == "Microsoft.ContainerService"


def test_aggregation_runs_on_a_confidential_pool_as_the_jobs_identity() -> None:
    run = stack_run("confidential")
    manifest = run.result["federation"]
    compute = one(run, COMPUTE, "orchestrator-aggregation-compute")
    assert compute.inputs["computeName"] == manifest["orchestrator"]["compute"]
    assert manifest["orchestrator"]["compute_type"] == "kubernetes"
    assert manifest["orchestrator"]["instance_type"] == "aggregation"
    (identity_id,) = compute.inputs["identity"]["userAssignedIdentities"]
    identities = {r.outputs["id"]: r for r in run.of_type(UAI)}
    assert identities[identity_id].inputs["tags"]["fl-sandbox-purpose"] == "jobs"


def test_on_premises_data_is_a_read_only_claim_the_extension_mounts() -> None:
    run, spec = stack_run("hybrid"), stack_spec("hybrid").silo("bank-c")
    volume, claim = one(run, PV, "silo-bank-c-pv"), one(run, PVC, "silo-bank-c-pvc")
    assert volume.inputs["spec"]["nfs"] == {
        "server": spec.data_volume.nfs_server,
        "path": spec.data_volume.nfs_path,
        "readOnly": True,
    }
    assert volume.inputs["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert volume.inputs["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert volume.inputs["spec"]["claimRef"] == {
        "namespace": spec.namespace,
        "name": claim.inputs["metadata"]["name"],
    }
    assert claim.inputs["metadata"]["namespace"] == spec.namespace
    assert claim.inputs["metadata"]["labels"] == {PVC_LABEL: "true"}
    assert claim.inputs["metadata"]["annotations"] == {MOUNT_ANNOTATION: "/mnt/silo-data"}
    entry = next(s for s in run.result["federation"]["silos"] if s["name"] == "bank-c")
    assert entry["data_mount"] == "/mnt/silo-data" and entry["kind"] == "external"


# ----- roles ----------------------------------------------------------------------------------


def _role(record: RecordedResource) -> str:
    guid = record.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
    return next(name for name, g in BUILTIN_ROLES.items() if g == guid)


def test_each_silo_identity_holds_data_roles_on_its_own_storage_even_an_existing_one() -> None:
    for blueprint in ("hybrid", "confidential"):
        run, spec = stack_run(blueprint), stack_spec(blueprint)
        for silo in spec.silos:
            identity = one(run, UAI, f"silo-{silo.name}-identity")
            storage_id = (
                silo.storage.account_id
                if silo.storage is not None
                else one(run, f"{AZ}:storage:StorageAccount", f"silo-{silo.name}-storage").outputs[
                    "id"
                ]
            )
            on_storage = [r for r in run.of_type(ROLE) if r.inputs["scope"] == storage_id]
            assert [(_role(r), r.inputs["principalId"]) for r in on_storage] == [
                (BLOB_DATA_CONTRIBUTOR, identity.outputs["principalId"])
            ]


def test_an_aks_control_plane_holds_network_contributor_on_its_subnet_only() -> None:
    run = stack_run("confidential")
    for cluster in run.of_type(AKS):
        (uai_id,) = cluster.inputs["identity"]["userAssignedIdentities"]
        identity = next(r for r in run.of_type(UAI) if r.outputs["id"] == uai_id)
        held = [
            r
            for r in run.of_type(ROLE)
            if r.inputs["principalId"] == identity.outputs["principalId"]
        ]
        (grant,) = held
        pool = next(
            p
            for p in run.of_type(POOL)
            if p.inputs["resourceName"] == cluster.inputs["resourceName"]
        )
        assert _role(grant) == NETWORK_CONTRIBUTOR
        assert grant.inputs["scope"] == pool.inputs["vnetSubnetID"]
        assert waits(run, cluster, grant)


# ----- isolation broken on a Kubernetes silo is named ------------------------------------------


def _broken(run: MockRun, records: list[RecordedResource], outputs: Any = None) -> dict[str, list]:
    graph = ResourceGraph.build(records, outputs if outputs is not None else run.result)
    return {k: v for k, v in check_graph(graph).items() if v}


def test_a_kubernetes_silo_identity_granted_another_silos_storage_is_named() -> None:
    run = stack_run("hybrid")
    mine = one(
        run, ROLE, "ra-silo-bank-c-identity-storage-blob-data-contributor-silo-bank-c-storage"
    )
    other = one(run, f"{AZ}:storage:StorageAccount", "silo-bank-d-storage")
    stray = replace(
        mine,
        urn=mine.urn + "-stray",
        name="stray-grant",
        inputs={**mine.inputs, "scope": other.outputs["id"]},
        outputs={**mine.outputs, "scope": other.outputs["id"]},
    )
    found = _broken(run, [*run.resources, stray])
    assert {"cross-silo-isolation", "silo-data-access"} <= set(found)
    assert any(v.resource_name == "stray-grant" for v in found["cross-silo-isolation"])


def test_a_kubernetes_compute_attached_with_another_silos_identity_is_named() -> None:
    run = stack_run("hybrid")
    other = one(run, UAI, "silo-bank-d-identity").outputs["id"]
    records = []
    for record in run.resources:
        if record.name == "silo-bank-c-compute":
            inputs = copy.deepcopy(record.inputs)
            inputs["identity"]["userAssignedIdentities"] = [other]
            record = replace(record, inputs=inputs, outputs={**record.outputs, **inputs})
        records.append(record)
    found = _broken(run, records)
    assert [v.resource_name for v in found["compute-placement"]] == ["silo-bank-c-compute"]


@pytest.mark.parametrize("blueprint", ["hybrid", "confidential"])
def test_an_exported_kubeconfig_is_named(blueprint: str) -> None:
    run = stack_run(blueprint)
    providers = [p for p in run.of_type(K8S_PROVIDER) if "onboarding" not in p.name]
    outputs = {**run.result, "cluster_access": {"kubeconfig": providers[0].inputs["kubeconfig"]}}
    found = _broken(run, run.resources, json.loads(json.dumps(outputs)))
    names = {v.resource_name for v in found["no-secret-outputs"]}
    assert "outputs.cluster_access.kubeconfig" in names
    # Under another name too: recognised by its content.
    outputs = {**run.result, "access": providers[0].inputs["kubeconfig"]}
    found = _broken(run, run.resources, json.loads(json.dumps(outputs)))
    assert {v.resource_name for v in found["no-secret-outputs"]} == {"outputs.access"}


def test_install_prom_op_keeps_its_documented_default_and_a_silo_can_opt_out() -> None:
    """installPromOp defaults to true (Microsoft Learn: "Set to False to reuse the existing
    prometheus operator"); a silo whose cluster already runs one sets installPromOp: false."""
    from tests.infra.helpers import run_spec

    run = stack_run("hybrid")
    assert {e.inputs["configurationSettings"]["installPromOp"] for e in run.of_type(EXTENSION)} == {
        "True"
    }
    spec = stack_spec("hybrid")
    silos = [
        s.model_copy(update={"install_prom_op": False}) if s.name == "bank-c" else s
        for s in spec.silos
    ]
    opted = run_spec(spec.model_copy(update={"silos": silos}))
    settings = {
        e.name: e.inputs["configurationSettings"]["installPromOp"] for e in opted.of_type(EXTENSION)
    }
    assert settings.pop("silo-bank-c-azureml-extension") == "False"
    assert settings and set(settings.values()) == {"True"}


def test_an_existing_arc_cluster_in_another_subscription_is_refused_by_rule_26() -> None:
    from blueprints.plan import _plain
    from policies.azure_rules import attach_subscription
    from policies.graph import ResourceGraph
    from tests.infra.helpers import run_spec

    assert (
        attach_subscription.check(
            ResourceGraph.build(stack_run("hybrid").resources, _plain(stack_run("hybrid").result))
        )
        == []
    )
    spec = stack_spec("hybrid")
    other = (
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-site-d-arc"
        "/providers/Microsoft.Kubernetes/connectedClusters/site-d"
    )
    silos = [
        s.model_copy(update={"arc": s.arc.model_copy(update={"cluster_id": other})})
        if s.name == "bank-d"
        else s
        for s in spec.silos
    ]
    run = run_spec(spec.model_copy(update={"silos": silos}))
    found = attach_subscription.check(ResourceGraph.build(run.resources, _plain(run.result)))
    assert len(found) == 1 and "silo-bank-d-compute" in found[0].resource_name
    assert "11111111-2222-3333-4444-555555555555" in found[0].problem
    assert "az connectedk8s connect" in found[0].fix


@pytest.mark.parametrize("blueprint", ["hybrid", "confidential"])
def test_no_identity_gets_a_workload_identity_federated_credential(blueprint: str) -> None:
    """Azure ML jobs on Kubernetes do not use workload identity (the extension gets their
    tokens); a credential would let whoever may create pods in the namespace (a cluster admin,
    the workspace identity attach makes AKS Cluster Admin) act as a silo or the jobs identity."""
    run = stack_run(blueprint)
    assert not run.of_type(f"{AZ}:managedidentity:FederatedIdentityCredential")
