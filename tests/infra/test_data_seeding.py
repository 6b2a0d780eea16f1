"""Data seeding as part of the sandbox: ``dataUploaders`` grants write on one silo's data
container (or the test-set paths of ``global``) and nothing else, the network admits them
where the posture allows it, and the job path checks both halves of each upload."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from blueprints.builder import build_sandbox
from blueprints.mock_runtime import MockRun, run_under_mocks
from blueprints.plan import Plan
from blueprints.spec import ConfigError, load_stack_file, parse_spec
from blueprints.uploaders import TEST_PATH_PATTERN
from policies.job_path import job_path
from tests.infra.breaks import _plain, graph, named, without
from tests.infra.known_gaps import marked

CUSTODIAN_1 = "11111111-2222-4333-8444-555555555501"
CUSTODIAN_2 = "11111111-2222-4333-8444-555555555502"
TEST_OWNER = "11111111-2222-4333-8444-555555555503"
HOME = "198.51.100.40"


def raw(blueprint: str, uploaders: dict[str, Any], **more: Any) -> dict[str, Any]:
    submitters = [{"principalId": "deployer"}]
    if blueprint == "eyes-off":
        submitters = [{"principalId": "deployer", "ipRanges": ["198.51.100.23"]}]
    return {
        "blueprint": blueprint,
        "silos": [
            {"name": "silo1", "region": "westeurope"},
            {"name": "silo2", "region": "westeurope"},
        ],
        "submitters": submitters,
        "dataUploaders": uploaders,
        **more,
    }


def with_ips(ips: bool) -> dict[str, Any]:
    extra = {"ipRanges": [HOME]} if ips else {}
    return {
        "silo1": [{"principalId": CUSTODIAN_1, **extra}],
        "silo2": [{"principalId": CUSTODIAN_2, **extra}],
        "global": [{"principalId": TEST_OWNER, "principalType": "Group", **extra}],
    }


@functools.cache
def run(blueprint: str, ips: bool) -> MockRun:
    spec = parse_spec(raw(blueprint, with_ips(ips)))
    return run_under_mocks(lambda: build_sandbox(spec))


def records_outputs(blueprint: str, ips: bool) -> tuple[list[Any], dict[str, Any]]:
    r = run(blueprint, ips)
    return list(r.resources), copy.deepcopy(_plain(r.result))


def seeding(blueprint: str, ips: bool) -> list[Any]:
    records, outputs = records_outputs(blueprint, ips)
    return [m for m in job_path(graph(records, outputs)) if m.step.startswith("seed ")]


@pytest.mark.parametrize(
    ("blueprint", "ips"), [("minimal", False), ("eyes-on", False), ("eyes-off", True)]
)
def test_uploaders_have_a_checked_route_and_role(blueprint: str, ips: bool) -> None:
    moves = seeding(blueprint, ips)
    assert [(m.step, m.what) for m in moves] == [
        ("seed silo silo1", "upload silo silo1's data"),
        ("seed silo silo2", "upload silo silo2's data"),
        ("seed the test set", "upload the test set"),
    ]
    assert [m.status for m in moves] == ["ok"] * 3, [str(m.violation()) for m in moves]
    assert "condition" in moves[2].role_detail


def test_uploader_grants_reach_one_container_only() -> None:
    r = run("eyes-off", True)
    grants = [g for g in _plain(r.result)["access_table"] if g["grantee"].endswith(CUSTODIAN_1)]
    assert [(g["role"], g["target"], g["member_of"]) for g in grants] == [
        ("Storage Blob Data Contributor", "silo:silo1-data-container", "silo1")
    ]
    assignment = next(
        x
        for x in r.resources
        if x.name == f"ra-principal-{TEST_OWNER}-storage-blob-data-"
        "contributor-models-container-global"
    )
    assert TEST_PATH_PATTERN in assignment.inputs["condition"]
    assert assignment.inputs["conditionVersion"] == "2.0"


def test_eyes_off_opens_private_storage_to_uploader_addresses_only() -> None:
    r = run("eyes-off", True)
    accounts = [x for x in r.resources if x.type.endswith(":StorageAccount")]
    for name in ("silo-silo1-storage", "orchestrator-models-storage"):
        account = next(a for a in accounts if a.name == name)
        rules = account.inputs["networkRuleSet"]
        assert [i["iPAddressOrRange"] for i in rules["ipRules"]] == [HOME]
        assert rules["defaultAction"] == "Deny" and rules["bypass"] == "None"
        assert account.inputs["allowedCopyScope"] == "PrivateLink"
    assert Plan(parse_spec(raw("eyes-off", with_ips(True))), r).ok


def test_removing_an_uploaders_role_fails_at_the_seeding_step() -> None:
    records, outputs = records_outputs("eyes-off", True)
    records = without(
        records,
        named(
            f"ra-principal-{CUSTODIAN_2}-storage-blob-data-contributor-silo-silo2-data-container"
        ),
    )
    broken = [m for m in job_path(graph(records, outputs)) if not m.ok]
    assert [(m.step, m.what) for m in broken] == [("seed silo silo2", "upload silo silo2's data")]
    assert "Storage Blob Data Contributor" in broken[0].problem
    assert broken[0].resource is not None and broken[0].resource.name == "silo-silo2-storage"


def test_an_uploader_outside_the_ip_rules_cannot_reach_private_storage() -> None:
    records, outputs = records_outputs("eyes-off", True)
    outputs["data_uploaders"][0]["ip_ranges"] = ["192.0.2.99"]
    broken = [m for m in job_path(graph(records, outputs)) if not m.ok]
    assert [m.step for m in broken] == ["seed silo silo1"]
    assert "192.0.2.99" in broken[0].problem


@pytest.mark.parametrize("blueprint", marked(["private", "confidential"]))
def test_without_a_route_submit_is_assumed_and_silo_seeding_is_broken(blueprint: str) -> None:
    """With no jump host, people on "the hub network" are hosts of the user's: the workspace
    and the model store (endpoints in the hub) are reachable if such a host exists, so those
    steps are *assumed*; a silo's endpoints NSG refuses every other VNet source, so seeding
    a silo is *broken*, and the fix is the jump host."""
    from tests.infra.helpers import blueprint_spec

    base = blueprint_spec(blueprint, 2).model_dump(by_alias=True, exclude_none=True, mode="json")
    base.pop("jumpHost")
    spec = parse_spec({**base, "dataUploaders": with_ips(False)})
    plan = Plan(spec, run_under_mocks(lambda: build_sandbox(spec)))
    assert not plan.ok
    statuses = {(m.step, m.status) for m in plan.movements if m.step in ("submit",)}
    assert statuses == {("submit", "assumed")}
    seeds = {m.step: m for m in plan.movements if m.step.startswith("seed ")}
    assert seeds["seed the test set"].status == "assumed" and seeds["seed the test set"].role_ok
    for silo in ("silo1", "silo2"):
        move = seeds[f"seed silo {silo}"]
        assert move.status == "broken" and move.role_ok and move.network_ok is False
        assert "DenyOtherVnetInbound" in move.problem and "fl-sandbox:jumpHost" in move.fix
    assumed = plan.to_dict()["job_path"]["assumed"]
    assert any("Bastion" in a and a.startswith("submit") for a in assumed)


def test_eyes_off_uploader_without_addresses_cannot_seed_a_silo() -> None:
    moves = seeding("eyes-off", False)
    assert [m.status for m in moves] == ["broken", "broken", "assumed"]
    assert all("hub" in m.actor for m in moves)
    assert all("fl-sandbox:jumpHost" in m.fix for m in moves[:2])


def test_a_stack_created_account_nobody_may_write_breaks_the_seeding_step() -> None:
    """Only a blob data role writes blobs under Entra ID (Owner and Contributor do not), and
    the accounts take no shared key: with nobody listed the first upload fails for everyone,
    so the step is broken, not assumed, and names the setting to fill."""
    spec = parse_spec(raw("minimal", {}))
    records = run_under_mocks(lambda: build_sandbox(spec))
    moves = [
        m
        for m in job_path(graph(list(records.resources), _plain(records.result)))
        if m.step.startswith("seed ")
    ]
    assert [m.status for m in moves] == ["broken"] * 3
    assert [m.role_ok for m in moves] == [False] * 3
    assert [m.network_ok for m in moves] == [None] * 3  # not checked, and not claimed
    assert "fl-sandbox:dataUploaders.silo1" in moves[0].fix
    assert moves[0].resource is not None and moves[0].resource.name == "silo-silo1-storage"
    assert "fl-sandbox:dataUploaders.global" in moves[2].fix


def test_a_silo_that_brings_its_account_leaves_seeding_to_its_owner() -> None:
    """A silo's own storage account: its owner grants the upload there, so the step is
    assumed, with neither half claimed as checked."""
    existing = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-data/providers/"
        "Microsoft.Storage/storageAccounts/stsiteonedata"
    )
    spec = parse_spec(
        raw(
            "minimal",
            {"silo2": [{"principalId": CUSTODIAN_2}], "global": [{"principalId": TEST_OWNER}]},
        )
        | {
            "silos": [
                {
                    "name": "silo1",
                    "region": "westeurope",
                    "storage": {"accountId": existing, "container": "training"},
                },
                {"name": "silo2", "region": "westeurope"},
            ]
        }
    )
    records = run_under_mocks(lambda: build_sandbox(spec))
    moves = {
        m.step: m
        for m in job_path(graph(list(records.resources), _plain(records.result)))
        if m.step.startswith("seed ")
    }
    own = moves["seed silo silo1"]
    assert own.status == "assumed" and own.role_ok is None and own.network_ok is None
    assert "stsiteonedata" in own.assumed and "not created by this stack" in own.assumed
    assert moves["seed silo silo2"].status == "ok"


def test_the_plan_fails_and_says_what_to_add_when_nobody_may_seed(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.bare.yaml"
    stack.write_text(
        "config:\n"
        "  fl-sandbox:blueprint: minimal\n"
        "  fl-sandbox:silos:\n"
        "    - name: silo1\n"
        "      region: westeurope\n"
    )
    spec = load_stack_file(stack)
    plan = Plan(spec, run_under_mocks(lambda: build_sandbox(spec)))
    assert not plan.ok
    broken = [m for m in plan.movements if not m.ok]
    assert {m.step for m in broken} == {"seed silo silo1", "seed the test set"}


@pytest.mark.parametrize(
    ("blueprint", "uploaders", "key", "words"),
    [
        ("minimal", {"silo9": [{"principalId": CUSTODIAN_1}]}, "dataUploaders.silo9", "no such"),
        (
            "minimal",
            {"silo1": [{"principalId": "alice@example.com"}]},
            "dataUploaders.silo1[0].principalId",
            "object id",
        ),
        (
            "minimal",
            {"silo1": [{"principalId": CUSTODIAN_1}], "silo2": [{"principalId": CUSTODIAN_1}]},
            "dataUploaders.silo2[0].principalId",
            "two silos",
        ),
        (
            "minimal",
            {"silo1": [{"principalId": CUSTODIAN_1, "ipRanges": [HOME]}]},
            "dataUploaders.silo1[0].ipRanges",
            "no effect",
        ),
        (
            "private",
            {"global": [{"principalId": TEST_OWNER, "ipRanges": [HOME]}]},
            "dataUploaders.global[0].ipRanges",
            "hub network",
        ),
        (
            "eyes-off",
            {"silo1": [{"principalId": CUSTODIAN_1, "ipRanges": ["10.1.2.3"]}]},
            "dataUploaders.silo1[0].ipRanges[0]",
            "",
        ),
        (
            "minimal",
            {"silo1": [{"principalId": CUSTODIAN_1, "role": "Owner"}]},
            "dataUploaders.silo1[0].role",
            "unknown key",
        ),
    ],
)
def test_bad_uploader_config_is_refused_by_key(
    blueprint: str, uploaders: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_spec(raw(blueprint, uploaders))
    assert refused.value.key == key
    assert words in str(refused.value)
    assert "Fix: " in str(refused.value)


def test_a_submitter_may_not_upload_a_silos_data() -> None:
    submitter = "11111111-2222-4333-8444-555555555599"
    spec_raw = raw("minimal", {"silo1": [{"principalId": submitter}]})
    spec_raw["submitters"] = [{"principalId": submitter}]
    with pytest.raises(ConfigError) as refused:
        parse_spec(spec_raw)
    assert "submitters never reach a silo's data" in str(refused.value)


def test_hybrid_on_premises_silo_needs_and_admits_its_uploaders_addresses() -> None:
    import yaml

    from blueprints.spec import NAMESPACE, load_stack_file

    path = Path(__file__).parents[2] / "stacks" / "Pulumi.hybrid.yaml"
    spec = load_stack_file(path)
    uploader = spec.data_uploaders["bank-c"][0]
    r = run_under_mocks(lambda: build_sandbox(spec))
    account = next(x for x in r.resources if x.name == "silo-bank-c-storage")
    rules = [i["iPAddressOrRange"] for i in account.inputs["networkRuleSet"]["ipRules"]]
    assert uploader.ip_ranges[0] in rules and "203.0.113.16/28" in rules
    moves = job_path(graph(list(r.resources), _plain(r.result)))
    assert [m.status for m in moves if m.step == "seed silo bank-c"] == ["ok"]

    config = yaml.safe_load(path.read_text())["config"]
    settings = {
        k.removeprefix(NAMESPACE + ":"): v for k, v in config.items() if k.startswith(NAMESPACE)
    }
    del settings["dataUploaders"]["bank-c"][0]["ipRanges"]
    with pytest.raises(ConfigError) as refused:
        parse_spec(settings)
    assert refused.value.key == "dataUploaders.bank-c[0].ipRanges"
    assert "admits only listed addresses" in str(refused.value)


def test_an_uploader_on_a_silo_with_its_own_storage_account_is_refused() -> None:
    existing = {
        "accountId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-a"
        "/providers/Microsoft.Storage/storageAccounts/sitea",
    }
    spec_raw = raw("minimal", {"silo1": [{"principalId": CUSTODIAN_1}]})
    spec_raw["silos"][0]["storage"] = existing
    with pytest.raises(ConfigError) as refused:
        parse_spec(spec_raw)
    assert refused.value.key == "dataUploaders.silo1"
    assert "brings its own storage account" in str(refused.value)


# ----- rule 40: conditional role assignments -------------------------------------------------

TEST_SET_GRANT = f"ra-principal-{TEST_OWNER}-storage-blob-data-contributor-models-container-global"


def rule_40(records: list[Any], outputs: dict[str, Any]) -> list[str]:
    from policies.azure_rules import check_rules

    return [str(v) for v in check_rules(graph(records, outputs))["azure-40-role-conditions"]]


def test_40_holds_for_the_test_set_grant() -> None:
    assert rule_40(*records_outputs("eyes-off", True)) == []


def test_40_a_condition_without_its_version_is_named() -> None:
    from tests.infra.breaks import edited

    records, outputs = records_outputs("eyes-off", True)
    records = edited(records, named(TEST_SET_GRANT), lambda d: d.pop("conditionVersion", None))
    (found,) = rule_40(records, outputs)
    assert TEST_SET_GRANT in found and "conditionVersion" in found


def test_40_a_condition_on_a_role_it_cannot_narrow_is_named() -> None:
    from tests.infra.breaks import edited

    records, outputs = records_outputs("eyes-off", True)
    contributor = "/providers/Microsoft.Authorization/roleDefinitions/" + (
        "b24988ac-6180-42a0-ab88-20f7382dd24c"
    )
    records = edited(
        records, named(TEST_SET_GRANT), lambda d: d.__setitem__("roleDefinitionId", contributor)
    )
    (found,) = rule_40(records, outputs)
    assert TEST_SET_GRANT in found and "would hold in full" in found


def test_an_uploader_given_another_silos_storage_elsewhere_is_refused() -> None:
    spec_raw = raw("minimal", {"silo1": [{"principalId": CUSTODIAN_1}]})
    spec_raw["extraRoleAssignments"] = [
        {
            "principalId": CUSTODIAN_1,
            "role": "Storage Blob Data Reader",
            "target": "silo:silo2-storage",
            "memberOf": "silo2",
        }
    ]
    with pytest.raises(ConfigError) as refused:
        parse_spec(spec_raw)
    assert refused.value.key == "dataUploaders.silo1[0].principalId"
    assert "silo 'silo2'" in str(refused.value) and "never reaches another silo" in str(
        refused.value
    )
