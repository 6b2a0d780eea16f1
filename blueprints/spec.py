"""The validated sandbox spec: everything a user sets in ``stacks/Pulumi.<stack>.yaml``.

All settings live under the ``fl-sandbox:`` namespace, in camelCase as Pulumi config keys
usually are (``baseName``, ``extraRoleAssignments``; silos use ``computeSku``, ``maxNodes``,
``addressSpace``). ``parse_spec`` turns that mapping into a ``SandboxSpec`` or raises one
``ConfigError`` naming the key, the bad value and the fix; the Pulumi program parses before
it declares a single resource, so a bad config never half-deploys.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from blueprints.regions import AZURE_REGIONS, DEFAULT_SILO_REGIONS
from components import naming
from components.access_targets import TARGET_FORMS, Target, parse_target
from components.builtin_roles import BUILTIN_ROLES, touches_data

NAMESPACE = "fl-sandbox"
BlueprintName = Literal["minimal", "eyes-on", "eyes-off"]
BLUEPRINT_NAMES: tuple[str, ...] = ("minimal", "eyes-on", "eyes-off")
MAX_SILOS = 100
DEFAULT_SKU = "Standard_DS3_v2"
DEFAULT_ORCHESTRATOR_ADDRESS_SPACE = "10.0.0.0/16"
RESERVED_SILO_NAMES = frozenset({"orchestrator", "hub", "models", "ws", "global"})
"""Labels the orchestrator's own resources use; a silo with one of them would collide."""

_SILO_NAME = re.compile(r"^(?!.*--)[a-z]([a-z0-9-]{0,22}[a-z0-9])?$")
_BASE_NAME = re.compile(r"^(?!.*--)[a-z][a-z0-9-]{0,14}[a-z0-9]$")
_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Z]+[0-9]+(-[0-9]+)?[a-z]*(_[A-Za-z0-9]+)*$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TAG_KEY_FORBIDDEN = re.compile(r"[<>%&\\?/]")


class ConfigError(ValueError):
    """A stack setting that cannot be deployed, with the key, the value and the fix."""

    def __init__(self, key: str, value: Any, problem: str, fix: str, *, source: str = "") -> None:
        self.key = key
        self.value = value
        self.problem = problem
        self.fix = fix
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{NAMESPACE}:{key} = {value!r}: {problem}. Fix: {fix}")


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        coerce_numbers_to_str=True,  # YAML reads `cost-center: 42` as a number
    )


class SiloSpec(_Spec):
    """One silo: its own resource group, storage, identity and compute, in its region."""

    name: str
    region: str
    compute_sku: str = DEFAULT_SKU
    max_nodes: int = 2
    address_space: str | None = Field(
        default=None, description="CIDR of the silo VNet; assigned automatically when unset"
    )


class ExtraRoleAssignment(_Spec):
    """A role for a person, group or app, e.g. a silo's data custodian on its storage."""

    principal_id: str
    principal_type: Literal["User", "Group", "ServicePrincipal"] = "User"
    role: str
    target: str
    member_of: str | None = Field(
        default=None, description="the silo this principal belongs to (e.g. its custodian)"
    )
    why: str = "granted in the stack file"


class SandboxSpec(_Spec):
    """A whole sandbox: which blueprint, where, which silos, and who else gets access."""

    blueprint: BlueprintName
    base_name: str = "flsandbox"
    region: str = "westeurope"
    silos: list[SiloSpec]
    tags: dict[str, str] = Field(default_factory=dict)
    extra_role_assignments: list[ExtraRoleAssignment] = Field(default_factory=list)
    orchestrator_compute_sku: str = DEFAULT_SKU
    orchestrator_max_nodes: int = 2
    orchestrator_address_space: str = DEFAULT_ORCHESTRATOR_ADDRESS_SPACE

    @property
    def silo_names(self) -> list[str]:
        return [s.name for s in self.silos]

    def silo(self, name: str) -> SiloSpec:
        for silo in self.silos:
            if silo.name == name:
                return silo
        raise KeyError(name)


def parse_spec(raw: Mapping[str, Any], *, source: str = "stack config") -> SandboxSpec:
    """Validate the ``fl-sandbox:`` settings (keys without the prefix) into a full spec.

    Unset silo address spaces are filled in (non-overlapping ``10.<n>.0.0/16``), so the
    returned spec says exactly what will be deployed.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            "<root>", raw, "expected a mapping of settings", "write key: value pairs", source=source
        )
    try:
        spec = SandboxSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise _from_pydantic(exc, raw, source) from None
    try:
        _check(spec)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.value, exc.problem, exc.fix, source=source) from None
    return _assign_address_spaces(spec)


def load_stack_file(path: str | Path) -> SandboxSpec:
    """Read ``stacks/Pulumi.<stack>.yaml`` and parse its ``fl-sandbox:`` settings."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            "<stack file>",
            str(path),
            "no such file",
            "pass a stack file such as stacks/Pulumi.minimal.yaml",
        )
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            "<stack file>", str(path), f"not valid YAML ({exc})", "fix the YAML"
        ) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(
            "<stack file>",
            str(path),
            "has no 'config:' mapping",
            f"put the settings under 'config:' as '{NAMESPACE}:<key>: <value>'",
        )
    raw = {
        key.removeprefix(f"{NAMESPACE}:"): value
        for key, value in config.items()
        if isinstance(key, str) and key.startswith(f"{NAMESPACE}:")
    }
    return parse_spec(raw, source=str(path))


def default_spec(blueprint: str, silos: int, *, base_name: str = "flsandbox") -> SandboxSpec:
    """A ready-to-deploy spec with ``silos`` silos named silo1..N spread over EU regions."""
    source = f"--blueprint {blueprint} --silos {silos}"
    if not 1 <= silos <= MAX_SILOS:
        raise ConfigError(
            "silos",
            silos,
            "a federation needs at least one silo and at most 100",
            f"use --silos between 1 and {MAX_SILOS}",
            source=source,
        )
    raw = {
        "blueprint": blueprint,
        "baseName": base_name,
        "region": DEFAULT_SILO_REGIONS[0],
        "silos": [
            {"name": f"silo{i + 1}", "region": DEFAULT_SILO_REGIONS[i % len(DEFAULT_SILO_REGIONS)]}
            for i in range(silos)
        ],
    }
    return parse_spec(raw, source=source)


# --- pydantic errors -> ConfigError ---------------------------------------------------------


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _lookup(raw: Any, loc: tuple[int | str, ...]) -> Any:
    value = raw
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [to_camel(name) for name in model.model_fields]


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel]:
    names = [p for p in loc if isinstance(p, str)]
    if names[:1] == ["silos"]:
        return SiloSpec
    if names[:1] in (["extraRoleAssignments"], ["extra_role_assignments"]):
        return ExtraRoleAssignment
    return SandboxSpec


def _from_pydantic(exc: ValidationError, raw: Mapping[str, Any], source: str) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = _key_path(loc)
    value = _lookup(raw, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(_model_at(loc[:-1]))
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return ConfigError(
            key, value, "unknown key", f"{hint}known keys here: {', '.join(known)}", source=source
        )
    if kind == "missing":
        return ConfigError(key, None, "required key is missing", "add it", source=source)
    if loc == ("blueprint",):
        return ConfigError(
            key,
            value,
            "unknown blueprint",
            f"use one of: {', '.join(BLUEPRINT_NAMES)}",
            source=source,
        )
    return ConfigError(key, value, err["msg"], "give a value of the expected type", source=source)


# --- semantic checks ------------------------------------------------------------------------


def _check(spec: SandboxSpec) -> None:
    _check_base(spec)
    _check_silos(spec)
    _check_tags(spec)
    _check_networks(spec)
    _check_extra_roles(spec)


def _check_base(spec: SandboxSpec) -> None:
    if not _BASE_NAME.match(spec.base_name):
        raise ConfigError(
            "baseName",
            spec.base_name,
            "invalid base name (it prefixes every Azure resource name)",
            "use 2-16 lowercase letters, digits or single '-', starting with a letter",
        )
    _check_region("region", spec.region)
    _check_sku("orchestratorComputeSku", spec.orchestrator_compute_sku)
    _check_nodes("orchestratorMaxNodes", spec.orchestrator_max_nodes)


def _check_region(key: str, region: str) -> None:
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


def _check_sku(key: str, sku: str) -> None:
    if not _VM_SIZE.match(sku):
        raise ConfigError(
            key,
            sku,
            "not an Azure VM size",
            "use Azure's form Standard_<family><vCPUs>[features][_version], e.g. Standard_DS3_v2",
        )


def _check_nodes(key: str, nodes: int) -> None:
    if not 1 <= nodes <= 100:
        raise ConfigError(key, nodes, "out of range", "use 1 to 100 nodes (clusters scale to 0)")


def _check_silos(spec: SandboxSpec) -> None:
    count = len(spec.silos)
    if not 1 <= count <= MAX_SILOS:
        raise ConfigError(
            "silos",
            f"{count} silos",
            "a federation needs at least one silo and at most 100",
            f"list between 1 and {MAX_SILOS} silos",
        )
    seen: dict[str, int] = {}
    computes: dict[str, str] = {}
    accounts: dict[str, str] = {}
    for i, silo in enumerate(spec.silos):
        key = f"silos[{i}]"
        if not _SILO_NAME.match(silo.name):
            raise ConfigError(
                f"{key}.name",
                silo.name,
                "invalid silo name",
                "use 1-24 lowercase letters, digits or single '-', starting with a letter and "
                "not ending with '-'",
            )
        if silo.name in RESERVED_SILO_NAMES:
            raise ConfigError(
                f"{key}.name",
                silo.name,
                "reserved for the orchestrator's own resources",
                f"pick another name (reserved: {', '.join(sorted(RESERVED_SILO_NAMES))})",
            )
        if silo.name in seen:
            raise ConfigError(
                f"{key}.name",
                silo.name,
                f"duplicate silo name (also silos[{seen[silo.name]}])",
                "give every silo a unique name",
            )
        seen[silo.name] = i
        _check_region(f"{key}.region", silo.region)
        _check_sku(f"{key}.computeSku", silo.compute_sku)
        _check_nodes(f"{key}.maxNodes", silo.max_nodes)
        # Names Azure sees are shortened; make sure two silos never shorten alike.
        for label, table, name in (
            ("compute", computes, naming.compute(silo.name)),
            ("storage account", accounts, naming.storage_account(spec.base_name, silo.name, "x")),
        ):
            if name in table:
                raise ConfigError(
                    f"{key}.name",
                    silo.name,
                    f"its {label} name {name!r} would equal silo {table[name]!r}'s",
                    "make the silo names differ in their first characters",
                )
            table[name] = silo.name


def _check_tags(spec: SandboxSpec) -> None:
    if len(spec.tags) > 40:
        raise ConfigError(
            "tags", f"{len(spec.tags)} tags", "too many tags", "use at most 40 (Azure allows 50)"
        )
    for key, value in spec.tags.items():
        if key.startswith(f"{NAMESPACE}-"):
            raise ConfigError(
                f"tags.{key}",
                value,
                "tags starting with 'fl-sandbox-' are set by the sandbox itself",
                "rename the tag",
            )
        if not 1 <= len(key) <= 512 or _TAG_KEY_FORBIDDEN.search(key):
            raise ConfigError(
                f"tags.{key}", value, "invalid tag name", "use 1-512 characters without <>%&\\?/"
            )
        if len(value) > 256:
            raise ConfigError(f"tags.{key}", value, "tag value too long", "use <= 256 characters")


def _network(key: str, cidr: str) -> ipaddress.IPv4Network:
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


def _given_networks(spec: SandboxSpec) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    yield (
        "orchestratorAddressSpace",
        _network("orchestratorAddressSpace", spec.orchestrator_address_space),
    )
    for i, silo in enumerate(spec.silos):
        if silo.address_space is not None:
            key = f"silos[{i}].addressSpace"
            yield key, _network(key, silo.address_space)


def _check_networks(spec: SandboxSpec) -> None:
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for key, net in _given_networks(spec):
        for other_key, other in seen:
            if net.overlaps(other):
                raise ConfigError(
                    key,
                    str(net),
                    f"overlaps {other_key} ({other}); peered VNets must not overlap",
                    "give every silo and the orchestrator a disjoint range, or leave silo "
                    "addressSpace unset to get one assigned",
                )
        seen.append((key, net))


def _assign_address_spaces(spec: SandboxSpec) -> SandboxSpec:
    taken = [net for _, net in _given_networks(spec)]
    candidates = (ipaddress.IPv4Network(f"10.{n}.0.0/16") for n in range(256))
    silos: list[SiloSpec] = []
    for silo in spec.silos:
        if silo.address_space is None:
            net = next(c for c in candidates if not any(c.overlaps(t) for t in taken))
            taken.append(net)
            silo = silo.model_copy(update={"address_space": str(net)})
        silos.append(silo)
    return spec.model_copy(update={"silos": silos})


def _check_extra_roles(spec: SandboxSpec) -> None:
    silos = spec.silo_names
    seen: set[tuple[str, str, str]] = set()
    for i, grant in enumerate(spec.extra_role_assignments):
        key = f"extraRoleAssignments[{i}]"
        if not _GUID.match(grant.principal_id):
            raise ConfigError(
                f"{key}.principalId",
                grant.principal_id,
                "not an object id",
                "use the principal's object id (a GUID), e.g. from "
                "`az ad user show --id <upn> --query id -o tsv`",
            )
        if grant.role not in BUILTIN_ROLES:
            close = difflib.get_close_matches(grant.role, BUILTIN_ROLES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{key}.role",
                grant.role,
                "unknown built-in role",
                f"{hint}use one of: {', '.join(sorted(BUILTIN_ROLES))}",
            )
        try:
            target = parse_target(grant.target, silos)
        except ValueError as exc:
            raise ConfigError(
                f"{key}.target", grant.target, str(exc), f"use one of: {', '.join(TARGET_FORMS)}"
            ) from None
        if grant.member_of is not None and grant.member_of not in silos:
            raise ConfigError(
                f"{key}.memberOf",
                grant.member_of,
                "no such silo",
                f"use one of the silo names: {', '.join(silos)}",
            )
        _check_isolation(key, grant, target, silos)
        identity = (grant.principal_id.lower(), grant.role, str(target))
        if identity in seen:
            raise ConfigError(
                key,
                f"{grant.role} on {target}",
                "the same principal gets the same role on the same target twice",
                "remove the duplicate entry",
            )
        seen.add(identity)


def _check_isolation(
    key: str, grant: ExtraRoleAssignment, target: Target, silos: list[str]
) -> None:
    """Refuse grants that would break the silo isolation invariants."""
    value = f"{grant.role} on {target}"
    if grant.member_of is not None:
        others = target.silo_resources_covered(silos) - {grant.member_of}
        if others:
            raise ConfigError(
                key,
                value,
                f"a member of silo {grant.member_of!r} would get access to silo "
                f"{sorted(others)[0]!r}'s resources",
                f"grant it only on silo:{grant.member_of}-storage or orchestrator targets",
            )
        return
    if not touches_data(grant.role):
        return
    covered = target.silo_storage_covered(silos)
    if covered:
        silo = sorted(covered)[0]
        where = (
            "every silo's storage" if target.kind == "subscription" else f"silo {silo!r}'s storage"
        )
        raise ConfigError(
            key,
            value,
            f"this role reaches the data in {where}, and only that silo's own identity and "
            "members may hold such a role",
            f"add 'memberOf: {silo}' if the principal belongs to that silo, target a single "
            "silo's storage, or use Reader",
        )
