"""The job path's control traffic and the Azure ML service as an actor, over real blueprint
runs: present on every blueprint, and each broken on purpose (an NSG egress deny, a missing
resource-instance rule or role, a cluster without a way out) fails naming the step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from blueprints.catalog import BLUEPRINT_NAMES
from blueprints.plan import _plain
from policies.control_paths import AML_COMPUTE_NEEDS
from policies.job_path import Movement
from policies.nsg_egress import egress
from tests.infra.blueprint_runs import blueprint_run
from tests.infra.breaks import Records, edited, named, nested_set, run_of, without
from tests.infra.kubernetes_runs import stack_run
from tests.infra.test_job_path import KNOWN_GAPS, moves, only_broken

SERVICE = "Azure ML service"
SILO1 = "silo silo1: agent"
CONTROL = "control traffic (service tags)"


def deny_egress(
    destination: str = "Internet", *allows: tuple[str, str, str]
) -> Callable[[dict[str, Any]], None]:
    """A change adding an outbound deny to ``destination`` at priority 4000, and outbound
    allows (tag, protocol, port) above it."""

    def change(props: dict[str, Any]) -> None:
        rules = props.setdefault("securityRules", [])
        for i, (tag, protocol, port) in enumerate(allows):
            rules.append(
                {
                    "name": f"Allow{i}",
                    "priority": 3000 + i,
                    "direction": "Outbound",
                    "access": "Allow",
                    "protocol": protocol,
                    "sourceAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": tag,
                    "destinationPortRange": port,
                }
            )
        rules.append(
            {
                "name": "DenyEgress",
                "priority": 4000,
                "direction": "Outbound",
                "access": "Deny",
                "protocol": "*",
                "sourceAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationAddressPrefix": destination,
                "destinationPortRange": "*",
            }
        )

    return change


def found(records: Records, outputs: dict[str, Any], step: str, what: str) -> Movement:
    hits = [m for m in moves(records, outputs) if m.step == step and m.what == what]
    assert len(hits) == 1, [(m.step, m.what) for m in moves(records, outputs)]
    return hits[0]


# ----- present and clear on every blueprint ---------------------------------------------------


@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_every_compute_has_its_control_traffic_and_the_service_its_movements(
    blueprint: str,
) -> None:
    run = blueprint_run(blueprint, 3)
    moved = moves(run.resources, run.result)
    assert [m.what for m in moved if not m.ok] == KNOWN_GAPS.get(blueprint, [])
    service = [m.what for m in moved if m.step == SERVICE]
    assert service[:3] == [
        "work the workspace storage (datastores, snapshots)",
        "read the workspace's secrets",
        "read the workspace's registry",
    ]
    compute_steps = {m.step for m in moved if m.what == "pull the job image"}
    for step in compute_steps:
        mine = [m.what for m in moved if m.step == step]
        aml = CONTROL in mine
        kubernetes = any(w.startswith("extension control") for w in mine)
        assert aml != kubernetes, (step, mine)


def test_amlcompute_control_traffic_names_every_service_tag_of_the_doc() -> None:
    records, outputs = run_of("eyes-off")
    movement = found(records, outputs, SILO1, CONTROL)
    for tag in (
        "AzureActiveDirectory TCP 443",
        "AzureMachineLearning UDP 5831",
        "BatchNodeManagement.westeurope TCP 443",
        "AzureResourceManager TCP 443",
        "Storage.westeurope TCP 443",
        "AzureFrontDoor.FirstParty TCP 443",
        "MicrosoftContainerRegistry.westeurope TCP 443",
    ):
        assert tag in movement.route, movement.route
    assert "nsg-flsandbox-silo1" in movement.route


def test_control_traffic_names_the_workspace_region_and_every_port_for_a_remote_silo() -> None:
    """Learn's no-public-IP table: AzureMachineLearning on TCP 443, 8787 and 18881, and
    ``<region>`` is "the Azure region that contains your Azure Machine Learning workspace";
    a silo elsewhere also needs its own region's Batch node management and storage (its
    Batch pool lives there), and every compute AzureMonitor, AzureFrontDoor.FrontEnd and
    AzureActiveDirectory on TCP 80 (the outbound table as of its 2026-03-19 revision)."""
    records, outputs = run_of("eyes-off")
    workspace = "westeurope"
    movement = found(records, outputs, "silo silo2: agent", CONTROL)
    own = next(
        r.inputs["location"]
        for r in records
        if r.type.endswith("network:VirtualNetwork") and "silo2" in r.name
    )
    assert own != workspace  # silo2 sits in the second default region
    for tag in (
        "AzureMachineLearning TCP 443",
        "AzureMachineLearning TCP 8787",
        "AzureMachineLearning TCP 18881",
        f"BatchNodeManagement.{workspace} TCP 443",
        f"Storage.{workspace} TCP 443",
        f"BatchNodeManagement.{own} TCP 443",
        f"Storage.{own} TCP 443",
        "AzureActiveDirectory TCP 80",
        "AzureFrontDoor.FrontEnd TCP 443",
        "AzureMonitor TCP 443",
    ):
        assert tag in movement.route, movement.route
    assert f"Keyvault.{own}" not in movement.route  # eyes-off's workspace is not HBI


# ----- AmlCompute control traffic against NSG egress -------------------------------------------


def test_an_egress_deny_without_the_needed_allows_breaks_the_control_traffic() -> None:
    records, outputs = run_of("eyes-off")
    records = edited(records, named("silo-silo1-network-nsg"), deny_egress())
    broken = only_broken(records, outputs)
    assert [(m.step, m.what) for m in broken] == [(SILO1, CONTROL)]
    assert broken[0].resource is not None and broken[0].resource.name == "silo-silo1-network-nsg"
    assert "BatchNodeManagement.westeurope TCP 443 (rule 'DenyEgress')" in broken[0].problem
    assert "AzureMachineLearning UDP 5831" in broken[0].fix


def test_allows_above_the_deny_pass_and_the_one_left_out_is_named() -> None:
    records, outputs = run_of("eyes-off")
    allows = [
        (n.tag.replace("<region>", "westeurope"), n.protocol, str(n.port))
        for n in AML_COMPUTE_NEEDS
        if n.tag != "Storage.<region>"
    ]
    records = edited(records, named("silo-silo1-network-nsg"), deny_egress("*", *allows))
    movement = the_only_broken(records, outputs)
    assert movement.what == CONTROL
    assert "block Storage.westeurope TCP 443 (rule 'DenyEgress')" in movement.problem
    assert "AzureActiveDirectory" not in movement.problem


def test_an_unregional_allow_covers_the_regional_tag_and_protocol_and_port_matter() -> None:
    records, outputs = run_of("eyes-off")
    allows = [
        (n.tag.split(".")[0] if n.tag.endswith("<region>") else n.tag, "Tcp", "*")
        for n in AML_COMPUTE_NEEDS
        if n.protocol == "Tcp"
    ]
    # Every TCP tag is allowed, so only AzureMachineLearning UDP 5831 is left to the deny.
    records = edited(records, named("silo-silo1-network-nsg"), deny_egress("*", *allows))
    movement = the_only_broken(records, outputs)
    assert "block AzureMachineLearning UDP 5831 (rule 'DenyEgress')" in movement.problem
    assert egress(None, "Storage.westeurope", "Tcp", 443).rule == "AllowInternetOutBound"


def the_only_broken(records: Records, outputs: dict[str, Any]) -> Movement:
    broken = only_broken(records, outputs)
    assert len(broken) == 1, [str(m.violation()) for m in broken]
    return broken[0]


# ----- the Azure ML service as an actor ----------------------------------------------------------


def test_the_service_needs_the_resource_instance_rule_of_a_deny_by_default_storage() -> None:
    records, outputs = run_of("eyes-off")
    ok = found(records, outputs, SERVICE, "work the workspace storage (datastores, snapshots)")
    assert ok.ok and ok.route.startswith("resource-instance rule for workspace")
    assert "id-flsandbox-orchestrator" in ok.actor
    records = edited(
        records,
        named("orchestrator-ws-storage"),
        nested_set("networkRuleSet.resourceAccessRules", []),
    )
    movement = the_only_broken(records, outputs)
    assert (movement.step, movement.what) == (
        SERVICE,
        "work the workspace storage (datastores, snapshots)",
    )
    assert movement.role_ok and not movement.network_ok
    assert movement.resource is not None and movement.resource.name == "orchestrator-ws-storage"
    assert "no resource-instance rule admits workspace" in movement.problem
    assert "resourceAccessRules" in movement.fix


def test_the_service_without_its_storage_role_fails_naming_the_step() -> None:
    records, outputs = run_of("eyes-off")
    records = without(
        records,
        named("ra-orchestrator-identity-storage-blob-data-contributor-orchestrator-storage"),
    )
    broken = {(m.step, m.what) for m in only_broken(records, outputs)}
    # The image build reads its context as the image builder's own identity, not this one.
    assert broken == {(SERVICE, "work the workspace storage (datastores, snapshots)")}


def test_the_service_reaches_a_closed_registry_only_as_a_trusted_service() -> None:
    records, outputs = run_of("private")
    ok = found(records, outputs, SERVICE, "read the workspace's registry")
    assert ok.ok and "trusted services" in ok.route
    assert ok.status == "assumed" and "system-assigned identity" in ok.assumed
    records = edited(
        records, named("orchestrator-acr"), nested_set("networkRuleBypassOptions", "None")
    )
    movement = the_only_broken(records, outputs)
    assert (movement.step, movement.what) == (SERVICE, "read the workspace's registry")
    assert "networkRuleBypassOptions=AzureServices" in movement.fix


def test_a_private_key_vault_still_admits_azure_ml_as_a_trusted_service() -> None:
    """Key Vault: public network access Disabled blocks all but private endpoints *and*
    trusted services, so the workspace's vault is reached through ``bypass: AzureServices``."""
    records, outputs = run_of("private")
    movement = found(records, outputs, SERVICE, "read the workspace's secrets")
    assert movement.status == "ok"
    assert movement.route == "trusted services (bypass AzureServices)"


def test_a_private_key_vault_without_the_trusted_service_bypass_breaks_the_service() -> None:
    records, outputs = run_of("private")
    records = edited(
        records,
        lambda r: r.type.endswith("keyvault:Vault"),
        nested_set("properties.networkAcls.bypass", "None"),
    )
    movement = found(records, outputs, SERVICE, "read the workspace's secrets")
    assert movement.status == "broken"
    assert movement.resource is not None and movement.resource.type.endswith("keyvault:Vault")
    assert "bypass=AzureServices" in movement.fix


def test_hbi_with_kubernetes_checks_the_system_assigned_identitys_storage_roles() -> None:
    records, outputs = run_of("confidential")
    hbi = [m for m in moves(records, outputs) if m.what.startswith("HBI + Kubernetes")]
    assert [m.what for m in hbi] == [
        "HBI + Kubernetes: write the workspace storage",
        "HBI + Kubernetes: manage the workspace storage",
    ]
    assert all(m.ok and "system-assigned identity" in m.actor for m in hbi)


# ----- the Kubernetes extension's control channels ---------------------------------------------


def test_an_aks_silo_behind_an_egress_deny_loses_its_extension_channels() -> None:
    records, outputs = run_of("confidential")
    records = edited(records, named("silo-silo1-network-nsg"), deny_egress())
    new = [
        (m.step, m.what)
        for m in only_broken(records, outputs)
        if m.what not in KNOWN_GAPS.get("confidential", [])
    ]
    assert new == [
        (
            SILO1,
            "extension control: the configuration data plane "
            "(westeurope.dp.kubernetesconfiguration.azure.com)",
        ),
        (
            SILO1,
            "extension control: the regional Azure ML API (westeurope.api.azureml.ms, "
            "westeurope.experiments.azureml.net)",
        ),
        (
            SILO1,
            "extension control: Kusto system-log upload (*.kusto.windows.net, "
            "*.table.core.windows.net, *.queue.core.windows.net)",
        ),
    ]


def test_an_aks_cluster_without_a_way_out_is_named() -> None:
    records, outputs = run_of("confidential")
    records = edited(
        records, named("silo-silo1-aks"), nested_set("networkProfile.outboundType", "none")
    )
    new = [
        m for m in only_broken(records, outputs) if m.what not in KNOWN_GAPS.get("confidential", [])
    ]
    assert {m.step for m in new} == {SILO1} and len(new) == 3
    assert all("outboundType 'none'" in m.problem for m in new)
    assert all(m.resource is not None and m.resource.name == "silo-silo1-network-nsg" for m in new)


def test_a_private_api_server_is_assumed_reachable_and_says_so() -> None:
    records, outputs = run_of("confidential")
    records = edited(
        records,
        named("silo-silo1-aks"),
        nested_set("apiServerAccessProfile.enablePrivateCluster", True),
    )
    movement = found(records, outputs, SILO1, "Azure ML control plane reaches the API server")
    assert movement.status == "assumed" and "private API server" in movement.assumed


def test_arc_silos_report_the_sites_outbound_needs_as_assumed() -> None:
    run = stack_run("hybrid")
    moved = moves(list(run.resources), _plain(run.result))
    arc = [m for m in moved if m.what.startswith("extension control")]
    assert arc, "the hybrid run has Arc silos"
    assert {m.status for m in arc} == {"assumed"}
    assert any("*.servicebus.windows.net" in m.what for m in arc)
    assert all("site's firewall" in m.assumed for m in arc)


def test_public_ip_nodes_need_batch_and_azure_ml_inbound() -> None:
    records, outputs = run_of("hybrid")  # its AmlCompute silos have public IPs
    ok = found(records, outputs, SILO1, "control traffic in (public-IP nodes)")
    assert ok.ok and "from AzureMachineLearning TCP 44224" in ok.route

    def drop_ml_inbound(props: dict[str, Any]) -> None:
        props["securityRules"] = [
            r for r in props.get("securityRules") or [] if r["name"] != "AllowAzureMachineLearning"
        ]

    records = edited(records, named("silo-silo1-network-nsg"), drop_ml_inbound)
    movement = the_only_broken(records, outputs)
    assert movement.what == "control traffic in (public-IP nodes)"
    assert "AzureMachineLearning TCP 44224 (rule 'DenyAllInBound')" in movement.problem
    assert movement.resource is not None and movement.resource.name == "silo-silo1-network-nsg"


def test_private_nodes_have_no_inbound_movement() -> None:
    records, outputs = run_of("eyes-off")
    whats = [m.what for m in moves(records, outputs) if m.step == SILO1]
    assert CONTROL in whats and "control traffic in (public-IP nodes)" not in whats


def with_route(records: Records, next_hop: str) -> Records:
    """silo1's compute subnet sends 0.0.0.0/0 to ``next_hop`` through a route table."""
    nsg = next(r for r in records if r.name == "silo-silo1-network-nsg")
    rt_id = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
        f"{nsg.inputs['resourceGroupName']}/providers/Microsoft.Network/routeTables/rt-silo1"
    )
    props = {
        "routeTableName": "rt-silo1",
        "resourceGroupName": nsg.inputs["resourceGroupName"],
        "routes": [
            {
                "name": "default",
                "addressPrefix": "0.0.0.0/0",
                "nextHopType": next_hop,
                "nextHopIpAddress": "10.0.255.4",
            }
        ],
    }
    table = replace(
        nsg,
        urn=nsg.urn.replace("NetworkSecurityGroup::silo-silo1-network-nsg", "RouteTable::rt"),
        type="azure-native:network:RouteTable",
        name="silo-silo1-network-rt",
        inputs=props,
        outputs={**props, "id": rt_id},
    )
    records = [*records, table]
    return edited(records, named("silo-silo1-network-compute"), nested_set("routeTable.id", rt_id))


def test_a_route_to_an_appliance_makes_the_control_traffic_assumed() -> None:
    records, outputs = run_of("eyes-off")
    movement = found(with_route(records, "VirtualAppliance"), outputs, SILO1, CONTROL)
    assert movement.status == "assumed"
    assert "network appliance" in movement.assumed and "10.0.255.4" in movement.assumed


def test_a_route_that_drops_the_traffic_breaks_the_control_traffic() -> None:
    records, outputs = run_of("eyes-off")
    movement = found(with_route(records, "None"), outputs, SILO1, CONTROL)
    assert not movement.ok and "route 'default' (next hop None)" in movement.problem
