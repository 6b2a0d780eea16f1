"""The optional jump host behind Azure Bastion (``fl-sandbox:jumpHost``): the route into a
private sandbox for submitters and data uploaders. Planned under mocks; the job path then
reports the hub-network movements as checked (*ok*), not *assumed*; rule 41 holds Azure
Bastion's own requirements; bad settings are refused before anything is declared."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

import pytest

from blueprints.builder import build_sandbox
from blueprints.mock_runtime import MockRun, deployer_object_id, run_under_mocks
from blueprints.plan import _plain
from blueprints.spec import ConfigError, example_spec, parse_spec
from policies.azure_rules import bastion as rule
from policies.graph import COMPUTE, ResourceGraph
from policies.job_path import job_path
from policies.network_paths import compute_origin, reach
from tests.infra.breaks import edited, typed
from tests.infra.helpers import build_from_raw, declared_before_error

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf8mXqYkUq3XrCj4mQyHc6b0sXQ7E0o2Z2GfJ7c1a2b me@laptop"
UPLOADER = "9b2d6f4e-1c3a-4b5d-8e7f-0a1b2c3d4e5f"


def _raw(blueprint: str = "private", **jump: Any) -> dict[str, Any]:
    raw = example_spec(blueprint, 2).model_dump(by_alias=True, exclude_none=True)
    raw["jumpHost"] = {"sshPublicKey": KEY, **jump}
    raw["dataUploaders"]["global"] = [{"principalId": UPLOADER}]
    return raw


@functools.cache
def _run() -> MockRun:
    spec = parse_spec(_raw(), source="test")
    return run_under_mocks(lambda: build_sandbox(spec))


def _graph(records: Any = None) -> ResourceGraph:
    run = _run()
    return ResourceGraph.build(records or run.resources, _plain(run.result))


def _of(suffix: str) -> list[Any]:
    return [r for r in _run().resources if r.type.endswith(suffix)]


def test_the_jump_host_has_no_public_ip_and_people_sign_in_as_themselves() -> None:
    (vm,) = _of(":compute:VirtualMachine")
    # A system-assigned identity only for the Entra ID login extension, holding no role.
    assert vm.inputs["identity"] == {"type": "SystemAssigned"}
    (login,) = _of(":compute:VirtualMachineExtension")
    assert login.inputs["type"] == "AADSSHLoginForLinux"
    assert login.inputs["publisher"] == "Microsoft.Azure.ActiveDirectory"
    linux = vm.inputs["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"][0]["keyData"] == KEY
    (nic,) = _of(":network:NetworkInterface")
    assert all("publicIPAddress" not in c for c in nic.inputs["ipConfigurations"])
    (bastion,) = _of(":network:BastionHost")
    assert bastion.inputs["sku"]["name"] == "Standard" and bastion.inputs["enableTunneling"]
    subnets = {r.inputs["subnetName"]: r.inputs["addressPrefix"] for r in _of(":network:Subnet")}
    assert subnets["AzureBastionSubnet"] == "10.255.0.0/26" and subnets["jump"] == "10.255.0.64/28"
    (hub,) = [v for v in _of(":network:VirtualNetwork") if "hub" in v.name]
    assert "10.255.0.0/25" in hub.inputs["addressSpace"]["addressPrefixes"]


def test_the_jump_subnet_leaves_through_the_hub_nat_gateway_where_there_is_one() -> None:
    """With ``computeOutbound: nat-gateway`` (the sample private stacks) the hub has a NAT
    gateway, and the jump subnet shares it instead of Azure's default outbound access; a hub
    without one keeps default outbound."""

    def jump_subnet(outbound: str) -> tuple[Any, list[Any]]:
        spec = parse_spec({**_raw(), "computeOutbound": outbound}, source="test")
        run = run_under_mocks(lambda: build_sandbox(spec))
        (jump,) = [
            r
            for r in run.resources
            if r.type.endswith(":network:Subnet") and r.inputs["subnetName"] == "jump"
        ]
        nats = [r for r in run.resources if r.type.endswith(":network:NatGateway")]
        return jump, [n for n in nats if n.name.startswith("orchestrator")]

    jump, (nat,) = jump_subnet("nat-gateway")
    assert jump.inputs["defaultOutboundAccess"] is False
    assert jump.inputs["natGateway"]["id"] == nat.outputs["id"]
    jump, nats = jump_subnet("default")
    assert not nats
    assert jump.inputs["defaultOutboundAccess"] is True and "natGateway" not in jump.inputs


def test_every_submitter_and_uploader_gets_reader_and_their_own_login() -> None:
    mine = [r for r in _of(":authorization:RoleAssignment") if r.name.startswith("jump-host-")]
    principals = {r.inputs["principalId"] for r in mine}
    spec = parse_spec(_raw(), source="test")
    people = {s.principal_id for s in spec.submitters if s.principal_id != "deployer"}
    people |= {u.principal_id for listed in spec.data_uploaders.values() for u in listed}
    # Only the listed people and the deployer: nothing for the VM's own identity.
    assert UPLOADER in people
    assert principals == people | {deployer_object_id()}
    reader, login = "acdd72a7-3385-48ef-bd42-f606fba81ae7", "fb879df8-f326-4884-b1cf-06f3ad86be52"
    for principal in principals:
        held = sorted(
            r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
            for r in mine
            if r.inputs["principalId"] == principal
        )
        assert held == sorted([reader, reader, reader, login]), principal


def test_the_job_path_checks_the_hub_route_instead_of_assuming_it() -> None:
    moves = job_path(_graph())
    hub = [m for m in moves if m.step == "submit" or m.step.startswith("seed ")]
    assert hub and all(m.status == "ok" for m in hub), [(m.what, m.status) for m in hub]
    connect = [m for m in hub if m.what == "connect to the jump host through Azure Bastion"]
    assert len(connect) == len({m.actor for m in connect}) >= 2
    # Without a Reader grant the connection breaks, naming the jump host.
    records = [
        r for r in _run().resources if not ("jump-host-login-vm" in r.name and UPLOADER in r.name)
    ]
    broken = [m for m in job_path(_graph(records)) if not m.ok]
    assert [m.what for m in broken] == ["connect to the jump host through Azure Bastion"]
    assert "Virtual Machine User Login" in broken[0].problem and "vm-" in broken[0].target


def test_silo_endpoints_admit_the_jump_host_and_no_other_hub_source() -> None:
    """Each silo's endpoints NSG admits HTTPS from its compute subnet and the jump host's
    subnet only: the silo's uploader gets in from the jump host, while the hub's computes
    (orchestrator, image builder) have no network path to a silo's data."""
    graph = _graph()
    seeds = [m for m in job_path(graph) if m.step == "seed silo silo1" and "upload" in m.what]
    assert seeds and seeds[0].ok and "pe-" in seeds[0].route
    storage = next(a for a in graph.silo_storage() if a.name == "silo-silo1-storage")
    for compute in ("orchestrator-compute", "orchestrator-image-builder"):
        node = next(c for c in graph.of_type(COMPUTE) if c.name == compute)
        path = reach(graph, compute_origin(graph, node), storage, "blob")
        assert not path.ok and "DenyOtherVnetInbound" in path.problem, (compute, path)
    own = next(c for c in graph.of_type(COMPUTE) if c.name == "silo-silo1-compute")
    assert reach(graph, compute_origin(graph, own), storage, "blob").ok


def test_without_a_jump_host_submit_is_assumed_and_silo_seeding_is_broken() -> None:
    spec = parse_spec(_without_jump(), source="test")
    run = run_under_mocks(lambda: build_sandbox(spec))
    moves = job_path(ResourceGraph.build(run.resources, _plain(run.result)))
    submit = [m for m in moves if m.step == "submit"]
    assert submit and all(
        m.status == "assumed" and "fl-sandbox:jumpHost" in m.assumed for m in submit
    )
    # A host of the user's on the hub is a VirtualNetwork-tag source, which a silo's
    # endpoints NSG refuses: nobody can seed a silo, and the fix is the jump host.
    seeds = [m for m in moves if m.step.startswith("seed silo") and "upload" in m.what]
    assert seeds and all(
        m.status == "broken"
        and "DenyOtherVnetInbound" in m.problem
        and "fl-sandbox:jumpHost" in m.fix
        for m in seeds
    )


def _without_jump() -> dict[str, Any]:
    raw = _raw()
    raw.pop("jumpHost")
    return raw


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: p.__setitem__("subnetName", "bastion"), "named 'bastion'"),
        (lambda p: p.__setitem__("addressPrefix", "10.255.0.0/27"), "prefix 10.255.0.0/27"),
    ],
)
def test_rule_41_refuses_a_wrong_bastion_subnet(change: Any, where: str) -> None:
    records = edited(_run().resources, typed("Subnet", "jump-host-bastion-subnet"), change)
    found = rule.check(_graph(records))
    assert len(found) == 1 and where in found[0].problem and "AzureBastionSubnet" in found[0].fix


def test_rule_41_refuses_a_basic_ip_and_tunnelling_on_basic() -> None:
    assert rule.check(_graph()) == []
    basic_ip = edited(
        _run().resources,
        typed("PublicIPAddress", "bastion-ip"),
        lambda p: p.update(sku={"name": "Basic"}),
    )
    assert "not a Standard, static IP" in rule.check(_graph(basic_ip))[0].problem
    basic = edited(
        _run().resources, typed("BastionHost"), lambda p: p.update(sku={"name": "Basic"})
    )
    assert "tunnelling on SKU 'Basic'" in rule.check(_graph(basic))[0].problem


@pytest.mark.parametrize(
    ("raw", "key", "problem"),
    [
        (_raw("minimal"), "jumpHost", "no hub VNet"),
        (_raw(addressSpace="10.255.0.0/26"), "jumpHost.addressSpace", "AzureBastionSubnet"),
        (_raw(addressSpace="8.8.8.0/24"), "jumpHost.addressSpace", "not a private IPv4 range"),
        (_raw(addressSpace="10.0.128.0/25"), "jumpHost.addressSpace", "overlaps"),
        (_raw(adminUsername="root"), "jumpHost.adminUsername", "reserved"),
        (_raw(sshPublicKey="hunter2"), "jumpHost.sshPublicKey", "not an OpenSSH public key"),
        (_raw(vmSize="B2s"), "jumpHost.vmSize", "not an Azure VM size"),
    ],
)
def test_bad_jump_host_settings_are_refused_before_anything_is_declared(
    raw: dict[str, Any], key: str, problem: str
) -> None:
    error, declared = declared_before_error(build_from_raw(raw))
    assert isinstance(error, ConfigError) and error.key == key and problem in str(error)
    assert not [r for r in declared if r.custom]


def test_the_ranges_are_carved_as_azure_needs() -> None:
    from blueprints.jump_host_spec import JumpHostSpec

    spec = JumpHostSpec(ssh_public_key=KEY, address_space="172.16.8.0/24")
    bastion, host = (
        ipaddress.ip_network(spec.bastion_subnet),
        ipaddress.ip_network(spec.host_subnet),
    )
    assert bastion.prefixlen == 26 and host.prefixlen == 28 and not bastion.overlaps(host)
    assert bastion.subnet_of(ipaddress.ip_network("172.16.8.0/24"))  # type: ignore[arg-type]
