"""Control traffic of the round: what Azure ML's machinery needs besides the data movements.

Three kinds, each a movement of the job path (``policies.job_path``):

1. **AmlCompute control traffic**, as the named service tags of Microsoft Learn's "Configure
   inbound and outbound network traffic"
   (https://learn.microsoft.com/azure/machine-learning/how-to-access-azureml-behind-firewall,
   outbound table for compute instances and clusters; "Configure a secure training
   environment", no-public-IP table): ``AzureActiveDirectory``, ``AzureMachineLearning``
   (TCP 443, 8787 and 18881; UDP 5831), ``AzureActiveDirectory`` also on TCP 80,
   ``BatchNodeManagement.<region>``, ``AzureResourceManager``, ``Storage.<region>``,
   ``AzureFrontDoor.FrontEnd`` and ``.FirstParty``, ``MicrosoftContainerRegistry.<region>``
   (an allow for the global tag covers it) and
   ``AzureMonitor`` (needed without a secured Azure Monitor, which the sandbox does not
   build), plus ``Keyvault.<region>`` for an HBI workspace. Learn lists BatchNodeManagement
   with protocol "Any"; the nodes' management traffic is HTTPS, so TCP 443 is checked. Learn's
   ``<region>`` is "the Azure region that contains your Azure Machine Learning workspace", so a
   silo's compute in another region needs the workspace region's tags; it is also given
   ``BatchNodeManagement``, ``Storage`` (and, for HBI, ``Keyvault``) of its own region, where
   its Batch pool, that pool's storage and back-end key vault live (Learn does not say which
   region a cross-region cluster uses, so both are required). Each is
   checked against the NSG egress rules of the compute's subnet (``policies.nsg_egress``) and
   a route table's next hop where one is declared. Nodes with public IPs are also managed
   inbound, from ``AzureMachineLearning`` (TCP 44224): a separate movement against the
   subnet's inbound rules.
2. **The Kubernetes extension's control channels** of an AKS or Arc silo, from the same page's
   "Kubernetes compute" outbound list and Azure Arc's
   (https://learn.microsoft.com/azure/azure-arc/kubernetes/network-requirements): Azure Relay
   (``*.servicebus.windows.net``, Arc's cluster connect and the extension's relay server),
   the configuration data plane (``<region>.dp.kubernetesconfiguration.azure.com``, both
   kinds: cluster extensions are managed through it), the Kusto system-log upload
   (``*.kusto.windows.net``, ``*.table.core.windows.net``, ``*.queue.core.windows.net``:
   "Required to upload system logs to Kusto", Microsoft's endpoints, not the workspace
   storage's), the regional Azure ML API (``<region>.api.azureml.ms``,
   ``<region>.experiments.azureml.net``), and the cluster's API server, which
   the Azure ML control plane must reach ("Without access to the API server, the machine
   learning pods can't be deployed"). For AKS they are checked against the pool subnet's NSG
   and the cluster's ``outboundType``; for an Arc cluster on premises the site's network is
   not in the stack, so they are reported *assumed*, naming what the site must allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.vocabulary.arm_types import MANAGED_CLUSTER, WORKSPACE
from policies.graph import Node, ResourceGraph, SubnetInfo, silo_of
from policies.movement import Actor, Movement
from policies.nsg_egress import INTERNET, Egress, egress, route_to, subnet_nsg


@dataclass(frozen=True)
class Need:
    """One kind of outbound traffic: a destination (service tag or ``Internet``) and port."""

    tag: str
    protocol: str
    port: int
    what: str = ""

    def label(self, region: str) -> str:
        return f"{self.tag.replace('<region>', region)} {self.protocol.upper()} {self.port}"


AML_COMPUTE_NEEDS: tuple[Need, ...] = (
    Need("AzureActiveDirectory", "Tcp", 80),
    Need("AzureActiveDirectory", "Tcp", 443),
    Need("AzureMachineLearning", "Tcp", 443),
    Need("AzureMachineLearning", "Tcp", 8787),
    Need("AzureMachineLearning", "Tcp", 18881),
    Need("AzureMachineLearning", "Udp", 5831),
    Need("BatchNodeManagement.<region>", "Tcp", 443),
    Need("AzureResourceManager", "Tcp", 443),
    Need("Storage.<region>", "Tcp", 443),
    Need("AzureFrontDoor.FrontEnd", "Tcp", 443),
    Need("AzureFrontDoor.FirstParty", "Tcp", 443),
    Need("MicrosoftContainerRegistry.<region>", "Tcp", 443),
    # "Only needed if you aren't using a secured Azure Monitor": the sandbox's Application
    # Insights has no private link scope.
    Need("AzureMonitor", "Tcp", 443),
)
HBI_NEEDS: tuple[Need, ...] = (Need("Keyvault.<region>", "Tcp", 443),)
OWN_REGION_NEEDS: tuple[Need, ...] = (
    Need("BatchNodeManagement.<region>", "Tcp", 443),
    Need("Storage.<region>", "Tcp", 443),
)
"""Needed in the compute's own region too, where it differs from the workspace's: its Batch
pool's node management and storage (and, for HBI, its back-end key vault) live there."""
PUBLIC_IP_INBOUND: tuple[Need, ...] = (Need("AzureMachineLearning", "Tcp", 44224),)
"""Inbound to nodes with public IPs: "Inbound traffic: AzureMachineLearning service tag"
(how-to-secure-training-vnet, public IP vs no public IP; port 44224 in
how-to-access-azureml-behind-firewall). Earlier versions of the docs also listed
BatchNodeManagement on TCP 29876-29877, which ``components.silo_network`` still allows."""

RELAY = Need(INTERNET, "Tcp", 443, "Azure Relay (*.servicebus.windows.net, websockets)")
CONFIG_DP = Need(
    INTERNET,
    "Tcp",
    443,
    "the configuration data plane (<region>.dp.kubernetesconfiguration.azure.com)",
)
AML_API = Need(
    INTERNET,
    "Tcp",
    443,
    "the regional Azure ML API (<region>.api.azureml.ms, <region>.experiments.azureml.net)",
)
KUSTO = Need(
    INTERNET,
    "Tcp",
    443,
    "Kusto system-log upload (*.kusto.windows.net, *.table.core.windows.net, "
    "*.queue.core.windows.net)",
)


def _region(graph: ResourceGraph, compute: Node, subnet: SubnetInfo | None) -> str:
    for node in (subnet.vnet if subnet is not None else None, compute):
        location = node.get("location") if node is not None else None
        if isinstance(location, str) and location:
            return location.lower().replace(" ", "")
    silo = silo_of(compute)
    return (graph.silo_region(silo) if silo else None) or "<region>"


def _workspace_region(graph: ResourceGraph) -> str | None:
    """The region Learn's ``<region>`` placeholders stand for: the workspace's."""
    for workspace in graph.of_type(WORKSPACE):
        location = workspace.get("location")
        if isinstance(location, str) and location:
            return location.lower().replace(" ", "")
    return None


def _network_movement(
    step: str,
    what: str,
    actor: Actor,
    target: str,
    route: str,
    problem: str,
    fix: str,
    resource: Node | None,
    assumed: str = "",
) -> Movement:
    ok = not problem
    return Movement(
        step,
        what,
        actor.label,
        target,
        "none (network only)",
        True,
        "not needed",
        route,
        ok,
        problem,
        fix,
        None if ok else resource,
        assumed=assumed if ok else "",
    )


def _check_needs(
    graph: ResourceGraph, subnet: SubnetInfo | None, needs: tuple[Need, ...], region: str
) -> tuple[list[str], list[tuple[str, Egress]], list[str]]:
    """(what passes, what the NSG blocks, what goes through an appliance) for ``needs``."""
    nsg = subnet_nsg(graph, subnet)
    passed, blocked, appliance = [], [], []
    for need in needs:
        tag = need.tag.replace("<region>", region)
        verdict = egress(nsg, tag, need.protocol, need.port)
        if not verdict.allowed:
            blocked.append((need.label(region), verdict))
            continue
        route: Mapping[str, object] = route_to(graph, subnet, tag) or {}
        hop = str(route.get("nextHopType") or "").lower()
        if hop == "none":
            rule = f"route '{route.get('name')}' (next hop None)"
            blocked.append((need.label(region), Egress(False, rule, None)))
        elif hop == "virtualappliance":
            appliance.append(f"{need.label(region)} via {route.get('nextHopIpAddress')}")
        else:
            passed.append(need.label(region))
    return passed, blocked, appliance


def aml_compute_control(
    graph: ResourceGraph, step: str, actor: Actor, compute: Node, hbi: bool
) -> list[Movement]:
    """An AmlCompute's control traffic, one movement naming every service tag it needs."""
    if compute.get("properties", "computeType") != "AmlCompute":
        return []
    inner = compute.get("properties", "properties") or {}
    subnet = graph.find_subnet(inner.get("subnet") if isinstance(inner, Mapping) else None)
    what = "control traffic (service tags)"
    if subnet is None:
        return [
            _network_movement(
                step, what, actor, "Azure ML and Batch", "Azure-managed network", "", "", None
            )
        ]
    own = _region(graph, compute, subnet)
    region = _workspace_region(graph) or own
    passed, blocked, appliance = _check_needs(
        graph, subnet, AML_COMPUTE_NEEDS + (HBI_NEEDS if hbi else ()), region
    )
    if own != region:
        more = _check_needs(graph, subnet, OWN_REGION_NEEDS + (HBI_NEEDS if hbi else ()), own)
        passed, blocked, appliance = passed + more[0], blocked + more[1], appliance + more[2]
    nsg = subnet_nsg(graph, subnet)
    where = f"NSG '{nsg.arm_name}'" if nsg is not None else "no NSG"
    route = f"subnet '{subnet.name}' ({where}): " + ", ".join(passed + appliance)
    problem = fix = ""
    if blocked:
        names = ", ".join(f"{label} (rule '{v.rule}')" for label, v in blocked)
        problem = (
            f"the egress rules of subnet '{subnet.name}' in VNet '{subnet.vnet.arm_name}' block "
            f"{names}; AmlCompute nodes need them to be managed by Azure ML and Batch"
        )
        fix = f"Add outbound Allow rules to {where} above the deny, for " + ", ".join(
            label for label, _ in blocked
        )
    assumed = (
        "the subnet routes these through a network appliance, which must allow them: "
        + "; ".join(appliance)
        if appliance
        else ""
    )
    found = [
        _network_movement(
            step,
            what,
            actor,
            "Azure ML and Batch service tags",
            route,
            problem,
            fix,
            nsg or compute,
            assumed,
        )
    ]
    if isinstance(inner, Mapping) and inner.get("enableNodePublicIp") is not False:
        found.append(_public_ip_inbound(step, actor, subnet, nsg))
    return found


def _public_ip_inbound(step: str, actor: Actor, subnet: SubnetInfo, nsg: Node | None) -> Movement:
    """Nodes with public IPs are managed inbound, from Azure ML on TCP 44224."""
    blocked = [
        (n, v)
        for n in PUBLIC_IP_INBOUND
        if not (v := egress(nsg, n.tag, n.protocol, n.port, "Inbound")).allowed
    ]
    problem = fix = ""
    if blocked:
        problem = (
            f"the inbound rules of subnet '{subnet.name}' in VNet '{subnet.vnet.arm_name}' "
            "block "
            + ", ".join(f"{n.tag} TCP {n.port} (rule '{v.rule}')" for n, v in blocked)
            + "; nodes with public IPs are managed through them"
        )
        fix = (
            "Allow inbound from AzureMachineLearning on TCP 44224, or set "
            "enableNodePublicIp=false with an outbound path"
        )
    route = f"subnet '{subnet.name}': " + ", ".join(
        f"from {n.tag} TCP {n.port}" for n in PUBLIC_IP_INBOUND
    )
    return _network_movement(
        step,
        "control traffic in (public-IP nodes)",
        actor,
        "the compute's nodes",
        route,
        problem,
        fix,
        nsg,
    )


def _aks_outbound(graph: ResourceGraph, cluster: Node, subnet: SubnetInfo | None) -> str:
    """Why the cluster's nodes have no way out, or ''."""
    kind = str(cluster.get("networkProfile", "outboundType") or "loadBalancer")
    node = subnet.node if subnet is not None else None
    if kind in ("none", "block"):
        return f"AKS cluster '{cluster.arm_name}' has outboundType '{kind}'"
    if kind == "userAssignedNATGateway" and (node is None or node.get("natGateway") is None):
        return (
            f"AKS cluster '{cluster.arm_name}' has outboundType userAssignedNATGateway but its "
            "node subnet has no NAT gateway"
        )
    if kind == "userDefinedRouting" and route_to(graph, subnet, "0.0.0.0/0") is None:
        return (
            f"AKS cluster '{cluster.arm_name}' has outboundType userDefinedRouting but its node "
            "subnet has no default route"
        )
    return ""


def kubernetes_control(
    graph: ResourceGraph, step: str, actor: Actor, compute: Node
) -> list[Movement]:
    """The Azure ML extension's control channels of a Kubernetes compute."""
    if compute.get("properties", "computeType") != "Kubernetes":
        return []
    cluster = graph.cluster_of(compute)
    aks = cluster is not None and cluster.type == MANAGED_CLUSTER
    channels = [CONFIG_DP, AML_API, KUSTO] if aks else [RELAY, CONFIG_DP, AML_API, KUSTO]
    found: list[Movement] = []
    if aks:
        assert cluster is not None
        subnets = [s for s in graph.cluster_subnets(cluster) if s is not None]
        subnet = subnets[0] if subnets else None
        region = _region(graph, cluster, subnet)
        way_out = _aks_outbound(graph, cluster, subnet)
        for channel in channels:
            what = f"extension control: {channel.what.replace('<region>', region)}"
            _, blocked, appliance = _check_needs(graph, subnet, (channel,), region)
            nsg = subnet_nsg(graph, subnet)
            problem = fix = ""
            if way_out:
                problem = way_out
                fix = "Give the cluster an outbound path (load balancer, NAT gateway or a route)"
            elif blocked:
                problem = (
                    f"the egress rules of the node subnet block outbound HTTPS to the internet "
                    f"(rule '{blocked[0][1].rule}')"
                )
                fix = f"Allow outbound TCP 443 to {channel.what} in the node subnet's NSG"
            assumed = (
                f"through a network appliance ({appliance[0]}), which must allow {channel.what}"
                if appliance
                else ""
            )
            found.append(
                _network_movement(
                    step,
                    what,
                    actor,
                    channel.what,
                    "outbound" if not problem else "none",
                    problem,
                    fix,
                    nsg or cluster,
                    assumed,
                )
            )
        found.append(_api_server(step, actor, cluster))
    else:
        silo = silo_of(compute)
        region = (
            _region(graph, cluster, None)
            if cluster is not None
            else (graph.silo_region(silo) if silo else None) or _region(graph, compute, None)
        )
        for channel in channels:
            where = channel.what.replace("<region>", region)
            found.append(
                _network_movement(
                    step,
                    f"extension control: {where}",
                    actor,
                    where,
                    "the site's network (not in the stack)",
                    "",
                    "",
                    None,
                    assumed=f"the site's firewall or proxy must allow outbound TCP 443 to {where}",
                )
            )
    return found


def _api_server(step: str, actor: Actor, cluster: Node) -> Movement:
    profile = cluster.get("apiServerAccessProfile") or {}
    profile = profile if isinstance(profile, Mapping) else {}
    what = "Azure ML control plane reaches the API server"
    assumed = ""
    if profile.get("enablePrivateCluster") is True:
        assumed = (
            f"AKS cluster '{cluster.arm_name}' has a private API server: the Azure ML control "
            "plane must reach it (check the attach doc's private-cluster requirements)"
        )
    elif profile.get("authorizedIPRanges"):
        assumed = (
            f"AKS cluster '{cluster.arm_name}' admits only authorizedIPRanges on its API server: "
            "they must include Azure Machine Learning's addresses (service tag "
            "AzureMachineLearning)"
        )
    route = "public API server" if not assumed else "restricted API server"
    return _network_movement(
        step, what, actor, f"API server of '{cluster.arm_name}'", route, "", "", None, assumed
    )
