"""The permissions table, symbolic targets, built-in roles and the blueprint catalog."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from blueprints.catalog import BLUEPRINT_NAMES, BLUEPRINTS
from components.permissions import (
    DEPLOYER,
    GRANTS_PER_SILO,
    JOBS_IDENTITY,
    WORKSPACE_IDENTITY,
    access_table,
    person,
    person_grant,
    signing_key_condition,
    silo_identity,
    submitter_grants,
)
from components.vocabulary import builtin_roles as roles
from components.vocabulary.access_targets import Target, parse_target
from components.vocabulary.conventions import MEMBER_OF_MARKER, SUBMITTER_MARKER
from components.vocabulary.posture import AML_API_ZONE, BLOB_ZONE, REGISTRY_ZONE, NetworkPosture

SILOS = ["alpha", "beta-2"]


def test_table_rows_per_silo_are_constant() -> None:
    one, many = access_table(["a"]), access_table([f"s{i}" for i in range(10)])
    assert len(many) - len(one) == 9 * GRANTS_PER_SILO


def test_orchestrator_side_is_never_granted_silo_targets() -> None:
    submitters = submitter_grants(DEPLOYER, "User") + submitter_grants(person("A-B"), "Group")
    for grant in access_table(SILOS, submitters=submitters):
        if grant.grantee in (WORKSPACE_IDENTITY, JOBS_IDENTITY) or grant.submitter:
            assert not grant.target.silo_storage_covered(SILOS), grant
            assert not str(grant.target).startswith("silo:")


def test_submitter_rows_are_exactly_what_submitting_needs() -> None:
    rows = submitter_grants(person("A-B"), "Group")
    assert {(g.role, str(g.target)) for g in rows} == {
        (roles.AML_DATA_SCIENTIST, "workspace"),
        (roles.BLOB_DATA_CONTRIBUTOR, "orchestrator-storage"),
        (roles.FILE_DATA_PRIVILEGED_CONTRIBUTOR, "orchestrator-storage"),
    }
    assert all(
        f"[{SUBMITTER_MARKER}]" in g.description and g.principal_type == "Group" for g in rows
    )
    assert str(rows[0].grantee) == "principal:a-b"


def test_the_jobs_identity_holds_no_role_that_pushes_or_manages() -> None:
    jobs = {g.role for g in access_table(SILOS) if g.grantee == JOBS_IDENTITY}
    assert jobs == {roles.BLOB_DATA_READER, roles.BLOB_DATA_CONTRIBUTOR, roles.ACR_PULL}


def test_silo_rows_touch_only_their_own_silo() -> None:
    """The signing-keys container holds no silo's resources; there a silo writes only its
    own key (by condition)."""
    for grant in access_table(SILOS):
        for silo in SILOS:
            if grant.grantee != silo_identity(silo):
                continue
            assert grant.target.silo_resources_covered(SILOS) <= {silo}, grant
            if grant.target == Target("models-container", container="signing-keys"):
                assert grant.condition == signing_key_condition(silo), grant


def test_silo_writes_only_its_own_update_container() -> None:
    table = access_table(SILOS)
    model_rows = [g for g in table if g.target.kind == "models-container"]
    for grant in model_rows:
        if grant.target.container == "signing-keys":
            # Each silo writes only its own key there (by condition); checked above.
            assert grant.condition == signing_key_condition(grant.grantee.silo or "")
            continue
        if grant.target.container == "global":
            # Silos read the global model; only the orchestrator's jobs write it.
            writer = grant.grantee == JOBS_IDENTITY
            assert grant.role == (roles.BLOB_DATA_CONTRIBUTOR if writer else roles.BLOB_DATA_READER)
        else:
            owner = silo_identity(grant.target.container.removeprefix("silo-"))
            # Only the silo writes its container; the jobs identity reads it for aggregation.
            assert grant.grantee == owner or (
                grant.grantee == JOBS_IDENTITY and grant.role == roles.BLOB_DATA_READER
            )


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
    assert str(grant.grantee) == "principal:3f2504e0-4f89-41d3-9a0c-0305e82c3301"
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
        (
            "orchestrator-storage-container:azureml",
            Target("orchestrator-storage-container", container="azureml"),
        ),
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
        ("orchestrator-storage-container:snapshots", "no declared container"),
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


def test_postures_refuse_inconsistent_combinations() -> None:
    with pytest.raises(ValueError, match="private storage needs VNets"):
        NetworkPosture(networked=False, storage_private=True, node_public_ip=True)
    with pytest.raises(ValueError, match="need a subnet"):
        NetworkPosture(networked=False, storage_private=False, node_public_ip=False)
    with pytest.raises(ValueError, match="private workspace needs"):
        NetworkPosture(
            networked=True, storage_private=False, node_public_ip=True, workspace_private=True
        )


def test_catalog_blueprints_get_stricter() -> None:
    assert BLUEPRINT_NAMES == (
        "minimal",
        "eyes-on",
        "hybrid",
        "eyes-off",
        "private",
        "confidential",
    )
    minimal, on, hybrid, off, private, confidential = (
        BLUEPRINTS[n].posture for n in BLUEPRINT_NAMES
    )
    # hybrid is eyes-on plus on-premises silos; confidential is private on confidential nodes.
    assert replace(hybrid, on_premises_silos=False) == on and hybrid.on_premises_silos
    assert replace(confidential, confidential=False) == private and confidential.confidential
    assert not any(p.on_premises_silos for p in (minimal, on, off, private, confidential))
    assert not minimal.networked and on.networked and off.networked and private.networked
    assert not on.storage_private and off.storage_private and private.storage_private
    assert on.node_public_ip and not off.node_public_ip
    assert not off.workspace_private and private.workspace_private
    assert BLOB_ZONE in off.private_dns_zones and AML_API_ZONE in off.private_dns_zones
    assert REGISTRY_ZONE in private.private_dns_zones and REGISTRY_ZONE not in off.private_dns_zones
    assert (on.workspace_endpoint, off.workspace_endpoint) == (False, True)
    assert (off.registry_sku, private.registry_sku) == ("Basic", "Premium")
    assert (off.submitter_network, private.submitter_network) == ("internet", "hub")
