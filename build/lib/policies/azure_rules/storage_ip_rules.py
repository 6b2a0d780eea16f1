"""Rule 14: storage IP rules hold public IPv4 addresses, and no /31 or /32 ranges.

Source: Azure Storage docs, "Configure Azure Storage firewalls and virtual networks", IP
network rules: only public internet addresses are allowed (RFC 1918 private ranges are
refused), and small ranges with /31 or /32 prefixes are not supported (write the single
address instead).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from policies.graph import ResourceGraph
from policies.violation import Violation

NUMBER = 14
ID = "azure-14-storage-ip-rules"
TITLE = "Storage IP rules: public IPv4 only, no /31 or /32 ranges"
SOURCE = "Azure Storage docs: IP network rules restrictions"
UNVERIFIED = False

_RFC1918 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def _problem(text: str) -> str | None:
    if "/" in text and text.rsplit("/", 1)[1] in ("31", "32"):
        return "a /31 or /32 range (not supported)"
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return "not an IPv4 address or range"
    if not isinstance(net, ipaddress.IPv4Network):
        return "not IPv4"
    if any(net.subnet_of(block) for block in _RFC1918):
        return "a private (RFC 1918) range"
    return None


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for account in graph.storage_accounts:
        rules = account.get("networkRuleSet") or {}
        for rule in rules.get("ipRules") or []:
            if not isinstance(rule, Mapping):
                continue
            text = str(rule.get("iPAddressOrRange") or "")
            problem = _problem(text)
            if problem:
                found.append(
                    Violation.at(
                        ID,
                        account,
                        f"has IP rule {text!r}, {problem}; ARM refuses it.",
                        "Use a public IPv4 address, or a range of /30 or wider.",
                    )
                )
    return found
