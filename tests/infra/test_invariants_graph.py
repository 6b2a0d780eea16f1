"""The six invariants over hand-built graphs: a correct sandbox passes, each break is named."""

from __future__ import annotations

import pytest

from components.permissions import signing_key_condition
from components.vocabulary.conventions import TAG_PURPOSE, TAG_ROLE, TAG_SILO
from policies import roles
from policies.graph import ResourceGraph
from policies.invariants import INVARIANTS, check_all
from policies.invariants.no_secrets import check_no_secret_outputs, looks_like_key
from tests.infra import policy_graphs as g

OUTPUTS = {"federation": g.federation(False)}
PRIVATE_OUTPUTS = {"federation": g.federation(True)}


def only(results: dict, invariant: str) -> list:
    """The violations of ``invariant``, asserting no other invariant broke."""
    others = {k: [str(v) for v in vs] for k, vs in results.items() if vs and k != invariant}
    assert not others, others
    return results[invariant]


@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("networked", [False, True])
def test_correct_sandbox_passes_every_invariant(private: bool, networked: bool) -> None:
    outputs = PRIVATE_OUTPUTS if private else OUTPUTS
    results = check_all(g.sandbox(private=private, networked=networked), outputs)
    assert list(results) == [i.id for i in INVARIANTS]
    assert all(not v for v in results.values()), results


# ----- scope resolution ---------------------------------------------------------------------


def test_scopes_resolve_to_accounts_containers_and_enclosing_groups() -> None:
    graph = ResourceGraph.build(g.sandbox())
    (account,) = graph.scope_targets(g.storage_id("stalpha"))
    assert (account.account.arm_name, account.level) == ("stalpha", "account")
    (container,) = graph.scope_targets(g.container_scope("stmodels", "global"))
    assert (container.account.arm_name, container.container) == ("stmodels", "global")
    in_group = graph.scope_targets(f"{g.SUB}/resourceGroups/{g.RG.upper()}")
    assert {t.account.arm_name for t in in_group} == {"stws", "stmodels", "stalpha", "stbeta"}
    assert {t.level for t in graph.scope_targets(g.SUB)} == {"subscription"}
    assert graph.scope_targets(f"{g.SUB}/resourceGroups/other-rg") == ()
    queue = graph.scope_targets(f"{g.storage_id('stbeta')}/queueServices/default")
    assert [(t.account.arm_name, t.level) for t in queue] == [("stbeta", "account")]


def test_principals_resolve_to_identities_system_identities_or_external() -> None:
    graph = ResourceGraph.build(g.sandbox())
    assert graph.principal(g.silo_principal("beta")).silo == "beta"
    assert graph.principal(g.ORCH_PRINCIPAL).side == "orchestrator"
    workspace = graph.principal(g.WS_PRINCIPAL)
    assert workspace.kind == "system-identity" and workspace.node is not None
    assert graph.principal("9999").kind == "external"


# ----- invariant 1 ----------------------------------------------------------------------------


def test_person_of_another_silo_on_silo_storage_is_named() -> None:
    records = [
        *g.sandbox(),
        g.assignment(
            "bob-on-alpha",
            "b0b",
            roles.STORAGE_BLOB_DATA_READER,
            g.storage_id("stalpha"),
            "member-of=beta",
        ),
    ]
    (violation,) = only(check_all(records, OUTPUTS), "silo-data-access")
    assert violation.resource_name == "bob-on-alpha"
    assert "silo 'alpha'" in violation.problem and "external principal b0b" in violation.problem


def test_person_of_the_silo_may_read_its_storage() -> None:
    person = g.assignment(
        "carol", "ca401", roles.STORAGE_BLOB_DATA_READER, g.storage_id("stalpha"), "member-of=alpha"
    )
    assert not any(check_all([*g.sandbox(), person], OUTPUTS).values())


def test_contributor_on_the_resource_group_reaches_every_silo() -> None:
    rg_scope = f"{g.SUB}/resourceGroups/{g.RG}"
    records = [
        *g.sandbox(),
        g.assignment("ops", "0p5", roles.CONTRIBUTOR, rg_scope, "member-of=alpha"),
    ]
    violations = only(check_all(records, OUTPUTS), "silo-data-access")
    assert [v.resource_name for v in violations] == ["ops"]
    assert (
        "silo 'beta'" in violations[0].problem and "resource-group scope" in violations[0].problem
    )


def test_reader_is_not_a_data_role() -> None:
    reader = g.assignment("audit", "a0d", roles.READER, g.storage_id("stalpha"))
    assert not any(check_all([*g.sandbox(), reader], OUTPUTS).values())


def test_custom_role_counts_as_data_access() -> None:
    custom = g.assignment(
        "custom", "c0c", "0f0f0f0f-0000-0000-0000-000000000000", g.storage_id("stbeta")
    )
    (violation,) = only(check_all([*g.sandbox(), custom], OUTPUTS), "silo-data-access")
    assert "custom role" in violation.problem


def test_untagged_storage_is_reported() -> None:
    records = g.edited(g.sandbox(), "stalpha-logical", tags={TAG_ROLE: "silo"})
    (violation,) = only(check_all(records, OUTPUTS), "silo-data-access")
    assert violation.arm_name == "stalpha" and TAG_PURPOSE in violation.problem


# ----- invariant 2 ----------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [g.ORCH_PRINCIPAL, g.WS_PRINCIPAL])
def test_orchestrator_identity_on_silo_storage_is_named(principal: str) -> None:
    leak = g.assignment("leak", principal, roles.STORAGE_BLOB_DATA_READER, g.storage_id("stbeta"))
    results = check_all([*g.sandbox(), leak], OUTPUTS)
    (violation,) = results["orchestrator-no-silo-access"]
    assert violation.resource_name == "leak" and "stbeta" in violation.problem
    assert [v.resource_name for v in results["silo-data-access"]] == ["leak"]


def test_orchestrator_reader_on_subscription_is_named() -> None:
    reader = g.assignment("orch-reader", g.ORCH_PRINCIPAL, roles.READER, g.SUB)
    violations = only(check_all([*g.sandbox(), reader], OUTPUTS), "orchestrator-no-silo-access")
    assert {v.resource_name for v in violations} == {"orch-reader"}
    assert len(violations) == 2  # one per silo storage account reached


# ----- invariant 3 ----------------------------------------------------------------------------


def test_silo_identity_on_other_silo_storage_is_named() -> None:
    leak = g.assignment(
        "alpha-on-beta",
        g.silo_principal("alpha"),
        roles.STORAGE_BLOB_DATA_READER,
        g.storage_id("stbeta"),
    )
    results = check_all([*g.sandbox(), leak], OUTPUTS)
    (violation,) = results["cross-silo-isolation"]
    assert violation.resource_name == "alpha-on-beta" and "silo 'beta'" in violation.problem


def test_a_silo_compute_identity_with_a_management_role_is_named() -> None:
    """Invariant 7: FL code must not be able to change resources (re-enable shared keys)."""
    leak = g.assignment(
        "alpha-manages-its-storage",
        g.silo_principal("alpha"),
        roles.STORAGE_ACCOUNT_CONTRIBUTOR,
        g.storage_id("stalpha"),
    )
    (violation,) = only(check_all([*g.sandbox(), leak], OUTPUTS), "compute-least-privilege")
    assert violation.resource_name == "alpha-manages-its-storage"
    assert (
        "Storage Account Contributor" in violation.problem
        and "alpha-compute" not in violation.problem
    )


def test_a_compute_running_as_the_workspace_identity_is_named() -> None:
    records = g.sandbox()
    records = g.edited(records, "workspace", primaryUserAssignedIdentity=g.uai_id("id-alpha"))
    (violation,) = only(check_all(records, OUTPUTS), "compute-least-privilege")
    assert violation.resource_name == "alpha-compute" and "primary identity" in violation.problem


def test_submitters_never_reach_silo_storage() -> None:
    """Invariant 2 covers submitters: even a member of the silo, once it submits jobs."""
    submits = g.assignment(
        "dana-submits",
        "da7a",
        roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
        g.storage_id("stws"),
        "fl-sandbox: ... [submitter]",
    )
    reads = g.assignment(
        "dana-reads-alpha",
        "da7a",
        roles.STORAGE_BLOB_DATA_READER,
        g.storage_id("stalpha"),
        "member-of=alpha",
    )
    results = check_all([*g.sandbox(), submits, reads], OUTPUTS)
    (violation,) = only(results, "orchestrator-no-silo-access")
    assert violation.resource_name == "dana-reads-alpha"
    assert "job submitter da7a" in violation.problem
    assert not any(check_all([*g.sandbox(), submits], OUTPUTS).values())


@pytest.mark.parametrize(
    ("scope", "guid", "expected"),
    [
        (g.storage_id("stmodels"), roles.STORAGE_BLOB_DATA_READER, "whole model store"),
        (g.container_scope("stmodels", "silo-beta"), roles.STORAGE_BLOB_DATA_READER, "silo-beta"),
        (g.container_scope("stmodels", "global"), roles.STORAGE_BLOB_DATA_CONTRIBUTOR, "global"),
    ],
)
def test_silo_identity_beyond_its_model_container_is_named(
    scope: str, guid: str, expected: str
) -> None:
    leak = g.assignment("alpha-models", g.silo_principal("alpha"), guid, scope)
    (violation,) = only(check_all([*g.sandbox(), leak], OUTPUTS), "cross-silo-isolation")
    assert violation.resource_name == "alpha-models" and expected in violation.problem


# ----- invariant 4 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("allowSharedKeyAccess", True),
        ("allowSharedKeyAccess", None),
        ("allowBlobPublicAccess", True),
        ("minimumTlsVersion", "TLS1_0"),
        ("isLocalUserEnabled", True),
        ("isSftpEnabled", None),
    ],
)
def test_unsafe_storage_setting_is_named(prop: str, value: object) -> None:
    records = g.edited(g.sandbox(), "stws-logical", **{prop: value})
    (violation,) = only(check_all(records, OUTPUTS), "storage-hardening")
    assert violation.arm_name == "stws" and prop in violation.problem


def test_eyes_off_public_silo_storage_is_named() -> None:
    records = g.edited(g.sandbox(private=True), "stbeta-logical", publicNetworkAccess="Enabled")
    (violation,) = only(check_all(records, PRIVATE_OUTPUTS), "storage-hardening")
    assert violation.arm_name == "stbeta" and "publicNetworkAccess" in violation.problem


def test_eyes_off_silo_storage_copying_outside_private_links_is_named() -> None:
    records = g.edited(g.sandbox(private=True), "stalpha-logical", allowedCopyScope="AAD")
    (violation,) = only(check_all(records, PRIVATE_OUTPUTS), "storage-hardening")
    assert violation.arm_name == "stalpha" and "allowedCopyScope" in violation.problem


def test_eyes_off_model_store_without_private_endpoint_is_named() -> None:
    records = [r for r in g.sandbox(private=True) if r.name != "pe-stmodels"]
    (violation,) = only(check_all(records, PRIVATE_OUTPUTS), "storage-hardening")
    assert violation.arm_name == "stmodels" and "private endpoint" in violation.problem


# ----- invariant 5 ----------------------------------------------------------------------------


def test_compute_in_other_silos_subnet_is_named() -> None:
    records = [r for r in g.sandbox() if r.name != "alpha-compute"] + [
        g.compute("alpha", subnet_of="beta")
    ]
    (violation,) = only(check_all(records, OUTPUTS), "compute-placement")
    assert violation.resource_name == "alpha-compute" and "vnet-beta" in violation.problem


def test_compute_running_as_other_silo_is_named() -> None:
    records = g.sandbox()
    beta_identity = {"type": "UserAssigned", "userAssignedIdentities": [g.uai_id("id-beta")]}
    records = g.edited(records, "alpha-compute", identity=beta_identity)
    (violation,) = only(check_all(records, OUTPUTS), "compute-placement")
    assert "id-beta" in violation.problem and "'beta'" in violation.problem


def test_compute_with_system_identity_is_named() -> None:
    both = {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": [g.uai_id("id-alpha")]}
    records = g.edited(g.sandbox(), "alpha-compute", identity=both)
    (violation,) = only(check_all(records, OUTPUTS), "compute-placement")
    assert "system-assigned" in violation.problem


def test_compute_in_wrong_region_is_named() -> None:
    records = g.edited(g.sandbox(), "beta-compute", location="westeurope")
    (violation,) = only(check_all(records, OUTPUTS), "compute-placement")
    assert violation.resource_name == "beta-compute" and "eastus" in violation.problem


def test_compute_with_idle_nodes_or_public_ip_is_named() -> None:
    records = [r for r in g.sandbox(private=True) if r.name != "alpha-compute"] + [
        g.compute(
            "alpha",
            subnet_of="alpha",
            scaleSettings={"minNodeCount": 1, "maxNodeCount": 2},
            enableNodePublicIp=True,
        )
    ]
    violations = only(check_all(records, PRIVATE_OUTPUTS), "compute-placement")
    problems = " ".join(v.problem for v in violations)
    assert {v.resource_name for v in violations} == {"alpha-compute"}
    assert "1 node(s)" in problems and "enableNodePublicIp" in problems


def test_untagged_compute_is_named() -> None:
    records = g.edited(g.sandbox(), "beta-compute", tags={})
    (violation,) = only(check_all(records, OUTPUTS), "compute-placement")
    assert TAG_ROLE in violation.problem


def test_silo_compute_without_subnet_in_networked_silo_is_named() -> None:
    records = [r for r in g.sandbox() if r.name != "beta-compute"] + [g.compute("beta")]
    (violation,) = only(check_all(records, OUTPUTS), "compute-placement")
    assert "no subnet" in violation.problem and TAG_SILO not in violation.problem


# ----- invariant 6 ----------------------------------------------------------------------------

STORAGE_KEY = "q1Zy3XbU8R0pY4kV7wD2mN5sLh9Jc6Tf0aEiGo3Bn1Ku8Pr4Ws7Xz2Qv5Yt9Md6Lf3Hg0Jk2=="


@pytest.mark.parametrize(
    ("outputs", "path"),
    [
        ({"conn": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc"}, "conn"),
        ({"federation": {"silos": [{"url": "https://x.blob/c?sv=1&sig=abc"}]}}, "silos[0].url"),
        ({"storagePrimaryKey": "x"}, "storagePrimaryKey"),
        ({"admin_password": "hunter2"}, "admin_password"),
        ({"pem": "-----BEGIN PRIVATE KEY-----\nabc"}, "pem"),
        ({"blob": STORAGE_KEY}, "blob"),
    ],
)
def test_secret_in_outputs_is_named(outputs: dict, path: str) -> None:
    (violation,) = check_no_secret_outputs(outputs)
    assert violation.resource_name.endswith(path)


def test_ids_names_and_guids_are_not_secrets() -> None:
    outputs = {
        "federation": {
            "workspace": {"subscription_id": g.SUB.rsplit("/", 1)[-1], "name": "ws-fl-ab1c2"},
            "silos": [{"identity_client_id": g.silo_principal("a"), "datastore": "silo_alpha"}],
        },
        "storage_id": g.storage_id("stalphaxyz12"),
        "key_vault_uri": "https://kv-fl-ab1c2.vault.azure.net/",
    }
    assert check_no_secret_outputs(outputs) == []
    assert not looks_like_key(g.storage_id("averyveryverylongstorageaccountname0123456789"))


def test_invariants_register_like_the_azure_rules() -> None:
    """One style for both registries: a module with NUMBER, ID, TITLE and check(graph)."""
    from policies.azure_rules import RULES

    for registry in (INVARIANTS, RULES):
        numbers = [entry.number for entry in registry]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert [i.number for i in INVARIANTS] == list(range(1, len(INVARIANTS) + 1))


@pytest.mark.parametrize(
    ("condition", "guid", "allowed"),
    [
        (None, roles.STORAGE_BLOB_DATA_READER, True),
        (signing_key_condition("alpha"), roles.STORAGE_BLOB_DATA_CONTRIBUTOR, True),
        (signing_key_condition("beta"), roles.STORAGE_BLOB_DATA_CONTRIBUTOR, False),
        (None, roles.STORAGE_BLOB_DATA_CONTRIBUTOR, False),
    ],
)
def test_a_silo_writes_only_its_own_signing_key(
    condition: str | None, guid: str, allowed: bool
) -> None:
    """The signing-keys container: a silo may read every key, and write only under the
    condition that names its own key blob; another silo's condition, or none, is named."""
    scope = g.container_scope("stmodels", "signing-keys")
    plain = g.assignment("alpha-keys", g.silo_principal("alpha"), guid, scope)
    narrowed = {"condition": condition, "conditionVersion": "2.0"} if condition else {}
    keys = g._rec(plain.type, plain.name, {**plain.inputs, **narrowed})
    found = only(check_all([*g.sandbox(), keys], OUTPUTS), "cross-silo-isolation")
    assert (not found) == allowed, found
    if not allowed:
        assert "may write other silos' keys" in found[0].problem
