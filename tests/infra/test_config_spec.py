"""Every bad stack setting is refused with key, value and fix, before any resource exists."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blueprints.spec import MAX_SILOS, ConfigError, default_spec, example_spec, parse_spec
from tests.infra.helpers import build_from_raw, declared_before_error

ALICE = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def valid_raw() -> dict[str, Any]:
    return {
        "blueprint": "eyes-on",
        "baseName": "fltest",
        "region": "westeurope",
        "silos": [
            {"name": "alpha", "region": "westeurope"},
            {"name": "beta", "region": "northeurope", "computeSku": "Standard_NC6s_v3"},
        ],
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    """valid_raw() with one setting replaced; ``path`` like ``silos.0.region``."""
    raw = valid_raw()
    node: Any = raw
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return raw


def grant(**fields: Any) -> dict[str, Any]:
    return with_("extraRoleAssignments", [{"principalId": ALICE, **fields}])


def silos(n: int) -> list[dict[str, str]]:
    return [{"name": f"s{i}", "region": "westeurope"} for i in range(n)]


BAD_CONFIGS = [
    # (id, raw, key, value shown in the message, a fragment of the fix)
    (
        "unknown-blueprint",
        with_("blueprint", "eyes-closed"),
        "blueprint",
        "'eyes-closed'",
        "minimal, eyes-on, hybrid, eyes-off, private, confidential",
    ),
    ("blueprint-typo", with_("blueprint", "privat"), "blueprint", "'privat'", "'private'"),
    (
        "submitter-not-a-guid",
        with_("submitters", [{"principalId": "alice@contoso.com"}]),
        "submitters[0].principalId",
        "alice@contoso.com",
        "'deployer'",
    ),
    (
        "submitter-twice",
        with_("submitters", [{"principalId": ALICE}, {"principalId": ALICE.upper()}]),
        "submitters[1].principalId",
        ALICE.upper(),
        "list each submitter once",
    ),
    (
        "submitter-range-without-effect",
        with_("submitters", [{"principalId": "deployer", "ipRanges": ["198.51.100.7"]}]),
        "submitters[0].ipRanges",
        "198.51.100.7",
        "remove ipRanges",
    ),
    (
        "eyes-off-submitter-without-range",
        {**with_("blueprint", "eyes-off"), "submitters": [{"principalId": "deployer"}]},
        "submitters[0].ipRanges",
        "[]",
        "--submitter-ip",
    ),
    (
        "eyes-off-private-range",
        {
            **with_("blueprint", "eyes-off"),
            "submitters": [{"principalId": "deployer", "ipRanges": ["10.4.0.0/16"]}],
        },
        "submitters[0].ipRanges[0]",
        "10.4.0.0/16",
        "public IPv4",
    ),
    (
        "eyes-off-slash-31",
        {
            **with_("blueprint", "eyes-off"),
            "submitters": [{"principalId": "deployer", "ipRanges": ["198.51.100.6/31"]}],
        },
        "submitters[0].ipRanges[0]",
        "198.51.100.6/31",
        "two addresses",
    ),
    (
        "eyes-off-ipv6",
        {
            **with_("blueprint", "eyes-off"),
            "submitters": [{"principalId": "deployer", "ipRanges": ["2001:db8::/32"]}],
        },
        "submitters[0].ipRanges[0]",
        "2001:db8::/32",
        "IPv4",
    ),
    (
        "private-submitter-with-range",
        {
            **with_("blueprint", "private"),
            "submitters": [{"principalId": "deployer", "ipRanges": ["198.51.100.7"]}],
        },
        "submitters[0].ipRanges",
        "198.51.100.7",
        "hub VNet",
    ),
    (
        "submitter-on-silo-storage",
        {
            **grant(role="Reader", target="silo:alpha-storage", memberOf="alpha"),
            "submitters": [{"principalId": ALICE}],
        },
        "extraRoleAssignments[0]",
        "Reader on silo:alpha-storage",
        "different principal",
    ),
    (
        "outbound-unknown",
        with_("computeOutbound", "firewall"),
        "computeOutbound",
        "'firewall'",
        "expected type",
    ),
    ("zero-silos", with_("silos", []), "silos", "0 silos", "between 1 and 100"),
    (
        "too-many-silos",
        with_("silos", silos(MAX_SILOS + 1)),
        "silos",
        "101 silos",
        "between 1 and 100",
    ),
    ("duplicate-silo", with_("silos.1.name", "alpha"), "silos[1].name", "'alpha'", "unique"),
    (
        "silo-name-uppercase",
        with_("silos.0.name", "Alpha_1"),
        "silos[0].name",
        "'Alpha_1'",
        "lowercase letters",
    ),
    ("silo-name-too-long", with_("silos.0.name", "a" * 25), "silos[0].name", "a" * 25, "1-24"),
    (
        "silo-name-double-dash",
        with_("silos.0.name", "a--b"),
        "silos[0].name",
        "'a--b'",
        "single '-'",
    ),
    (
        "silo-name-trailing-dash",
        with_("silos.0.name", "ab-"),
        "silos[0].name",
        "'ab-'",
        "not ending with '-'",
    ),
    (
        "silo-name-reserved",
        with_("silos.0.name", "orchestrator"),
        "silos[0].name",
        "'orchestrator'",
        "pick another name",
    ),
    (
        "silo-region-typo",
        with_("silos.0.region", "westeurop"),
        "silos[0].region",
        "'westeurop'",
        "did you mean 'westeurope'",
    ),
    (
        "orchestrator-region-unknown",
        with_("region", "mars-north-1"),
        "region",
        "'mars-north-1'",
        "az account list-locations",
    ),
    (
        "sku-without-tier",
        with_("silos.0.computeSku", "DS3_v2"),
        "silos[0].computeSku",
        "'DS3_v2'",
        "Standard_DS3_v2",
    ),
    (
        "sku-lowercase",
        with_("silos.1.computeSku", "standard_ds3_v2"),
        "silos[1].computeSku",
        "'standard_ds3_v2'",
        "Standard_DS3_v2",
    ),
    (
        "orchestrator-sku",
        with_("orchestratorComputeSku", "big"),
        "orchestratorComputeSku",
        "'big'",
        "Standard_DS3_v2",
    ),
    ("max-nodes-zero", with_("silos.0.maxNodes", 0), "silos[0].maxNodes", "0", "1 to 100"),
    (
        "max-nodes-not-a-number",
        with_("silos.0.maxNodes", "many"),
        "silos[0].maxNodes",
        "'many'",
        "expected type",
    ),
    (
        "silo-ranges-overlap",
        with_(
            "silos",
            [
                {"name": "alpha", "region": "westeurope", "addressSpace": "10.5.0.0/16"},
                {"name": "beta", "region": "westeurope", "addressSpace": "10.5.128.0/17"},
            ],
        ),
        "silos[1].addressSpace",
        "10.5.128.0/17",
        "disjoint range",
    ),
    (
        "silo-range-overlaps-orchestrator",
        with_("silos.0.addressSpace", "10.0.4.0/24"),
        "silos[0].addressSpace",
        "10.0.4.0/24",
        "disjoint range",
    ),
    (
        "orchestrator-range-overlaps-silo",
        {
            **with_("silos.0.addressSpace", "172.16.0.0/16"),
            "orchestratorAddressSpace": "172.16.0.0/12",
        },
        "silos[0].addressSpace",
        "172.16.0.0/16",
        "disjoint range",
    ),
    (
        "range-host-bits",
        with_("silos.0.addressSpace", "10.5.0.1/16"),
        "silos[0].addressSpace",
        "10.5.0.1/16",
        "private IPv4 CIDR",
    ),
    (
        "range-public",
        with_("silos.0.addressSpace", "8.8.0.0/16"),
        "silos[0].addressSpace",
        "8.8.0.0/16",
        "private IPv4 CIDR",
    ),
    (
        "range-too-small",
        with_("silos.0.addressSpace", "10.5.0.0/28"),
        "silos[0].addressSpace",
        "10.5.0.0/28",
        "/8 and /24",
    ),
    (
        "unknown-silo-key",
        with_("silos.0.computeSKU", "Standard_DS3_v2"),
        "silos[0].computeSKU",
        "'Standard_DS3_v2'",
        "did you mean 'computeSku'",
    ),
    ("unknown-top-key", {**valid_raw(), "silo": []}, "silo", "[]", "did you mean 'silos'"),
    ("missing-silos", {"blueprint": "minimal"}, "silos", "None", "add it"),
    ("base-name", with_("baseName", "FL_Test"), "baseName", "'FL_Test'", "2-16 lowercase"),
    (
        "reserved-tag",
        with_("tags", {"fl-sandbox-role": "silo"}),
        "tags.fl-sandbox-role",
        "'silo'",
        "rename the tag",
    ),
    ("tag-bad-char", with_("tags", {"a/b": "x"}), "tags.a/b", "'x'", "without"),
    (
        "principal-not-guid",
        with_(
            "extraRoleAssignments",
            [{"principalId": "alice@example.com", "role": "Reader", "target": "workspace"}],
        ),
        "extraRoleAssignments[0].principalId",
        "alice@example.com",
        "object id",
    ),
    (
        "unknown-role",
        grant(role="Blob Reader", target="workspace"),
        "extraRoleAssignments[0].role",
        "'Blob Reader'",
        "Storage Blob Data Reader",
    ),
    (
        "unknown-target",
        grant(role="Reader", target="everything"),
        "extraRoleAssignments[0].target",
        "'everything'",
        "silo:<silo>-storage",
    ),
    (
        "target-unknown-silo",
        grant(role="Reader", target="silo:gamma-storage"),
        "extraRoleAssignments[0].target",
        "silo:gamma-storage",
        "silo:<silo>-storage",
    ),
    (
        "principal-type",
        grant(role="Reader", target="workspace", principalType="Robot"),
        "extraRoleAssignments[0].principalType",
        "'Robot'",
        "expected type",
    ),
    (
        "member-of-unknown-silo",
        grant(role="Reader", target="workspace", memberOf="gamma"),
        "extraRoleAssignments[0].memberOf",
        "'gamma'",
        "alpha, beta",
    ),
    (
        "data-role-on-silo-storage-without-membership",
        grant(role="Storage Blob Data Reader", target="silo:alpha-storage"),
        "extraRoleAssignments[0]",
        "Storage Blob Data Reader on silo:alpha-storage",
        "memberOf: alpha",
    ),
    (
        "owner-on-silo-resource-group",
        grant(role="Owner", target="silo:beta-resource-group"),
        "extraRoleAssignments[0]",
        "Owner on silo:beta-resource-group",
        "memberOf: beta",
    ),
    (
        "contributor-at-subscription",
        grant(role="Contributor", target="subscription"),
        "extraRoleAssignments[0]",
        "Contributor on subscription",
        "single silo's storage",
    ),
    (
        "member-reads-other-silo",
        grant(role="Reader", target="silo:beta-storage", memberOf="alpha"),
        "extraRoleAssignments[0]",
        "Reader on silo:beta-storage",
        "silo:alpha-storage",
    ),
    (
        "member-on-whole-model-store",
        grant(role="Storage Blob Data Reader", target="models-storage", memberOf="alpha"),
        "extraRoleAssignments[0]",
        "Storage Blob Data Reader on models-storage",
        "silo:alpha-storage",
    ),
    (
        "member-on-other-update-container",
        grant(
            role="Storage Blob Data Reader", target="models-container:silo-beta", memberOf="alpha"
        ),
        "extraRoleAssignments[0]",
        "models-container:silo-beta",
        "silo:alpha-storage",
    ),
    (
        "member-at-subscription",
        grant(role="Reader", target="subscription", memberOf="alpha"),
        "extraRoleAssignments[0]",
        "Reader on subscription",
        "silo:alpha-storage",
    ),
    (
        "duplicate-grant",
        with_(
            "extraRoleAssignments",
            [{"principalId": ALICE, "role": "Reader", "target": "workspace"}] * 2,
        ),
        "extraRoleAssignments[1]",
        "Reader on workspace",
        "remove the duplicate",
    ),
]


@pytest.mark.parametrize(
    ("raw", "key", "shown", "fix"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CONFIGS],
)
def test_bad_config_is_refused_before_any_resource(
    raw: dict[str, Any], key: str, shown: str, fix: str
) -> None:
    error, declared = declared_before_error(build_from_raw(copy.deepcopy(raw)))
    assert error.key == key
    message = str(error)
    assert f"fl-sandbox:{key} = " in message
    assert shown in message
    assert "Fix: " in message and fix in message.split("Fix: ", 1)[1]
    assert declared == []


GOOD_GRANTS = [
    ("reader-on-silo-storage", {"role": "Reader", "target": "silo:beta-storage"}),
    (
        "custodian-of-own-silo",
        {
            "role": "Storage Blob Data Contributor",
            "target": "silo:alpha-storage",
            "memberOf": "alpha",
        },
    ),
    (
        "member-reads-global-model",
        {
            "role": "Storage Blob Data Reader",
            "target": "models-container:global",
            "memberOf": "alpha",
        },
    ),
    (
        "contributor-on-orchestrator",
        {"role": "Contributor", "target": "orchestrator-resource-group"},
    ),
    ("reader-at-subscription", {"role": "Reader", "target": "subscription"}),
    (
        "scientist-on-workspace",
        {"role": "AzureML Data Scientist", "target": "workspace", "principalType": "Group"},
    ),
]


@pytest.mark.parametrize("fields", [pytest.param(f, id=i) for i, f in GOOD_GRANTS])
def test_grants_that_keep_isolation_are_accepted(fields: dict[str, Any]) -> None:
    spec = parse_spec(grant(**fields))
    assert spec.extra_role_assignments[0].role == fields["role"]


def test_valid_config_fills_in_defaults_and_address_spaces() -> None:
    raw = with_("silos.1.addressSpace", "10.1.0.0/16")
    spec = parse_spec(raw)
    assert spec.blueprint == "eyes-on"
    assert spec.silos[0].compute_sku == "Standard_DS3_v2"
    assert spec.silos[1].compute_sku == "Standard_NC6s_v3"
    # The given range is kept; the free one skips both the orchestrator's and the given one.
    assert [s.address_space for s in spec.silos] == ["10.2.0.0/16", "10.1.0.0/16"]


def test_snake_case_keys_are_accepted_too() -> None:
    raw = valid_raw()
    raw["base_name"] = raw.pop("baseName")
    assert parse_spec(raw).base_name == "fltest"


@pytest.mark.parametrize(
    "sku",
    [
        "Standard_DS3_v2",
        "Standard_NC24ads_A100_v4",
        "Standard_E8-4ds_v5",
        "Standard_F2s_v2",
        "Standard_D4s_v5",
    ],
)
def test_real_vm_sizes_are_accepted(sku: str) -> None:
    assert parse_spec(with_("silos.0.computeSku", sku)).silos[0].compute_sku == sku


def test_hundred_silos_get_disjoint_ranges() -> None:
    spec = example_spec("eyes-off", MAX_SILOS)
    ranges = [s.address_space for s in spec.silos]
    assert len(set(ranges)) == MAX_SILOS
    assert spec.orchestrator_address_space not in ranges


@pytest.mark.parametrize("count", [0, -1, MAX_SILOS + 1])
def test_default_spec_refuses_silo_counts_out_of_range(count: int) -> None:
    with pytest.raises(ConfigError, match="between 1 and 100") as info:
        default_spec("minimal", count)
    assert info.value.key == "silos"


def test_default_spec_refuses_unknown_blueprint() -> None:
    with pytest.raises(ConfigError, match="unknown blueprint"):
        default_spec("maximal", 2)


def test_numeric_tag_values_become_text() -> None:
    raw = with_("tags", {"cost-center": 42})
    assert parse_spec(raw).tags == {"cost-center": "42"}
