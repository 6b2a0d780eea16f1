"""The permissions table, symbolic targets, built-in roles and the blueprint catalog."""

from __future__ import annotations

import re

import pytest

from blueprints.catalog import BLUEPRINTS, Blueprint
from components import builtin_roles as roles
from components.access_targets import Target, parse_target
from components.conventions import MEMBER_OF_MARKER
from components.permissions import (
    GRANTS_PER_SILO,
    ORCHESTRATOR_IDENTITY,
    access_table,
    person_grant,
    silo_identity,
)

SILOS = ["alpha", "beta-2"]


def test_table_rows_per_silo_are_constant() -> None:
    one, many = access_table(["a"]), access_table([f"s{i}" for i in range(10)])
    assert len(many) - len(one) == 9 * GRANTS_PER_SILO


def test_orchestrator_identity_is_never_granted_silo_targets() -> None:
    for grant in access_table(SILOS):
        if grant.grantee == ORCHESTRATOR_IDENTITY:
            assert not grant.target.silo_storage_covered(SILOS), grant
            assert not str(grant.target).startswith("silo:")


def test_silo_rows_touch_only_their_own_silo() -> None:
    for grant in access_table(SILOS):
        for silo in SILOS:
            if grant.grantee == silo_identity(silo):
                assert grant.target.silo_resources_covered(SILOS) <= {silo}, grant


def test_silo_writes_only_its_own_update_container() -> None:
    table = access_table(SILOS)
    model_rows = [g for g in table if g.target.kind == "models-container"]
    for grant in model_rows:
        if grant.target.container == "global":
            assert grant.role == roles.BLOB_DATA_READER
        else:
            assert grant.grantee == silo_identity(grant.target.container.removeprefix("silo-"))


def test_every_role_in_the_table_is_a_known_builtin_role() -> None:
    for grant in access_table(SILOS):
        assert grant.role in roles.BUILTIN_ROLES


def test_builtin_role_ids_are_guids() -> None:
    guid = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
    assert all(guid.match(g) for g in roles.BUILTIN_ROLES.values())
    assert len(set(roles.BUILTIN_ROLES.values())) == len(roles.BUILTIN_ROLES)
    assert roles.role_definition_id("sub", roles.READER) == (
        "/subscriptions/sub/providers/Microsoft.Authorization/roleDefinitions/"
        "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    )


def test_only_reader_like_roles_count_as_not_touching_data() -> None:
    assert not roles.touches_data(roles.READER)
    for role in (
        roles.OWNER,
        roles.CONTRIBUTOR,
        roles.STORAGE_ACCOUNT_CONTRIBUTOR,
        roles.BLOB_DATA_READER,
        roles.USER_ACCESS_ADMINISTRATOR,
    ):
        assert roles.touches_data(role)


def test_person_grants_carry_membership_in_their_description() -> None:
    grant = person_grant(
        "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
        "User",
        roles.BLOB_DATA_CONTRIBUTOR,
        Target("silo-storage", silo="alpha"),
        "custodian uploads data",
        "alpha",
    )
    assert grant.grantee == "principal:3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    assert f"{MEMBER_OF_MARKER}alpha" in grant.description
    assert "Storage Blob Data Contributor" in grant.description
    assert "silo:alpha-storage" in grant.description
    assert "custodian uploads data" in grant.description
    assert MEMBER_OF_MARKER not in access_table(SILOS)[0].description


def test_resource_names_of_rows_are_unique() -> None:
    names = [g.resource_name for g in access_table([f"s{i}" for i in range(30)])]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workspace", Target("workspace")),
        ("subscription", Target("subscription")),
        ("silo:beta-2-storage", Target("silo-storage", silo="beta-2")),
        ("silo:alpha-resource-group", Target("silo-resource-group", silo="alpha")),
        ("models-container:global", Target("models-container", container="global")),
        ("models-container:silo-alpha", Target("models-container", container="silo-alpha")),
    ],
)
def test_targets_round_trip(text: str, expected: Target) -> None:
    assert parse_target(text, SILOS) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("silo:gamma-storage", "no silo named 'gamma'"),
        ("silo:alpha-compute", "unknown target"),
        ("models-container:silo-gamma", "no container"),
        ("storage", "unknown target"),
    ],
)
def test_bad_targets_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(text, SILOS)


def test_coverage_of_broad_scopes() -> None:
    assert Target("subscription").silo_storage_covered(SILOS) == set(SILOS)
    assert Target("models-storage").silo_storage_covered(SILOS) == set()
    assert Target("models-storage").silo_resources_covered(SILOS) == set(SILOS)
    assert Target("orchestrator-resource-group").silo_resources_covered(SILOS) == set()


def test_catalog_refuses_inconsistent_blueprints() -> None:
    with pytest.raises(ValueError, match="private storage needs VNets"):
        Blueprint("x", "", networked=False, storage_private=True, node_public_ip=True)
    with pytest.raises(ValueError, match="need a subnet"):
        Blueprint("x", "", networked=False, storage_private=False, node_public_ip=False)
    with pytest.raises(ValueError, match="private DNS"):
        Blueprint("x", "", networked=True, storage_private=True, node_public_ip=False)


def test_catalog_blueprints_get_stricter() -> None:
    minimal, on, off = (BLUEPRINTS[n] for n in ("minimal", "eyes-on", "eyes-off"))
    assert not minimal.networked and on.networked and off.networked
    assert not on.storage_private and off.storage_private
    assert on.node_public_ip and not off.node_public_ip
    assert "privatelink.blob.core.windows.net" in off.private_dns_zones
