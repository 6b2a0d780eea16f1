"""What every part of the stack spec shares: the error type, the model base, and the checks of
regions, VM sizes, node counts, address ranges and public addresses.

Kept apart from ``blueprints.spec`` so that the silo kinds (``blueprints.silo_kinds``) use the
same checks without importing the whole spec.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from blueprints.regions import AZURE_REGIONS
from components.vocabulary.vm_sizes import UnknownSize, VmSize, vm_size

NAMESPACE = "fl-sandbox"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NOT_INTERNET = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918, refused by Azure storage IP rules
        "100.64.0.0/10",  # carrier-grade NAT: never a source address on the internet
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
    )
)


class ConfigError(ValueError):
    """A stack setting that cannot be deployed, with the key, the value and the fix."""

    def __init__(self, key: str, value: Any, problem: str, fix: str, *, source: str = "") -> None:
        self.key = key
        self.value = value
        self.problem = problem
        self.fix = fix
        self.source = source
        super().__init__(f"{self.what}. Fix: {fix}")

    @property
    def what(self) -> str:
        """Where, which key, which value and what is wrong with it (without the fix)."""
        where = f"{self.source}: " if self.source else ""
        return f"{where}{NAMESPACE}:{self.key} = {self.value!r}: {self.problem}"


class SpecModel(BaseModel):
    """Strict (unknown keys refused), camelCase keys as Pulumi writes them, frozen."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        coerce_numbers_to_str=True,  # YAML reads `cost-center: 42` as a number
    )


class Secret(SpecModel):
    """A secret stack setting: decrypted text when Pulumi runs the program, or the encrypted
    ``secure:`` value of a stack file read offline (then only its presence is known)."""

    plain: str | None = None
    secure: str | None = Field(default=None, description="Pulumi's encrypted form")

    @property
    def known(self) -> bool:
        return self.plain is not None


def secret_value(value: Any) -> Any:
    """Stack-file shapes of a secret (a string, or ``{secure: ...}``) as a ``Secret``."""
    if isinstance(value, str):
        return {"plain": value}
    if isinstance(value, dict) and set(value) == {"secure"}:
        return {"secure": value["secure"]}
    return value


def check_region(key: str, region: str) -> None:
    if region not in AZURE_REGIONS:
        close = difflib.get_close_matches(region.lower().replace(" ", ""), AZURE_REGIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            key,
            region,
            "unknown Azure region",
            f"{hint}use a region name as `az account list-locations -o table` prints it, "
            "e.g. westeurope",
        )


def check_sku(key: str, sku: str) -> VmSize:
    """The size's facts (GPUs, confidential) or a ConfigError saying what is known."""
    try:
        return vm_size(sku)
    except UnknownSize as exc:
        raise ConfigError(key, sku, exc.problem, exc.fix) from None


def check_nodes(key: str, nodes: int) -> None:
    if not 1 <= nodes <= 100:
        raise ConfigError(key, nodes, "out of range", "use 1 to 100 nodes (clusters scale to 0)")


def check_network(key: str, cidr: str) -> ipaddress.IPv4Network:
    fix = "use a private IPv4 CIDR between /8 and /24 such as 10.1.0.0/16"
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ConfigError(key, cidr, f"not a network address ({exc})", fix) from None
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private:
        raise ConfigError(key, cidr, "not a private IPv4 range", fix)
    if not 8 <= net.prefixlen <= 24:
        raise ConfigError(
            key, cidr, "needs room for a compute and an endpoints subnet (/8 to /24)", fix
        )
    return net


def check_ip_range(key: str, text: str) -> None:
    """A public address as Azure storage IP rules take it (Azure Storage docs, "IP
    network rules"): public IPv4 only, single addresses or ranges up to /30 (/31 and /32
    ranges are not supported; a /32 is written as the plain address)."""
    fix = "use a public IPv4 address or CIDR range such as 203.0.113.7 or 203.0.113.0/24"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ConfigError(key, text, f"not an IPv4 address or range ({exc})", fix) from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ConfigError(key, text, "Azure storage IP rules take IPv4 only", fix)
    if any(net.subnet_of(block) for block in _NOT_INTERNET) or net.is_multicast:
        raise ConfigError(
            key,
            text,
            "a private or reserved range; storage IP rules admit only public internet "
            "addresses (traffic from a VNet arrives through private endpoints instead)",
            fix,
        )
    if net.prefixlen == 31:
        raise ConfigError(
            key, text, "Azure storage IP rules do not take /31 ranges", "list the two addresses"
        )
