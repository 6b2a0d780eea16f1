"""``fl-sandbox:jumpHost``: a way into a sandbox whose endpoints are private.

In ``private`` and ``confidential`` the workspace, its storage and every silo's storage answer
only on private endpoints, so submitters and data uploaders need a host on the hub network.
This optional setting builds the route Azure's own secure-workspace tutorials and the
Azure-Samples FL accelerator use: a Linux jump host in the hub VNet, without a public IP,
reached through Azure Bastion (Standard SKU, native-client tunnelling, so that
``az network bastion ssh`` works). Its address space is added to the hub VNet: the first /26
is ``AzureBastionSubnet`` (Azure Bastion's required name and minimum size), the next /28 holds
the jump host. People sign in with their own Entra ID accounts (the ``AADSSHLoginForLinux``
extension, for which the VM has a system-assigned identity that holds no role), each into
their own Linux account, and upload and submit with their own ``az login``. The admin account
and its SSH key are break-glass only: whoever holds that key has sudo on the VM and so can
read every user's Azure CLI token cache, so keep it with whoever may act as every uploader.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field

from blueprints.spec_base import ConfigError, SpecModel, check_sku
from components.vocabulary.posture import NetworkPosture

DEFAULT_JUMP_HOST_ADDRESS_SPACE = "10.255.0.0/25"
DEFAULT_JUMP_HOST_SIZE = "Standard_B2s"

#: Azure's reserved Linux admin names (Microsoft Learn, "OSProfile.adminUsername").
RESERVED_USERNAMES = frozenset(
    [
        "administrator",
        "admin",
        "user",
        "user1",
        "test",
        "user2",
        "test1",
        "user3",
        "admin1",
        "1",
        "123",
        "a",
        "actuser",
        "adm",
        "admin2",
        "aspnet",
        "backup",
        "console",
        "david",
        "guest",
        "john",
        "owner",
        "root",
        "server",
        "sql",
        "support",
        "support_388945a0",
        "sys",
        "test2",
        "test3",
        "user4",
        "user5",
    ]
)
_USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,63}$")
_SSH_KEY = re.compile(
    r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]{40,}( .*)?$"
)


class JumpHostSpec(SpecModel):
    """The jump host and its Bastion (``blueprints/jump_host_spec.py``)."""

    ssh_public_key: str = Field(description="OpenSSH public key allowed to log in")
    address_space: str = DEFAULT_JUMP_HOST_ADDRESS_SPACE
    vm_size: str = DEFAULT_JUMP_HOST_SIZE
    admin_username: str = "flsandbox"

    @property
    def bastion_subnet(self) -> str:
        """The first /26 of the address space: ``AzureBastionSubnet``."""
        return str(next(ipaddress.IPv4Network(self.address_space).subnets(new_prefix=26)))

    @property
    def host_subnet(self) -> str:
        """The /28 right after the Bastion subnet."""
        bastion = ipaddress.IPv4Network(self.bastion_subnet)
        return str(ipaddress.IPv4Network((int(bastion.broadcast_address) + 1, 28)))


def check_jump_host(jump: JumpHostSpec | None, posture: NetworkPosture, blueprint: str) -> None:
    """The jump host fits the blueprint and Azure's rules, or a ConfigError with the fix."""
    if jump is None:
        return
    if not posture.networked:
        raise ConfigError(
            "jumpHost",
            "set",
            f"blueprint {blueprint!r} has no hub VNet to put a jump host in (and needs none: "
            "its endpoints are public)",
            "remove jumpHost, or use a networked blueprint (eyes-on, eyes-off, private, ...)",
        )
    fix = "use a private IPv4 range of /25 or larger such as 10.255.0.0/25"
    try:
        net = ipaddress.ip_network(jump.address_space, strict=True)
    except ValueError as exc:
        raise ConfigError(
            "jumpHost.addressSpace", jump.address_space, f"not a network address ({exc})", fix
        ) from None
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private:
        raise ConfigError(
            "jumpHost.addressSpace", jump.address_space, "not a private IPv4 range", fix
        )
    if net.prefixlen > 25:
        raise ConfigError(
            "jumpHost.addressSpace",
            jump.address_space,
            "needs room for AzureBastionSubnet (/26, Azure Bastion's minimum) and the jump "
            "host's /28",
            "use a /25 or larger range such as 10.255.0.0/25",
        )
    check_sku("jumpHost.vmSize", jump.vm_size)
    if not _USERNAME.match(jump.admin_username) or jump.admin_username in RESERVED_USERNAMES:
        raise ConfigError(
            "jumpHost.adminUsername",
            jump.admin_username,
            "not a Linux user name Azure accepts (lowercase, 1-64 characters, not a reserved "
            "name such as admin or root)",
            "use a name such as flsandbox",
        )
    if not _SSH_KEY.match(jump.ssh_public_key.strip()):
        raise ConfigError(
            "jumpHost.sshPublicKey",
            jump.ssh_public_key[:40],
            "not an OpenSSH public key",
            "paste the one line of your ~/.ssh/id_ed25519.pub (ssh-ed25519 AAAA... you@host)",
        )
