"""Invariant 4: every storage account is hardened; private blueprints keep data off the internet.

Everywhere: shared-key access off (identities only, so roles are the whole story), public blob
access off, TLS 1.2 or newer, no local users and no SFTP (each carries its own credentials). A
setting left unset counts as broken, because Azure's default for it is the unsafe one or may
change. Where the blueprint's posture makes storage private, silo storage and the model store
also have public network access disabled (or, in eyes-off, open to their data uploaders'
listed addresses only), a blob private endpoint, and copies limited to private links.
"""

from __future__ import annotations

from components.vocabulary.conventions import PURPOSE_MODELS, PURPOSE_SILO_DATA
from policies.graph import Node, ResourceGraph, purpose_of, silo_of
from policies.violation import Violation

NUMBER = 4
ID = "storage-hardening"
TITLE = (
    "Storage: no shared keys, public blobs, local users or SFTP; TLS 1.2; private where promised"
)

ACCEPTED_TLS = frozenset({"TLS1_2", "TLS1_3"})


def setting_problems(account: Node) -> list[tuple[str, str]]:
    """(problem, fix) for each unsafe setting; needs only the account's own properties."""
    problems: list[tuple[str, str]] = []
    shared_key = account.get("allowSharedKeyAccess")
    if shared_key is not False:
        problems.append(
            (
                f"allowSharedKeyAccess is {shared_key!r}; account keys and SAS would bypass RBAC.",
                "Set allowSharedKeyAccess=False.",
            )
        )
    public_blob = account.get("allowBlobPublicAccess")
    if public_blob is not False:
        problems.append(
            (
                f"allowBlobPublicAccess is {public_blob!r}; containers could be made public.",
                "Set allowBlobPublicAccess=False.",
            )
        )
    tls = account.get("minimumTlsVersion")
    if tls not in ACCEPTED_TLS:
        problems.append((f"minimumTlsVersion is {tls!r}.", "Set minimumTlsVersion='TLS1_2'."))
    for setting, what in (("isLocalUserEnabled", "local users"), ("isSftpEnabled", "SFTP")):
        value = account.get(setting)
        if value is not False:
            problems.append(
                (
                    f"{setting} is {value!r}; {what} carry their own credentials beside RBAC.",
                    f"Set {setting}=False.",
                )
            )
    return problems


def _private(graph: ResourceGraph, account: Node) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    copy_scope = account.get("allowedCopyScope")
    if copy_scope != "PrivateLink":
        problems.append(
            (
                f"allowedCopyScope is {copy_scope!r} on private storage; server-side copies "
                "could move its data to accounts outside the sandbox's private links.",
                "Set allowedCopyScope='PrivateLink'.",
            )
        )
    access = account.get("publicNetworkAccess")
    if access != "Disabled" and not _open_to_uploaders_only(graph, account):
        problems.append(
            (
                f"publicNetworkAccess is {access!r} in blueprint '{graph.blueprint}', which "
                "keeps silo and model storage private.",
                "Set publicNetworkAccess='Disabled'.",
            )
        )
    if not graph.private_endpoints_to(account, "blob"):
        problems.append(
            (
                f"has no blob private endpoint in blueprint '{graph.blueprint}', which keeps it "
                "private, so computes could not reach it.",
                "Add a PrivateEndpoint with groupIds=['blob'] to this account in the silo's "
                "endpoints subnet.",
            )
        )
    return problems


def _open_to_uploaders_only(graph: ResourceGraph, account: Node) -> bool:
    """Private storage may admit its own data uploaders' addresses (``dataUploaders`` with
    ``ipRanges``, eyes-off): default Deny, no trusted-service bypass, and every IP rule one of
    the addresses listed for the silo (or, on the model store, for the test set)."""
    rules = account.get("networkRuleSet") or {}
    if rules.get("defaultAction") != "Deny" or rules.get("bypass") != "None":
        return False
    if rules.get("virtualNetworkRules") or rules.get("resourceAccessRules"):
        return False
    target = silo_of(account) if purpose_of(account) == PURPOSE_SILO_DATA else "global"
    admitted = {
        str(r)
        for u in graph.outputs.get("data_uploaders") or []
        if isinstance(u, dict) and u.get("target") == target
        for r in u.get("ip_ranges") or []
    }
    ips = [r.get("iPAddressOrRange") for r in rules.get("ipRules") or [] if isinstance(r, dict)]
    return bool(ips) and all(ip in admitted or f"{ip}/32" in admitted for ip in ips)


def _unknown(account: Node) -> bool:
    """An account the stack reads but does not manage, whose settings are not known here (the
    offline plan knows only its id; CrossGuard sees the real settings and checks them)."""
    return account.read and account.get("allowSharedKeyAccess") is None


def check_storage_hardening(graph: ResourceGraph) -> list[Violation]:
    """Report every unsafe storage setting, and public reachability where it must be private."""
    found: list[Violation] = []
    for account in graph.storage_accounts:
        if _unknown(account):
            continue
        problems = setting_problems(account)
        if graph.private_storage and purpose_of(account) in (PURPOSE_SILO_DATA, PURPOSE_MODELS):
            problems += _private(graph, account)
        found += [Violation.at(ID, account, problem, fix) for problem, fix in problems]
    return found


check = check_storage_hardening
