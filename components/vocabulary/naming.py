"""Azure resource names for a sandbox, in one place, checked against Azure's rules.

Every name is derived from the stack's ``baseName``, a label (``orchestrator``, a silo name,
``models``...) and, for resources whose names are global or soft-deleted (storage accounts,
Key Vaults, registries, workspaces, resource groups), a short random suffix drawn once per
stack. Redeploying after a destroy draws a new suffix, so a soft-deleted vault never collides.

Mocks do no ARM validation, so the rules Azure enforces are written down here (``RULES``) and
every generated name is checked against them before it is used.
"""

from __future__ import annotations

import hashlib
import re
import string

SUFFIX_LENGTH = 5
"""Length of the random per-deployment suffix (lowercase letters and digits)."""

RULES: dict[str, re.Pattern[str]] = {
    # 3-24 lowercase letters and digits, globally unique.
    "storage_account": re.compile(r"^[a-z0-9]{3,24}$"),
    # 3-24 letters, digits and single dashes; starts with a letter, ends with letter/digit.
    "key_vault": re.compile(r"^(?!.*--)[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$"),
    # 5-50 letters and digits, globally unique.
    "container_registry": re.compile(r"^[a-zA-Z0-9]{5,50}$"),
    # 3-33 letters, digits, dashes, underscores; starts with a letter or digit.
    "workspace": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$"),
    # 2-16 letters, digits, dashes; starts with a letter, does not end with a dash.
    "compute": re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,14}[a-zA-Z0-9]$"),
    # Letters, digits and underscores.
    "datastore": re.compile(r"^[a-zA-Z0-9_]{1,255}$"),
    # 3-63 lowercase letters, digits, single dashes; starts and ends with letter/digit.
    "blob_container": re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
    # 1-90 letters, digits, '-', '_', '.', '(' and ')'; does not end with '.'.
    "resource_group": re.compile(r"^[-\w.()]{0,89}[-\w()]$"),
    # 3-128 letters, digits, '-', '_'; starts with a letter or digit.
    "identity": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$"),
    # 4-63 letters, digits, dashes; starts and ends with a letter or digit.
    "log_analytics": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{2,61}[a-zA-Z0-9]$"),
    # 1-260 characters; no '%&\\?/' and not ending with a space or '.'.
    "app_insights": re.compile(r"^[^%&\\?/]{0,259}[^%&\\?/. ]$"),
    # 2-64 letters, digits, '_', '.', '-'; starts with letter/digit, ends with letter/digit/_.
    "network": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9_]$"),
}


class NamingError(ValueError):
    """A generated name would break an Azure naming rule."""


def check(kind: str, name: str) -> str:
    """Return ``name`` if it satisfies Azure's rule for ``kind``; raise NamingError otherwise."""
    rule = RULES[kind]
    if not rule.match(name):
        raise NamingError(f"{kind} name {name!r} breaks Azure's naming rule {rule.pattern}")
    return name


def _short_hash(text: str, length: int = 3) -> str:
    """A few base-36 characters that tell apart labels which shorten to the same prefix."""
    alphabet = string.digits + string.ascii_lowercase
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 36)
        chars.append(alphabet[digit])
    return "".join(chars)


def alnum(text: str) -> str:
    """Lowercase letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def compact(label: str, max_len: int) -> str:
    """``label`` as lowercase alphanumerics in at most ``max_len`` characters.

    Kept as is when it already fits unchanged; otherwise a prefix plus a short hash of the full
    label, so that two different labels never shorten to the same text.
    """
    squashed = alnum(label)
    if squashed == label and len(squashed) <= max_len:
        return squashed
    return squashed[: max_len - 3] + _short_hash(label)


def _dashed(label: str, max_len: int) -> str:
    """``label`` (letters, digits, single dashes) in at most ``max_len`` characters."""
    if len(label) <= max_len:
        return label
    return label[: max_len - 4].rstrip("-") + "-" + _short_hash(label)


def storage_account(base: str, label: str, suffix: str) -> str:
    """``st`` + base + label + suffix, at most 24 lowercase alphanumerics."""
    return check("storage_account", "st" + alnum(base)[:8] + compact(label, 9) + suffix)


def key_vault(base: str, suffix: str) -> str:
    return check("key_vault", f"kv-{base[:12].strip('-')}-{suffix}")


def container_registry(base: str, suffix: str) -> str:
    return check("container_registry", f"acr{alnum(base)}{suffix}")


HBI_MARK = "-hbi-"
"""In an HBI workspace's name: the flag is fixed at creation, so changing it replaces the
workspace, and soft delete keeps the old name for 14 days; a name that follows the flag lets
Pulumi create the new workspace before it deletes the old one (Azure's rule 3)."""


def workspace(base: str, suffix: str, hbi: bool = False) -> str:
    return check("workspace", f"mlw-{base}{HBI_MARK if hbi else '-'}{suffix}")


def log_analytics(base: str, suffix: str) -> str:
    return check("log_analytics", f"log-{base}-{suffix}")


def app_insights(base: str, suffix: str) -> str:
    return check("app_insights", f"appi-{base}-{suffix}")


def resource_group(base: str, label: str, suffix: str) -> str:
    return check("resource_group", f"rg-{base}-{label}-{suffix}")


def identity(base: str, label: str) -> str:
    return check("identity", f"id-{base}-{label}")


def compute(label: str) -> str:
    """AML compute names are unique within the workspace: no suffix needed."""
    return check("compute", "c-" + _dashed(label, 14))


ORCHESTRATOR_COMPUTE = check("compute", "orchestrator")


def datastore(prefix: str, label: str) -> str:
    return check("datastore", f"{prefix}_{label.replace('-', '_')}")


def silo_container(silo: str) -> str:
    """The model-store container that receives one silo's model updates."""
    return check("blob_container", f"silo-{silo}")


def network(kind: str, base: str, label: str) -> str:
    """VNets, NSGs, private endpoints, peerings and links (names scoped to a resource group)."""
    return check("network", f"{kind}-{base}-{label}")


IMAGE_BUILD_COMPUTE = check("compute", "image-builder")
"""The cluster that builds environment images where the registry or storage is private."""
