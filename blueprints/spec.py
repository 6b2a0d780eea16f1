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
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic.alias_generators import to_camel

from blueprints.catalog import BLUEPRINT_NAMES, BLUEPRINTS
from blueprints.deployer import check_deployer_principal
from blueprints.jump_host_spec import JumpHostSpec, check_jump_host
from blueprints.regions import DEFAULT_SILO_REGIONS
from blueprints.silo_kinds import (
    DEFAULT_KIND,
    DEFAULT_SKU,
    SILO_KINDS,
    SILO_MODELS,
    SiloSpec,
    SiloSpecBase,
    holds_silos,
    kind_names,
)
from blueprints.silo_kinds.aks import AksPool
from blueprints.spec_base import (
    GUID,
    NAMESPACE,
    ConfigError,
    SpecModel,
    check_ip_range,
    check_network,
    check_nodes,
    check_region,
    check_sku,
)
from blueprints.uploaders import GLOBAL as UPLOADERS_GLOBAL
from blueprints.uploaders import DataUploader, check_data_uploaders
from components.vocabulary import naming
from components.vocabulary.access_targets import TARGET_FORMS, Target, parse_target
from components.vocabulary.builtin_roles import BUILTIN_ROLES, touches_data
from components.vocabulary.posture import NetworkPosture
from fl_jobs.config.unique_key_yaml import DuplicateKeyError, load_unique_keys

DEPLOYER = "deployer"
EXAMPLE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fl-sandbox.example/")
"""The namespace of the example object ids generated specs carry."""
"""``principalId`` of a submitter that stands for whoever runs ``pulumi up``."""
MAX_SILOS = 100
DEFAULT_ORCHESTRATOR_ADDRESS_SPACE = "10.0.0.0/16"
CONFIDENTIAL_DEFAULT_SKU = "Standard_DC4as_v5"
RESERVED_SILO_NAMES = frozenset({"orchestrator", "hub", "models", "ws", "global"})
"""Labels the orchestrator's own resources use; a silo with one of them would collide."""

_SILO_NAME = re.compile(r"^(?!.*--)[a-z]([a-z0-9-]{0,22}[a-z0-9])?$")
_BASE_NAME = re.compile(r"^(?!.*--)[a-z][a-z0-9-]{0,14}[a-z0-9]$")
_TAG_KEY_FORBIDDEN = re.compile(r"[<>%&\\?/]")


class ExtraRoleAssignment(SpecModel):
    """A role for a person, group or app, e.g. a silo's data custodian on its storage."""

    principal_id: str
    principal_type: Literal["User", "Group", "ServicePrincipal"] = "User"
    role: str
    target: str
    member_of: str | None = Field(
        default=None, description="the silo this principal belongs to (e.g. its custodian)"
    )
    why: str = "granted in the stack file"


class Submitter(SpecModel):
    """A person, group or app that submits FL jobs to the workspace.

    Granted exactly what submitting needs (AzureML Data Scientist on the workspace, the two
    data roles on the workspace storage that code upload needs) and nothing on any silo.
    ``ipRanges`` are the public addresses they submit from, admitted by the workspace
    storage where it accepts only selected networks (``eyes-off``)."""

    principal_id: str
    principal_type: Literal["User", "Group", "ServicePrincipal"] = Field(
        default="User",
        description="ARM checks it against the principal: ServicePrincipal when an app (a CI "
        "pipeline) deploys or submits",
    )
    ip_ranges: list[str] = Field(default_factory=list)


def _deployer_submits() -> list[Submitter]:
    return [Submitter(principal_id=DEPLOYER)]


@holds_silos
class SandboxSpec(SpecModel):
    """A whole sandbox: which blueprint, where, which silos, and who else gets access."""

    blueprint: str
    base_name: str = "flsandbox"
    region: str = "westeurope"
    silos: list[SiloSpec]
    tags: dict[str, str] = Field(default_factory=dict)
    extra_role_assignments: list[ExtraRoleAssignment] = Field(default_factory=list)
    submitters: list[Submitter] = Field(default_factory=_deployer_submits)
    deployer_principal_id: str | None = Field(
        default=None,
        description="object id the 'deployer' submitter stands for, whoever runs pulumi up "
        "(blueprints/deployer.py); unset: the principal running it, which differs between "
        "people and CI and so replaces the deployer's role assignments on every change",
    )
    data_uploaders: dict[str, list[DataUploader]] = Field(
        default_factory=dict,
        description="per silo name (and 'global' for the test set): who uploads its data "
        "(blueprints/uploaders.py)",
    )
    orchestrator_compute_sku: str = DEFAULT_SKU
    orchestrator_max_nodes: int = 2
    orchestrator_address_space: str = DEFAULT_ORCHESTRATOR_ADDRESS_SPACE
    orchestrator_pool: AksPool | None = Field(
        default=None,
        description="blueprint 'confidential': the AKS pool aggregation runs on",
    )
    compute_outbound: Literal["default", "nat-gateway"] = "default"
    jump_host: JumpHostSpec | None = Field(
        default=None,
        description="a jump host in the hub VNet behind Azure Bastion: the route into private "
        "blueprints for submitters and data uploaders (blueprints/jump_host_spec.py)",
    )

    @property
    def silo_names(self) -> list[str]:
        return [s.name for s in self.silos]

    @property
    def posture(self) -> NetworkPosture:
        return BLUEPRINTS[self.blueprint].posture

    @property
    def submitter_ip_ranges(self) -> list[str]:
        """Every submitter's IP ranges, in order, without repeats."""
        ranges: list[str] = []
        for submitter in self.submitters:
            ranges += [r for r in submitter.ip_ranges if r not in ranges]
        return ranges

    @property
    def aggregation_pool(self) -> AksPool | None:
        """The confidential AKS pool aggregation runs on; None where the blueprint aggregates
        on an Azure ML cluster (every blueprint but 'confidential')."""
        if not self.posture.confidential:
            return None
        return self.orchestrator_pool or AksPool(vm_size=CONFIDENTIAL_DEFAULT_SKU)

    @property
    def aks_clusters(self) -> list[str | None]:
        """The silos that run on AKS clusters, and None for the orchestrator's when it does."""
        silos: list[str | None] = [s.name for s in self.silos if s.silo_kind.managed_cluster]
        return silos if self.aggregation_pool is None else [*silos, None]

    @property
    def on_premises_ip_ranges(self) -> list[str]:
        """The public addresses on-premises silos reach Azure from, in order, without repeats."""
        ranges: list[str] = []
        for silo in self.silos:
            ranges += [r for r in silo.egress_ranges if r not in ranges]
        return ranges

    @property
    def on_premises_silos(self) -> list[SiloSpecBase]:
        """The silos on the sites' own clusters (Azure Arc), in order."""
        return [s for s in self.silos if s.silo_kind.on_premises]

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
        document = load_unique_keys(path.read_text()) or {}
    except DuplicateKeyError as exc:
        raise ConfigError(
            "<stack file>", str(path), str(exc.problem), "keep only one of them"
        ) from None
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
    raw: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise ConfigError(
                str(key), value, "not a config key", f"write '{NAMESPACE}:<key>'", source=str(path)
            )
        if key.startswith(f"{NAMESPACE}:"):
            raw[key.removeprefix(f"{NAMESPACE}:")] = value
        elif ":" not in key:
            # Pulumi reads only namespaced keys; without the prefix the setting is lost.
            raise ConfigError(
                key,
                value,
                f"has no namespace, so it is not an {NAMESPACE} setting Pulumi passes on",
                f"write it as '{NAMESPACE}:{key}'",
                source=str(path),
            )
    return parse_spec(raw, source=str(path))


def default_spec(
    blueprint: str,
    silos: int,
    *,
    base_name: str = "flsandbox",
    submitter_ip_ranges: tuple[str, ...] = (),
) -> SandboxSpec:
    """A spec with ``silos`` silos named silo1..N spread over EU regions.

    Whoever deploys is the one submitter; ``submitter_ip_ranges`` are the addresses they
    submit from (needed where the workspace storage admits only selected networks). Each silo
    and the test set get one example data uploader (``example_uploader_id``): a stack this
    creates must name who writes each new account's first data, and a stack file replaces
    these ids with its data custodians'."""
    source = f"--blueprint {blueprint} --silos {silos}"
    if not 1 <= silos <= MAX_SILOS:
        raise ConfigError(
            "silos",
            silos,
            "a federation needs at least one silo and at most 100",
            f"use --silos between 1 and {MAX_SILOS}",
            source=source,
        )
    silo_defaults = BLUEPRINTS[blueprint].silo_defaults if blueprint in BLUEPRINTS else {}
    # AKS silos stay in the region of a workspace with a private endpoint (Azure's rule 22).
    default_kind = SILO_KINDS.get(str(silo_defaults.get("kind", DEFAULT_KIND)))
    one_region = (
        blueprint in BLUEPRINTS
        and default_kind is not None
        and default_kind.managed_cluster
        and BLUEPRINTS[blueprint].posture.workspace_endpoint
    )
    regions = DEFAULT_SILO_REGIONS[:1] if one_region else DEFAULT_SILO_REGIONS
    posture = BLUEPRINTS[blueprint].posture if blueprint in BLUEPRINTS else None
    # Where storage admits only listed addresses and no hub route exists (eyes-off), the
    # example uploaders upload from the deployer's addresses.
    uploader_from = (
        {"ipRanges": list(submitter_ip_ranges)}
        if posture is not None
        and posture.storage_private
        and not posture.workspace_private
        and submitter_ip_ranges
        else {}
    )
    raw = {
        "blueprint": blueprint,
        "baseName": base_name,
        "region": DEFAULT_SILO_REGIONS[0],
        "silos": [
            {
                **silo_defaults,
                "name": f"silo{i + 1}",
                "region": regions[i % len(regions)],
            }
            for i in range(silos)
        ],
        "submitters": [{"principalId": DEPLOYER, "ipRanges": list(submitter_ip_ranges)}],
        "dataUploaders": {
            key: [{"principalId": example_uploader_id(key), **uploader_from}]
            for key in [*(f"silo{i + 1}" for i in range(silos)), UPLOADERS_GLOBAL]
        },
    }
    if posture is not None and posture.storage_private and posture.workspace_private:
        # Each silo's private endpoints admit only its compute and the jump host: the only
        # route in for uploaders and submitters (docs/infrastructure.md, "Data seeding").
        raw["jumpHost"] = {"sshPublicKey": EXAMPLE_SSH_PUBLIC_KEY}
    return parse_spec(raw, source=source)


EXAMPLE_SSH_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf8mXqYkUq3XrCj4mQyHc6b0sXQ7E0o2Z2GfJ7c1a2b "
    "example-break-glass-key"
)
"""The break-glass admin key of a generated spec's jump host: a well-formed key whose
private half nobody holds. People sign in with Entra ID; a stack file puts its own key."""


def example_uploader_id(target: str) -> str:
    """A stable object id standing for the data custodian of ``target`` (a silo, or
    ``global``) in generated specs: a name-based UUID in fl-sandbox's own namespace, so it
    names no real principal."""
    return str(uuid.uuid5(EXAMPLE_NAMESPACE, f"data-uploader/{target}"))


EXAMPLE_SUBMITTER_RANGE = "198.51.100.0/24"
"""TEST-NET-2 (RFC 5737), reserved for documentation: stands for a submitter's address in
examples, tests and benchmarks. Never a real source of traffic."""


def example_spec(blueprint: str, silos: int, *, base_name: str = "flsandbox") -> SandboxSpec:
    """``default_spec`` for examples, tests and benchmarks: where the blueprint admits only
    listed submitter addresses, the deployer submits from ``EXAMPLE_SUBMITTER_RANGE``."""
    posture = BLUEPRINTS[blueprint].posture if blueprint in BLUEPRINTS else None
    needs_range = (
        posture is not None
        and posture.submitter_network == "internet"
        and posture.workspace_storage_access == "selected-networks"
    )
    ranges = (EXAMPLE_SUBMITTER_RANGE,) if needs_range else ()
    return default_spec(blueprint, silos, base_name=base_name, submitter_ip_ranges=ranges)


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


def _model_at(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> type[BaseModel]:
    names = [p for p in loc if isinstance(p, str)]
    if names[:1] == ["silos"]:
        silo = _lookup(raw, loc[:2])
        kind = silo.get("kind", DEFAULT_KIND) if isinstance(silo, Mapping) else DEFAULT_KIND
        model: type[BaseModel] = SILO_MODELS.get(str(kind), SILO_MODELS[DEFAULT_KIND])
        for name in loc[2:]:  # nested settings (arc, pool, instanceTypes[i], storage...)
            if not isinstance(name, str):
                continue
            field = model.model_fields.get(name) or model.model_fields.get(_snake(name))
            inner = _model_of(field.annotation) if field is not None else None
            if inner is None:
                break
            model = inner
        return model
    if names[:1] in (["extraRoleAssignments"], ["extra_role_assignments"]):
        return ExtraRoleAssignment
    if names[:1] == ["submitters"]:
        return Submitter
    if names[:1] == ["dataUploaders"]:
        return DataUploader
    return SandboxSpec


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation (``X | None``, ``list[X]``), if any."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _without_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """pydantic puts the union member's tag after ``silos[i]``; the key has no such part."""
    if len(loc) > 2 and loc[0] == "silos" and loc[2] in SILO_MODELS:
        return loc[:2] + loc[3:]
    return loc


def _from_pydantic(exc: ValidationError, raw: Mapping[str, Any], source: str) -> ConfigError:
    err = exc.errors()[0]
    loc = _without_tag(tuple(err["loc"]))
    key = _key_path(loc)
    value = _lookup(raw, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(_model_at(loc[:-1], raw))
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return ConfigError(
            key, value, "unknown key", f"{hint}known keys here: {', '.join(known)}", source=source
        )
    if kind == "missing":
        return ConfigError(key, None, "required key is missing", "add it", source=source)
    if kind == "union_tag_invalid":
        given = value.get("kind") if isinstance(value, Mapping) else value
        return ConfigError(
            f"{key}.kind",
            given,
            "unknown silo kind",
            f"use one of: {kind_names()}",
            source=source,
        )
    return ConfigError(key, value, err["msg"], "give a value of the expected type", source=source)


# --- semantic checks ------------------------------------------------------------------------


def _check(spec: SandboxSpec) -> None:
    _check_blueprint(spec)
    _check_base(spec)
    _check_silos(spec)
    _check_tags(spec)
    check_jump_host(spec.jump_host, spec.posture, spec.blueprint)
    _check_networks(spec)
    _check_submitters(spec)
    check_deployer_principal(spec)
    _check_extra_roles(spec)
    check_data_uploaders(spec)


def _check_blueprint(spec: SandboxSpec) -> None:
    if spec.blueprint not in BLUEPRINTS:
        close = difflib.get_close_matches(spec.blueprint, BLUEPRINT_NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            "blueprint",
            spec.blueprint,
            "unknown blueprint",
            f"{hint}use one of: {', '.join(BLUEPRINT_NAMES)}",
        )


def _check_base(spec: SandboxSpec) -> None:
    if not _BASE_NAME.match(spec.base_name):
        raise ConfigError(
            "baseName",
            spec.base_name,
            "invalid base name (it prefixes every Azure resource name)",
            "use 2-16 lowercase letters, digits or single '-', starting with a letter",
        )
    check_region("region", spec.region)
    check_sku("orchestratorComputeSku", spec.orchestrator_compute_sku)
    check_nodes("orchestratorMaxNodes", spec.orchestrator_max_nodes)
    if spec.orchestrator_pool is not None and not spec.posture.confidential:
        raise ConfigError(
            "orchestratorPool",
            spec.orchestrator_pool.model_dump(by_alias=True),
            f"only blueprint 'confidential' runs aggregation on an AKS pool; {spec.blueprint!r} "
            "uses the orchestratorComputeSku cluster",
            "remove orchestratorPool, or use blueprint 'confidential'",
        )
    pool = spec.aggregation_pool
    if pool is not None:
        size = check_sku("orchestratorPool.vmSize", pool.vm_size)
        if not size.confidential:
            raise ConfigError(
                "orchestratorPool.vmSize",
                pool.vm_size,
                "blueprint 'confidential' aggregates on confidential nodes",
                f"use a confidential size, e.g. {CONFIDENTIAL_DEFAULT_SKU}",
            )


def _check_silos(spec: SandboxSpec) -> None:
    count = len(spec.silos)
    if not 1 <= count <= MAX_SILOS:
        raise ConfigError(
            "silos",
            f"{count} silos",
            "a federation needs at least one silo and at most 100",
            f"list between 1 and {MAX_SILOS} silos",
        )
    posture = spec.posture
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
        silo.check(key, spec.blueprint, posture, posture.confidential)
        if (
            silo.silo_kind.managed_cluster
            and posture.workspace_endpoint
            and silo.region != spec.region
        ):
            # Azure's rule 22 (how-to-secure-kubernetes-inferencing-environment, Limitations).
            raise ConfigError(
                f"{key}.region",
                silo.region,
                f"an AKS silo must be in the workspace's region ({spec.region}) when the "
                "workspace has a private endpoint",
                f"set region: {spec.region}, or make the silo kind 'aml' to keep it in "
                f"{silo.region}",
            )
        # Names Azure sees are shortened; make sure two silos never shorten alike.
        names = [("compute", computes, naming.compute(silo.name))]
        if silo.storage is None:
            account = naming.storage_account(spec.base_name, silo.name, "x")
            names.append(("storage account", accounts, account))
        for label, table, name in names:
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


def _given_networks(spec: SandboxSpec) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    yield (
        "orchestratorAddressSpace",
        check_network("orchestratorAddressSpace", spec.orchestrator_address_space),
    )
    for i, silo in enumerate(spec.silos):
        address_space = silo.network_range
        if address_space is not None:
            key = f"silos[{i}].addressSpace"
            yield key, check_network(key, address_space)
    if spec.jump_host is not None:  # added to the hub VNet, so it must not overlap either
        yield "jumpHost.addressSpace", ipaddress.IPv4Network(spec.jump_host.address_space)


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
        if silo.silo_kind.in_vnet and silo.network_range is None:
            net = next(c for c in candidates if not any(c.overlaps(t) for t in taken))
            taken.append(net)
            silo = silo.model_copy(update={"address_space": str(net)})
        silos.append(silo)
    return spec.model_copy(update={"silos": silos})


def _check_submitters(spec: SandboxSpec) -> None:
    posture = spec.posture
    needs_ranges = (
        posture.submitter_network == "internet"
        and posture.workspace_storage_access == "selected-networks"
    )
    seen: dict[str, int] = {}
    for i, submitter in enumerate(spec.submitters):
        key = f"submitters[{i}]"
        pid = submitter.principal_id.lower()
        if pid != DEPLOYER and not GUID.match(pid):
            raise ConfigError(
                f"{key}.principalId",
                submitter.principal_id,
                "not an object id",
                f"use the principal's object id (a GUID, e.g. from `az ad signed-in-user show "
                f"--query id -o tsv`), or '{DEPLOYER}' for whoever runs pulumi up",
            )
        if pid in seen:
            raise ConfigError(
                f"{key}.principalId",
                submitter.principal_id,
                f"listed twice (also submitters[{seen[pid]}])",
                "list each submitter once, with all of its ipRanges",
            )
        seen[pid] = i
        for j, text in enumerate(submitter.ip_ranges):
            check_ip_range(f"{key}.ipRanges[{j}]", text)
        if posture.submitter_network == "hub" and submitter.ip_ranges:
            raise ConfigError(
                f"{key}.ipRanges",
                submitter.ip_ranges,
                f"blueprint {spec.blueprint!r} keeps the workspace private, so submitters come "
                "in through the hub network, not from internet addresses",
                "remove ipRanges and connect to the hub VNet (VPN, ExpressRoute, peering, or "
                "a machine in it); see docs/infrastructure.md",
            )
        if posture.workspace_storage_access == "public" and submitter.ip_ranges:
            raise ConfigError(
                f"{key}.ipRanges",
                submitter.ip_ranges,
                f"blueprint {spec.blueprint!r} leaves the workspace storage open to every "
                "network (access is by role only), so these ranges would have no effect",
                "remove ipRanges, or choose a blueprint that restricts the workspace storage "
                "(eyes-off)",
            )
        if needs_ranges and not submitter.ip_ranges:
            raise ConfigError(
                f"{key}.ipRanges",
                [],
                f"blueprint {spec.blueprint!r} admits to the workspace storage only the "
                "workspace and the submitters' addresses, and azure-ai-ml uploads job code "
                "straight to it, so this submitter could not submit",
                "list the public IPv4 addresses it submits from (e.g. your address from "
                "`curl -s https://ifconfig.me`), or pass --submitter-ip to `plan --blueprint`",
            )


def _check_extra_roles(spec: SandboxSpec) -> None:
    silos = spec.silo_names
    seen: set[tuple[str, str, str]] = set()
    for i, grant in enumerate(spec.extra_role_assignments):
        key = f"extraRoleAssignments[{i}]"
        if not GUID.match(grant.principal_id):
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
        submitters = {s.principal_id.lower() for s in spec.submitters}
        if grant.principal_id.lower() in submitters and target.silo_resources_covered(silos):
            raise ConfigError(
                key,
                f"{grant.role} on {target}",
                "this principal submits jobs, and submitters never reach a silo's resources "
                "(they drive the orchestrator; only silo identities and members touch silo data)",
                "grant silo access to a different principal (e.g. the silo's data custodian)",
            )
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
