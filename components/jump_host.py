"""A jump host in the hub VNet behind Azure Bastion: the route into a private sandbox.

What it builds (``fl-sandbox:jumpHost``, ``blueprints/jump_host_spec.py``), in the hub's
extra address range:

- ``AzureBastionSubnet`` (the name and the /26 minimum are Azure Bastion's rules) and a
  Standard, static public IP for the Bastion host, as Azure Bastion requires;
- a Standard-SKU Bastion host with native-client tunnelling, so that people connect with
  ``az network bastion ssh`` (Microsoft Learn, "Connect to a VM using Bastion and the
  Windows native client / Linux native client");
- a ``jump`` /28 subnet whose NSG admits SSH from the Bastion subnet only;
- an Ubuntu LTS VM with no public IP and no password. People sign in with their own Microsoft
  Entra ID account (the ``AADSSHLoginForLinux`` extension, Microsoft Learn "Sign in to a Linux
  virtual machine in Azure by using Microsoft Entra ID and OpenSSH"), so each person gets their
  own Linux account, and their ``az login`` token cache (plain files on Linux, Microsoft Learn
  "Sign in with Azure CLI") is theirs only: a submitter cannot reuse a silo uploader's login.
  The VM's system-assigned identity exists only because that extension needs it; it holds no
  role. The admin account (``adminUsername``, the SSH key) is for break-glass only;
- Reader on the VM, its NIC and the Bastion host (what a native-client connection needs, same
  Microsoft Learn page, "Prerequisites") and Virtual Machine User Login on the VM (no sudo) for
  every submitter and data uploader.

Every change to the hub VNet waits for the previous one (``after``): Azure refuses concurrent
operations on one VNet.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, compute, network

from components.vocabulary import builtin_roles as roles
from components.vocabulary import naming
from components.vocabulary.tags import orchestrator_tags, with_purpose

BASTION_SUBNET = "AzureBastionSubnet"
"""The only name Azure Bastion accepts for its subnet."""
HOST_SUBNET = "jump"
PURPOSE_JUMP_HOST = "jump-host"
UBUNTU = {
    "publisher": "Canonical",
    "offer": "ubuntu-24_04-lts",
    "sku": "server",
    "version": "latest",
}
"""Ubuntu 24.04 LTS, Canonical's current image reference on Azure."""


@dataclass(frozen=True)
class JumpHostUser:
    """Someone who connects through Bastion (a submitter or a data uploader)."""

    key: str
    """Stable, unique within the stack: names the role assignments."""
    principal_id: pulumi.Input[str]
    principal_type: str


@dataclass(frozen=True)
class JumpHostArgs:
    base_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    vnet_name: pulumi.Input[str]
    bastion_subnet: str
    host_subnet: str
    vm_size: str
    admin_username: str
    ssh_public_key: str
    users: Sequence[JumpHostUser]
    subscription_id: pulumi.Input[str]
    tags: Mapping[str, str]
    after: Sequence[pulumi.Resource] = ()
    nat_gateway_id: pulumi.Input[str] | None = None
    """The hub's NAT gateway, if it has one: the jump subnet leaves through it instead of
    Azure's default outbound access, which Learn does not recommend for production."""


class JumpHost(pulumi.ComponentResource):
    """Bastion, its subnet and IP, the jump subnet and NSG, the VM and its NIC, and Reader
    for its users."""

    bastion: network.BastionHost
    vm: compute.VirtualMachine
    last_vnet_change: pulumi.Resource
    """The last change this component makes to the hub VNet (for the next one to wait on)."""

    def __init__(
        self, name: str, args: JumpHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:JumpHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base, rg = args.base_name, args.resource_group_name
        # The hub's: the isolation checks tell owners by these markers.
        tags = with_purpose(orchestrator_tags(args.tags), PURPOSE_JUMP_HOST)

        bastion_subnet = network.Subnet(
            f"{name}-bastion-subnet",
            subnet_name=BASTION_SUBNET,
            virtual_network_name=args.vnet_name,
            resource_group_name=rg,
            address_prefix=args.bastion_subnet,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        nsg = network.NetworkSecurityGroup(
            f"{name}-nsg",
            network_security_group_name=naming.network("nsg", base, HOST_SUBNET),
            resource_group_name=rg,
            location=args.location,
            security_rules=[
                {
                    "name": "AllowSshFromBastion",
                    "priority": 100,
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "source_address_prefix": args.bastion_subnet,
                    "source_port_range": "*",
                    "destination_address_prefix": "*",
                    "destination_port_range": "22",
                },
                {
                    "name": "DenyOtherVnetInbound",
                    "priority": 4000,
                    "direction": "Inbound",
                    "access": "Deny",
                    "protocol": "*",
                    "source_address_prefix": "VirtualNetwork",
                    "source_port_range": "*",
                    "destination_address_prefix": "*",
                    "destination_port_range": "*",
                },
            ],
            tags=tags,
            opts=child,
        )
        host_subnet = network.Subnet(
            f"{name}-subnet",
            subnet_name=HOST_SUBNET,
            virtual_network_name=args.vnet_name,
            resource_group_name=rg,
            address_prefix=args.host_subnet,
            network_security_group={"id": nsg.id},
            # It reaches Entra ID, ARM and package mirrors for `az login` and tools: through
            # the hub's NAT gateway where there is one, else Azure's default outbound access.
            default_outbound_access=args.nat_gateway_id is None,
            nat_gateway=None if args.nat_gateway_id is None else {"id": args.nat_gateway_id},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bastion_subnet]),
        )
        self.last_vnet_change = host_subnet
        ip = network.PublicIPAddress(
            f"{name}-bastion-ip",
            public_ip_address_name=naming.network("pip", base, "bastion"),
            resource_group_name=rg,
            location=args.location,
            sku={"name": "Standard", "tier": "Regional"},
            public_ip_allocation_method="Static",
            tags=tags,
            opts=child,
        )
        self.bastion = network.BastionHost(
            f"{name}-bastion",
            bastion_host_name=naming.network("bas", base, "hub"),
            resource_group_name=rg,
            location=args.location,
            sku={"name": "Standard"},
            enable_tunneling=True,
            ip_configurations=[
                {
                    "name": "bastion",
                    "subnet": {"id": bastion_subnet.id},
                    "public_ip_address": {"id": ip.id},
                }
            ],
            tags=tags,
            # After the jump subnet: Azure refuses concurrent changes to one VNet.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[host_subnet]),
        )
        nic = network.NetworkInterface(
            f"{name}-nic",
            network_interface_name=naming.network("nic", base, HOST_SUBNET),
            resource_group_name=rg,
            location=args.location,
            ip_configurations=[
                {
                    "name": "primary",
                    "subnet": {"id": host_subnet.id},
                    "private_ip_allocation_method": "Dynamic",
                }
            ],
            tags=tags,
            opts=child,
        )
        self.vm = compute.VirtualMachine(
            f"{name}-vm",
            vm_name=naming.network("vm", base, HOST_SUBNET),
            resource_group_name=rg,
            location=args.location,
            hardware_profile={"vm_size": args.vm_size},
            network_profile={"network_interfaces": [{"id": nic.id, "primary": True}]},
            # Only for the Entra ID login extension; this identity holds no role.
            identity={"type": "SystemAssigned"},
            os_profile={
                "computer_name": "fl-jump",
                "admin_username": args.admin_username,
                "linux_configuration": {
                    "disable_password_authentication": True,
                    "ssh": {
                        "public_keys": [
                            {
                                "path": f"/home/{args.admin_username}/.ssh/authorized_keys",
                                "key_data": args.ssh_public_key.strip(),
                            }
                        ]
                    },
                },
            },
            storage_profile={
                "image_reference": dict(UBUNTU),
                "os_disk": {
                    "create_option": "FromImage",
                    "managed_disk": {"storage_account_type": "StandardSSD_LRS"},
                    "delete_option": "Delete",
                },
            },
            tags=tags,
            opts=child,
        )
        compute.VirtualMachineExtension(
            f"{name}-entra-login",
            vm_name=self.vm.name,
            vm_extension_name="AADSSHLoginForLinux",
            resource_group_name=rg,
            location=args.location,
            publisher="Microsoft.Azure.ActiveDirectory",
            type="AADSSHLoginForLinux",
            type_handler_version="1.0",
            auto_upgrade_minor_version=True,
            tags=tags,
            opts=child,
        )
        self.readers: list[authorization.RoleAssignment] = []
        grants = (
            (roles.READER, "reader-vm", self.vm.id, "connect through Bastion (the VM)"),
            (roles.READER, "reader-nic", nic.id, "connect through Bastion (the VM's NIC)"),
            (roles.READER, "reader-bastion", self.bastion.id, "connect through Bastion"),
            (roles.VM_USER_LOGIN, "login-vm", self.vm.id, "sign in as oneself (Entra ID)"),
        )
        for user in args.users:
            for role, label, scope, why in grants:
                self.readers.append(
                    authorization.RoleAssignment(
                        f"{name}-{label}-{user.key}",
                        principal_id=user.principal_id,
                        principal_type=user.principal_type,
                        role_definition_id=pulumi.Output.from_input(args.subscription_id).apply(
                            functools.partial(roles.role_definition_id, role=role)
                        ),
                        scope=scope,
                        description=f"jump host: {why}",
                        opts=child,
                    )
                )
        self.register_outputs({"bastion_id": self.bastion.id, "vm_id": self.vm.id})
