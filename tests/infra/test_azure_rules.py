"""Azure's own rules over real blueprint runs: every blueprint keeps them, every break is named.

Each test breaks one rule the way a mistake would arrive (a resource left out, a property
changed, a dependency dropped) and checks the rule names the resource that breaks it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blueprints.catalog import BLUEPRINT_NAMES
from blueprints.mock_runtime import MOCK_SUBSCRIPTION
from blueprints.plan import _plain
from policies.azure_rules import RULES, check_rules
from policies.violation import Violation
from tests.infra.blueprint_runs import blueprint_run
from tests.infra.breaks import (
    Records,
    edited,
    graph,
    named,
    nested_set,
    one,
    run_of,
    typed,
    undepended,
    without,
)
from tests.infra.kubernetes_runs import stack_run

LOGS_RA = (
    "ra-silo-silo1-identity-storage-blob-data-contributor-orchestrator-storage-container-azureml"
)


def broken(records: Records, outputs: dict[str, Any], rule_id: str) -> list[Violation]:
    found = check_rules(graph(records, outputs))[rule_id]
    assert found, f"{rule_id} did not report the break"
    return found


def names(violations: list[Violation]) -> set[str]:
    return {v.resource_name for v in violations}


@pytest.mark.parametrize("silos", [1, 3])
@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_every_blueprint_keeps_every_azure_rule(blueprint: str, silos: int) -> None:
    run = blueprint_run(blueprint, silos)
    results = check_rules(graph(run.resources, run.result))
    assert list(results) == [r.id for r in RULES]
    assert {k: [str(v) for v in vs] for k, vs in results.items() if vs} == {}


def test_rules_cite_their_sources_and_numbers_follow_the_notes() -> None:
    numbers = [r.number for r in RULES]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert set(range(1, 13)) <= set(numbers)  # notes' rules 1-12 (13 is the job's, in dataflow)
    for rule in RULES:
        assert rule.id.startswith(f"azure-{rule.number}-")
        assert len(rule.source) > 20, rule.id
        assert rule.check.__module__.startswith("policies.azure_rules.")
        doc = __import__(rule.check.__module__, fromlist=["x"]).__doc__ or ""
        assert "Source:" in doc, rule.id


# ----- rule 1: workspace private endpoint ---------------------------------------------------------


def test_1_without_the_workspace_endpoint_private_computes_are_refused() -> None:
    records, outputs = run_of("eyes-off")
    records = without(
        records, lambda r: "pe-ws-amlworkspace" in r.name or "dns-ws-amlworkspace" in r.name
    )
    found = broken(records, outputs, "azure-1-workspace-endpoint")
    assert names(found) == {
        "orchestrator-compute",
        "orchestrator-image-builder",
        "silo-silo1-compute",
        "silo-silo2-compute",
    }
    assert all("private endpoint (group 'amlworkspace')" in v.problem for v in found)


def test_1_a_compute_created_before_the_endpoint_is_named() -> None:
    records, outputs = run_of("eyes-off")
    records = undepended(records, named("silo-silo2-compute"), lambda r: "amlworkspace" in r.name)
    found = broken(records, outputs, "azure-1-workspace-endpoint")
    assert names(found) == {"silo-silo2-compute"}
    assert "not created after" in found[0].problem


def test_1_an_unlinked_aml_zone_is_named() -> None:
    records, outputs = run_of("eyes-off")
    records = without(records, named("silo-silo1-network-link-notebooks"))
    found = broken(records, outputs, "azure-1-workspace-endpoint")
    assert names(found) == {"silo-silo1-compute"}
    assert "privatelink.notebooks.azure.net" in found[0].problem


# ----- rule 2: Premium registry -------------------------------------------------------------------


def test_2_a_basic_registry_with_a_private_endpoint_is_named() -> None:
    records, outputs = run_of("private")
    records = edited(records, typed("Registry"), nested_set("sku.name", "Standard"))
    found = broken(records, outputs, "azure-2-premium-registry")
    assert names(found) == {"orchestrator-acr"}
    assert "'Standard'" in found[0].problem and "private endpoint" in found[0].problem


# ----- rule 3: hbi at creation --------------------------------------------------------------------


def test_3_hbi_left_unset_is_named() -> None:
    records, outputs = run_of("private")
    records = edited(records, typed("Workspace", "workspace"), lambda p: p.pop("hbiWorkspace"))
    found = broken(records, outputs, "azure-3-hbi-at-creation")
    assert names(found) == {"orchestrator-workspace"}


def test_3_hbi_without_replace_on_change_is_named() -> None:
    from dataclasses import replace

    records, outputs = run_of("private")
    records = [
        replace(r, options={"protect": True}) if r.name == "orchestrator-workspace" else r
        for r in records
    ]
    found = broken(records, outputs, "azure-3-hbi-at-creation")
    assert "replaceOnChanges" in found[0].problem


@pytest.mark.parametrize("blueprint", ["eyes-off", "private"])
def test_3_a_workspace_name_that_ignores_the_hbi_flag_is_named(blueprint: str) -> None:
    records, outputs = run_of(blueprint)
    flip = edited(
        records,
        named("orchestrator-workspace"),
        lambda p: p.update(hbiWorkspace=not p.get("hbiWorkspace", False)),
    )
    found = broken(flip, outputs, "azure-3-hbi-at-creation")
    assert names(found) == {"orchestrator-workspace"} and "soft delete" in found[0].problem


def test_3_delete_before_replace_is_named() -> None:
    from dataclasses import replace

    records, outputs = run_of("private")
    records = [
        replace(r, options={**r.options, "deleteBeforeReplace": True})
        if r.name == "orchestrator-workspace"
        else r
        for r in records
    ]
    found = broken(records, outputs, "azure-3-hbi-at-creation")
    assert "deleted before its replacement" in found[0].problem


# ----- rule 4: one writer at a time per DNS zone --------------------------------------------------


def test_4_a_parallel_write_to_a_zone_is_named() -> None:
    records, outputs = run_of("eyes-off", 3)
    records = undepended(records, named("silo-silo2-network-link-blob"), lambda r: True)
    found = broken(records, outputs, "azure-4-dns-writes-serialised")
    assert "privatelink.blob.core.windows.net" in found[0].problem
    assert found[0].resource_type.endswith(("VirtualNetworkLink", "PrivateDnsZoneGroup"))


# ----- rule 5: container-scoped roles after their container ---------------------------------------


def test_5_a_container_role_not_waiting_for_its_container_is_named() -> None:
    records, outputs = run_of("minimal")
    ra = "ra-silo-silo1-identity-storage-blob-data-contributor-models-container-silo-silo1"
    records = undepended(records, named(ra), typed("BlobContainer"))
    found = broken(records, outputs, "azure-5-container-scope-order")
    assert names(found) == {ra}


def test_5_a_container_the_stack_does_not_declare_is_named() -> None:
    records, outputs = run_of("minimal")
    records = without(records, named("orchestrator-ws-logs"))
    found = broken(records, outputs, "azure-5-container-scope-order")
    assert all("does not declare" in v.problem for v in found)
    assert len(found) == 3  # the jobs identity and both silos write logs there


# ----- rules 6 and 7: submitters ------------------------------------------------------------------


def test_6_a_submitter_without_the_file_role_is_named() -> None:
    records, outputs = run_of("eyes-on")
    records = without(
        records, named("ra-deployer-storage-file-data-privileged-contributor-orchestrator-storage")
    )
    found = broken(records, outputs, "azure-6-submitter-storage-roles")
    assert names(found) == {"orchestrator-ws-storage"}
    assert "Storage File Data Privileged Contributor" in found[0].problem


def test_7_a_submitter_address_outside_the_ip_rules_is_named() -> None:
    records, outputs = run_of("eyes-off")
    outputs["submitters"][0]["ip_ranges"] = ["192.0.2.10"]
    found = broken(records, outputs, "azure-7-submitter-storage-network")
    assert names(found) == {"orchestrator-ws-storage"}
    assert "192.0.2.10" in found[0].problem


def test_7_workspace_storage_with_public_access_disabled_shuts_submitters_out() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(
        records, named("orchestrator-ws-storage"), nested_set("publicNetworkAccess", "Disabled")
    )
    found = broken(records, outputs, "azure-7-submitter-storage-network")
    assert "refuses public network access" in found[0].problem


# ----- rule 8: trusted access ---------------------------------------------------------------------


def test_8_bypass_on_a_disabled_account_is_named() -> None:
    records, outputs = run_of("private")
    records = edited(
        records, named("silo-silo1-storage"), nested_set("networkRuleSet.bypass", "AzureServices")
    )
    found = broken(records, outputs, "azure-8-trusted-access")
    assert names(found) == {"silo-silo1-storage"}


def test_8_workspace_storage_that_does_not_admit_its_workspace_is_named() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(
        records,
        named("orchestrator-ws-storage"),
        nested_set("networkRuleSet.resourceAccessRules", []),
    )
    found = broken(records, outputs, "azure-8-trusted-access")
    assert names(found) == {"orchestrator-ws-storage"}
    assert "resource-instance rule" in found[0].problem


# ----- rule 9: image build compute ----------------------------------------------------------------


def test_9_no_image_build_compute_behind_network_rules_is_named() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(records, named("orchestrator-workspace"), lambda p: p.pop("imageBuildCompute"))
    found = broken(records, outputs, "azure-9-image-build-compute")
    assert names(found) == {"orchestrator-workspace"}
    assert "denies public networks" in found[0].problem


def test_9_an_image_build_compute_outside_the_vnet_is_named() -> None:
    records, outputs = run_of("private")
    records = edited(
        records,
        named("orchestrator-image-builder"),
        lambda p: p["properties"]["properties"].pop("subnet"),
    )
    found = broken(records, outputs, "azure-9-image-build-compute")
    assert "not in a VNet" in found[0].problem


# ----- rule 10: outbound path ---------------------------------------------------------------------


def test_10_a_private_compute_subnet_without_outbound_is_named() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(
        records, named("silo-silo2-network-compute"), nested_set("defaultOutboundAccess", False)
    )
    found = broken(records, outputs, "azure-10-compute-outbound")
    assert names(found) == {"silo-silo2-network-compute"}
    assert "c-silo2" in found[0].problem


# ----- rule 11: the workspace identity's documented roles -----------------------------------------


def test_11_a_missing_documented_role_is_named() -> None:
    records, outputs = run_of("minimal")
    records = without(records, named("ra-orchestrator-identity-key-vault-administrator-key-vault"))
    found = broken(records, outputs, "azure-11-workspace-identity-roles")
    assert names(found) == {"orchestrator-workspace"}
    assert "Key Vault Administrator" in found[0].problem


def test_11_a_workspace_not_waiting_for_its_identity_roles_is_named() -> None:
    records, outputs = run_of("minimal")
    records = undepended(records, named("orchestrator-workspace"), typed("RoleAssignment"))
    found = broken(records, outputs, "azure-11-workspace-identity-roles")
    assert all("not created after" in v.problem for v in found)
    assert len(found) == 7


# ----- rule 12: compute logs ----------------------------------------------------------------------


def test_12_a_compute_that_cannot_write_logs_is_named() -> None:
    records, outputs = run_of("minimal")
    records = without(
        records,
        named(LOGS_RA),
    )
    found = broken(records, outputs, "azure-12-compute-log-writes")
    assert names(found) == {"silo-silo1-compute"}


def test_12_a_log_role_on_the_whole_workspace_storage_is_named() -> None:
    records, outputs = run_of("minimal")
    ws = one(records, named("orchestrator-ws-storage")).outputs["id"]
    ra = LOGS_RA
    records = edited(records, named(ra), nested_set("scope", ws))
    found = broken(records, outputs, "azure-12-compute-log-writes")
    assert ra in names(found) and "anywhere" in str(found)


# ----- rules 14 and 15 ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["10.1.2.0/24", "198.51.100.4/31", "198.51.100.4/32"])
def test_14_an_ip_rule_azure_refuses_is_named(bad: str) -> None:
    records, outputs = run_of("eyes-off")
    rules = [{"iPAddressOrRange": bad, "action": "Allow"}]
    records = edited(
        records, named("orchestrator-ws-storage"), nested_set("networkRuleSet.ipRules", rules)
    )
    found = broken(records, outputs, "azure-14-storage-ip-rules")
    assert names(found) == {"orchestrator-ws-storage"} and bad in found[0].problem


def test_15_a_compute_outside_its_workspace_region_is_named() -> None:
    records, outputs = run_of("minimal")
    records = edited(records, named("silo-silo2-compute"), nested_set("location", "eastus"))
    found = broken(records, outputs, "azure-15-compute-location")
    assert names(found) == {"silo-silo2-compute"}
    records = edited(
        run_of("minimal")[0],
        named("silo-silo2-compute"),
        lambda p: p["properties"].pop("computeLocation"),
    )
    assert (
        "computeLocation unset" in broken(records, outputs, "azure-15-compute-location")[0].problem
    )


def test_rules_read_a_whole_subscription_scope_too() -> None:
    """Scope coverage is ARM's: a role at subscription scope satisfies rule 11."""
    records, outputs = run_of("minimal")
    sub = f"/subscriptions/{MOCK_SUBSCRIPTION}"
    records = edited(
        records,
        named("ra-orchestrator-identity-contributor-container-registry"),
        nested_set("scope", sub),
    )
    assert not check_rules(graph(records, outputs))["azure-11-workspace-identity-roles"]


# ----- rules 16-19: Kubernetes silos ------------------------------------------------------------

AKS1 = "silo-silo1-aks"
SUBNET_ROLE = "ra-aks-silo1-identity-network-contributor-compute-subnet-silo1"


def hybrid_records() -> tuple[Records, dict[str, Any]]:
    run = stack_run("hybrid")
    return list(run.resources), copy.deepcopy(_plain(run.result))


def test_16_an_aks_cluster_without_its_subnet_role_is_named() -> None:
    records, outputs = run_of("confidential")
    found = broken(without(records, named(SUBNET_ROLE)), outputs, "azure-16-aks-subnet-role")
    assert names(found) == {AKS1} and "Network Contributor" in found[0].problem
    records = undepended(records, named(AKS1), named(SUBNET_ROLE))
    found = broken(records, outputs, "azure-16-aks-subnet-role")
    assert names(found) == {AKS1} and "without waiting" in found[0].problem


def test_16_a_role_on_the_whole_vnet_counts() -> None:
    records, outputs = run_of("confidential")
    subnet = one(records, named("silo-silo1-network-compute"))
    vnet_id = subnet.outputs["id"].rsplit("/subnets/", 1)[0]
    records = edited(records, named(SUBNET_ROLE), nested_set("scope", vnet_id))
    assert not check_rules(graph(records, outputs))["azure-16-aks-subnet-role"]


def test_17_an_aks_cluster_azure_ml_cannot_use_is_named() -> None:
    records, outputs = run_of("confidential")
    no_local = edited(records, named(AKS1), nested_set("disableLocalAccounts", True))
    found = broken(no_local, outputs, "azure-17-aks-identity-local-accounts")
    assert names(found) == {AKS1} and "local accounts" in found[0].problem
    with_sp = edited(
        records,
        named(AKS1),
        lambda p: p.update(
            identity=None,
            servicePrincipalProfile={"clientId": "0f0e0d0c-0000-4000-8000-000000000001"},
        ),
    )
    found = broken(with_sp, outputs, "azure-17-aks-identity-local-accounts")
    assert names(found) == {AKS1} and "service principal" in found[0].problem


def test_18_an_extension_installed_before_the_arc_agents_connect_is_named() -> None:
    records, outputs = hybrid_records()
    records = undepended(
        records, named("silo-bank-c-azureml-extension"), named("silo-bank-c-arc-connected")
    )
    found = broken(records, outputs, "azure-18-extension-on-ready-cluster")
    assert names(found) == {"silo-bank-c-azureml-extension"}
    assert "Connected" in found[0].problem


def test_18_an_extension_on_the_wrong_resource_provider_is_named() -> None:
    records, outputs = hybrid_records()
    records = edited(
        records,
        named("silo-bank-d-azureml-extension"),
        lambda p: p.update(
            clusterRp="Microsoft.ContainerService", clusterResourceName="managedClusters"
        ),
    )
    found = broken(records, outputs, "azure-18-extension-on-ready-cluster")
    assert names(found) == {"silo-bank-d-azureml-extension"}
    assert "no cluster of this sandbox" in found[0].problem


def test_18_an_extension_selecting_no_pool_is_named() -> None:
    records, outputs = run_of("confidential")
    unlabelled = edited(records, named("silo-silo1-pool"), nested_set("nodeLabels", {}))
    found = broken(unlabelled, outputs, "azure-18-extension-on-ready-cluster")
    assert names(found) == {"silo-silo1-azureml-extension"} and "no pool" in found[0].problem
    early = undepended(records, named("silo-silo1-azureml-extension"), named("silo-silo1-pool"))
    found = broken(early, outputs, "azure-18-extension-on-ready-cluster")
    assert names(found) == {"silo-silo1-azureml-extension"}


def test_19_a_compute_attached_before_its_namespace_or_types_is_named() -> None:
    records, outputs = hybrid_records()
    early = undepended(records, named("silo-bank-d-compute"), named("silo-bank-d-namespace"))
    found = broken(early, outputs, "azure-19-kubernetes-attach-order")
    assert names(found) == {"silo-bank-d-compute"} and "namespace 'fl-jobs'" in found[0].problem
    early = undepended(
        records, named("silo-bank-d-compute"), named("silo-bank-d-instance-type-gpu-1")
    )
    found = broken(early, outputs, "azure-19-kubernetes-attach-order")
    assert names(found) == {"silo-bank-d-compute"} and "'gpu-1'" in found[0].problem


def test_19_an_instance_type_before_its_crd_is_named() -> None:
    records, outputs = hybrid_records()
    records = undepended(
        records,
        named("silo-bank-c-instance-type-cpu-medium"),
        named("silo-bank-c-azureml-extension"),
    )
    found = broken(records, outputs, "azure-19-kubernetes-attach-order")
    assert names(found) == {"silo-bank-c-instance-type-cpu-medium"}


def test_19_a_compute_with_two_identities_is_named() -> None:
    records, outputs = hybrid_records()
    other = one(records, named("silo-bank-a-identity")).outputs["id"]

    def add_identity(props: dict[str, Any]) -> None:
        identities = props["identity"]["userAssignedIdentities"]
        if isinstance(identities, dict):  # outputs: id -> principal and client ids
            identities[other] = {}
        else:
            identities.append(other)

    records = edited(records, named("silo-bank-c-compute"), add_identity)
    found = broken(records, outputs, "azure-19-kubernetes-attach-order")
    assert names(found) == {"silo-bank-c-compute"} and "only the" in found[0].problem


# ----- rule 20: the workspace identity's attach roles -------------------------------------------

RELAY_OWNER_RA = "ra-orchestrator-identity-azure-relay-owner-cluster-bank-c-resource-group"


def test_20_hybrid_without_the_relay_owner_grant_is_named() -> None:
    records, outputs = hybrid_records()
    found = broken(
        without(records, named(RELAY_OWNER_RA)), outputs, "azure-20-kubernetes-attach-roles"
    )
    assert names(found) == {"silo-bank-c-compute"}
    assert "Azure Relay Owner" in found[0].problem and "resource group" in found[0].problem
    # A grant on the cluster alone does not cover the Relay beside it.
    cluster = one(records, named("silo-bank-c-connected-cluster")).outputs["id"]
    narrow = edited(records, named(RELAY_OWNER_RA), nested_set("scope", cluster))
    found = broken(narrow, outputs, "azure-20-kubernetes-attach-roles")
    assert names(found) == {"silo-bank-c-compute"}


def test_20_each_cluster_role_is_needed_and_waited_for() -> None:
    records, outputs = run_of("confidential")
    for role in ("reader", "kubernetes-extension-contributor", "azure-kubernetes-service-cluster"):
        ra = typed("RoleAssignment", f"orchestrator-identity-{role}")
        gone = [r for r in records if not (ra(r) and r.name.endswith("cluster-silo1"))]
        found = broken(gone, outputs, "azure-20-kubernetes-attach-roles")
        assert names(found) == {"silo-silo1-compute"}
    ra = "ra-orchestrator-identity-kubernetes-extension-contributor-cluster-orchestrator"
    early = undepended(records, named("orchestrator-aggregation-compute"), named(ra))
    found = broken(early, outputs, "azure-20-kubernetes-attach-roles")
    assert names(found) == {"orchestrator-aggregation-compute"}
    assert "without waiting" in found[0].problem


# ----- rule 30: the identity a submitter reaches by choosing a compute ---------------------------


def _runs_as(identity_id: str) -> Any:
    def change(props: dict[str, Any]) -> None:
        props["identity"]["userAssignedIdentities"] = (
            {identity_id: {}}
            if isinstance(props["identity"]["userAssignedIdentities"], dict)
            else [identity_id]
        )

    return change


def test_30_an_image_builder_running_as_the_workspace_identity_is_named() -> None:
    records, outputs = run_of("eyes-off")
    workspace_identity = one(records, named("orchestrator-identity")).outputs["id"]
    records = edited(records, named("orchestrator-image-builder"), _runs_as(workspace_identity))
    found = broken(records, outputs, "azure-30-compute-identity-reach")
    assert names(found) == {"orchestrator-image-builder"}
    problems = " ".join(v.problem for v in found)
    assert "Key Vault Administrator" in problems and "Storage Account Contributor" in problems


def test_30_acr_push_on_any_compute_but_the_image_builder_is_named() -> None:
    records, outputs = run_of("eyes-off")
    builder = one(records, named("orchestrator-image-builder-identity")).outputs["id"]
    records = edited(records, named("orchestrator-compute"), _runs_as(builder))
    found = broken(records, outputs, "azure-30-compute-identity-reach")
    assert names(found) == {"orchestrator-compute"}
    assert "AcrPush" in found[0].problem


def test_30_a_kubernetes_compute_running_as_the_attaching_identity_is_named() -> None:
    """Jobs on a Kubernetes compute run as the compute's identity: the workspace identity's
    attach roles are out of reach until the compute runs as it."""
    records, outputs = hybrid_records()
    assert not check_rules(graph(records, outputs))["azure-30-compute-identity-reach"]
    workspace_identity = one(records, named("orchestrator-identity")).outputs["id"]
    records = edited(records, named("silo-bank-c-compute"), _runs_as(workspace_identity))
    found = broken(records, outputs, "azure-30-compute-identity-reach")
    assert names(found) == {"silo-bank-c-compute"}
    assert "Azure Kubernetes Service Cluster Admin Role" in " ".join(v.problem for v in found)


# ----- rule 21: an HBI workspace's system identity on its storage, with AKS  ---------------------

SAI_BLOB = "ra-orchestrator-workspace-system-identity-storage-blob-data-contributor-orchestrator"


def test_21_an_hbi_workspace_without_its_system_identity_roles_is_named() -> None:
    records, outputs = run_of("confidential")
    ra = typed("RoleAssignment", SAI_BLOB)
    found = broken(without(records, ra), outputs, "azure-21-hbi-aks-system-identity-storage")
    assert names(found) == {"orchestrator-workspace"}
    assert "Storage Blob Data Contributor" in found[0].problem
    early = undepended(records, named("silo-silo1-compute"), ra)
    found = broken(early, outputs, "azure-21-hbi-aks-system-identity-storage")
    assert names(found) == {"silo-silo1-compute"} and "without waiting" in found[0].problem


def test_21_holds_only_for_hbi_workspaces_with_aks() -> None:
    records, outputs = run_of("confidential")
    not_hbi = edited(
        without(records, typed("RoleAssignment", "workspace-system-identity")),
        named("orchestrator-workspace"),
        nested_set("hbiWorkspace", False),
    )
    assert not check_rules(graph(not_hbi, outputs))["azure-21-hbi-aks-system-identity-storage"]
    records, outputs = run_of("private")  # HBI, computes on Azure ML clusters
    assert not any("workspace-system-identity" in r.name for r in records)


# ----- rule 22: AKS in a private workspace's region --------------------------------------------


def test_22_an_aks_cluster_outside_a_private_workspace_region_is_named() -> None:
    records, outputs = run_of("confidential")
    moved = edited(records, named(AKS1), nested_set("location", "northeurope"))
    found = broken(moved, outputs, "azure-22-aks-in-private-workspace-region")
    assert names(found) == {AKS1} and "northeurope" in found[0].problem


# ----- rule 29: private DNS zone links fall back to public resolution -------------------------


def test_29_a_zone_link_without_fallback_is_named() -> None:
    records, outputs = run_of("private")
    link = "silo-silo1-network-link-blob"
    found = broken(
        edited(records, named(link), lambda p: p.pop("resolutionPolicy", None)),
        outputs,
        "azure-29-dns-link-fallback",
    )
    assert names(found) == {link} and "NXDOMAIN" in found[0].problem


# ----- rule 27: inline pool profiles ignored beside separate AgentPools ------------------------


def test_27_a_cluster_that_would_drop_its_separate_pool_is_named() -> None:
    from dataclasses import replace

    records, outputs = run_of("confidential")
    records = [replace(r, options={"protect": True}) if r.name == AKS1 else r for r in records]
    found = broken(records, outputs, "azure-27-agent-pool-drift")
    assert names(found) == {AKS1} and "agentPoolProfiles" in found[0].problem
