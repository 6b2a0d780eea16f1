"""Data uploaders: who may put a silo's raw data, or the orchestrator's test set, in place.

Set per silo, and under ``global`` for the test set the ``init`` step reads:

    fl-sandbox:dataUploaders:
      hospital-a:
        - principalId: 3f2c...            # the site's data custodian
          ipRanges: [198.51.100.23]       # where the posture admits addresses (see below)
      global:
        - principalId: 7a1b...
          principalType: Group

An uploader gets Storage Blob Data Contributor on its silo's data container (never the
account, never another silo), or on the model store's ``global`` container under a role
assignment condition that limits it to the test-set paths (``TEST_PATH_PATTERN``), so it can
never overwrite a global model. Its route, by where the target storage lives:

- public storage (minimal, eyes-on, Azure silos of hybrid): over the internet, by role only;
  ``ipRanges`` would have no effect and are refused;
- an on-premises silo's storage (hybrid, selected networks): its ``ipRanges`` join the IP rules
  beside the cluster's egress addresses, and are required;
- private storage in ``eyes-off``: with ``ipRanges`` the account admits those addresses
  (selected networks, default Deny, no service bypass, copies still limited to private links);
  without them there is no route and the job path reports seeding as *assumed*;
- ``private`` and ``confidential``: uploaders come in through the hub network like submitters
  (the stack builds no host there), so ``ipRanges`` are refused and seeding is *assumed*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from blueprints.spec_base import GUID, ConfigError, SpecModel, check_ip_range
from fl_jobs.silo.data_upload import TEST_PATH_PATTERN

if TYPE_CHECKING:
    from blueprints.spec import SandboxSpec

GLOBAL = "global"
"""The ``dataUploaders`` key of the orchestrator's test set."""

Route = Literal["public", "selected-networks", "hub"]


class DataUploader(SpecModel):
    """A person, group or app that uploads one silo's data (or the test set)."""

    principal_id: str
    principal_type: Literal["User", "Group", "ServicePrincipal"] = "User"
    ip_ranges: list[str] = Field(default_factory=list)


def test_path_condition(pattern: str = TEST_PATH_PATTERN) -> str:
    """An ABAC condition (version 2.0) allowing blob reads, writes and deletes only on paths
    matching ``pattern``. Source: Microsoft Learn, "Example Azure role assignment conditions
    for Blob Storage", *Read, write, or delete blobs in named containers with a path*."""
    actions = ("read", "write", "add/action", "delete")
    not_matches = " AND ".join(
        f"!(ActionMatches{{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/{a}'}})"
        for a in actions
    )
    path = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]"
    return f"(({not_matches}) OR ({path} StringLike '{pattern}'))"


def storage_route(spec: SandboxSpec, target: str) -> Route | Literal["private"]:
    """How the target's storage is reached from outside: ``private`` means no route unless
    uploaders bring addresses (eyes-off)."""
    posture = spec.posture
    if target != GLOBAL and spec.silo(target).silo_kind.on_premises:
        return "selected-networks"
    if not posture.storage_private:
        return "public"
    return "hub" if posture.workspace_private else "private"


def uploader_ip_ranges(spec: SandboxSpec, target: str) -> list[str]:
    """Addresses the target's storage must admit for its uploaders, in order, no repeats."""
    ranges: list[str] = []
    for uploader in spec.data_uploaders.get(target, []):
        ranges += [r for r in uploader.ip_ranges if r not in ranges]
    return ranges


def uploader_network(spec: SandboxSpec, target: str, uploader: DataUploader) -> str:
    """Where the job path places this uploader: the internet, or the hub network (no route
    the stack builds)."""
    route = storage_route(spec, target)
    if route == "hub" or (route == "private" and not uploader.ip_ranges):
        return "hub"
    return "internet"


def upload_route(spec: SandboxSpec, silo: str) -> list[str]:
    """Ranges outside a silo's VNet its private endpoints admit: the jump host's subnet,
    when the stack builds one and an uploader of this silo comes in through the hub. Never
    the hub's own range, whose subnets hold the orchestrator's computes: a host of the
    user's there is not admitted (the job path says so)."""
    through_hub = any(
        uploader_network(spec, silo, u) == "hub" for u in spec.data_uploaders.get(silo, [])
    )
    return [spec.jump_host.host_subnet] if through_hub and spec.jump_host is not None else []


def check_data_uploaders(spec: SandboxSpec) -> None:
    """Refuse an uploader that names no silo, is no object id, would reach two silos or is a
    submitter of a silo's data, or whose ``ipRanges`` the posture cannot use."""
    silos = spec.silo_names
    submitters = {s.principal_id.lower() for s in spec.submitters}
    silo_of: dict[str, str] = {}
    for target, uploaders in spec.data_uploaders.items():
        if target != GLOBAL and target not in silos:
            raise ConfigError(
                f"dataUploaders.{target}",
                target,
                "no such silo",
                f"use a silo name ({', '.join(silos)}) or '{GLOBAL}' for the test set",
            )
        if target != GLOBAL and spec.silo(target).storage is not None and uploaders:
            raise ConfigError(
                f"dataUploaders.{target}",
                [u.principal_id for u in uploaders],
                f"silo {target!r} brings its own storage account, whose data container this "
                "stack does not manage (a role scoped to it could not wait for it)",
                "grant the uploader on that account where it is managed, or let the stack "
                "create the silo's storage",
            )
        seen: set[str] = set()
        for i, uploader in enumerate(uploaders):
            key = f"dataUploaders.{target}[{i}]"
            pid = uploader.principal_id.lower()
            if not GUID.match(pid):
                raise ConfigError(
                    f"{key}.principalId",
                    uploader.principal_id,
                    "not an object id",
                    "use the principal's object id (a GUID, e.g. from `az ad signed-in-user "
                    "show --query id -o tsv`)",
                )
            if pid in seen:
                raise ConfigError(
                    f"{key}.principalId",
                    uploader.principal_id,
                    f"listed twice under {target}",
                    "list each uploader once, with all of its ipRanges",
                )
            seen.add(pid)
            if target != GLOBAL:
                if pid in submitters:
                    raise ConfigError(
                        f"{key}.principalId",
                        uploader.principal_id,
                        "this principal submits jobs, and submitters never reach a silo's data",
                        "upload the silo's data as a different principal (its data custodian)",
                    )
                if pid in silo_of:
                    raise ConfigError(
                        f"{key}.principalId",
                        uploader.principal_id,
                        f"also uploads silo {silo_of[pid]!r}'s data; an uploader would then "
                        "reach two silos' storage",
                        "use one principal per silo",
                    )
                silo_of[pid] = target
                _check_other_roles(spec, key, target, uploader)
            for j, text in enumerate(uploader.ip_ranges):
                check_ip_range(f"{key}.ipRanges[{j}]", text)
            _check_route(spec, key, target, uploader)


def _check_route(spec: SandboxSpec, key: str, target: str, uploader: DataUploader) -> None:
    route = storage_route(spec, target)
    what = "the test set's model store" if target == GLOBAL else f"silo {target!r}'s storage"
    if route == "public" and uploader.ip_ranges:
        raise ConfigError(
            f"{key}.ipRanges",
            uploader.ip_ranges,
            f"{what} is open to every network in blueprint {spec.blueprint!r} (access is by "
            "role only), so these ranges would have no effect",
            "remove ipRanges",
        )
    if route == "hub" and uploader.ip_ranges:
        raise ConfigError(
            f"{key}.ipRanges",
            uploader.ip_ranges,
            f"blueprint {spec.blueprint!r} keeps {what} private, and uploaders come in through "
            "the hub network like submitters",
            "remove ipRanges and upload from a host connected to the hub VNet (Bastion and a "
            "jump host, or a VPN); see docs/infrastructure.md",
        )
    if route == "selected-networks" and not uploader.ip_ranges:
        raise ConfigError(
            f"{key}.ipRanges",
            [],
            f"{what} admits only listed addresses, so this uploader could not reach it",
            "list the public IPv4 addresses it uploads from (`curl -s https://ifconfig.me`)",
        )


def _check_other_roles(spec: SandboxSpec, key: str, silo: str, uploader: DataUploader) -> None:
    """An uploader of ``silo`` gets nothing on another silo through extraRoleAssignments."""
    from components.vocabulary.access_targets import parse_target

    pid = uploader.principal_id.lower()
    for i, grant in enumerate(spec.extra_role_assignments):
        if grant.principal_id.lower() != pid:
            continue
        others = parse_target(grant.target, spec.silo_names).silo_resources_covered(
            spec.silo_names
        ) - {silo}
        if others or (grant.member_of not in (None, silo)):
            other = sorted(others)[0] if others else grant.member_of
            raise ConfigError(
                f"{key}.principalId",
                uploader.principal_id,
                f"uploads silo {silo!r}'s data and extraRoleAssignments[{i}] gives it silo "
                f"{other!r}'s resources; an uploader never reaches another silo",
                "use a different principal for each silo",
            )
