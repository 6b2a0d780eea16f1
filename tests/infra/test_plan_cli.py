"""``python -m blueprints plan``: exit codes, JSON content, one-line config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_azure_native import authorization
from typer.testing import CliRunner

import blueprints.builder
import components.permissions
from blueprints.__main__ import EXIT_BAD_CONFIG, EXIT_VIOLATIONS, app
from blueprints.mock_runtime import MOCK_SUBSCRIPTION
from blueprints.spec import EXAMPLE_SUBMITTER_RANGE, SandboxSpec
from components.vocabulary import builtin_roles
from components.vocabulary.posture import NetworkPosture
from fl_jobs.run.manifest import FederationManifest
from policies import roles
from policies.azure_rules import RULES
from policies.invariants import INVARIANTS
from tests.infra.known_gaps import marked

REPO = Path(__file__).resolve().parents[2]
STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))
runner = CliRunner()


def plan(*args: str) -> Any:
    return runner.invoke(app, ["plan", *args])


EYES_OFF = ("--blueprint", "eyes-off", "--submitter-ip", EXAMPLE_SUBMITTER_RANGE)


def test_eyes_off_three_silos_json_holds_resources_access_and_invariants() -> None:
    result = plan(*EYES_OFF, "--silos", "3", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["blueprint"] == "eyes-off"
    assert doc["resource_count"] == len(doc["resources"]) == sum(doc["counts_by_type"].values())
    assert doc["counts_by_type"]["azure-native:storage:StorageAccount"] == 5  # ws, models, 3 silos
    assert doc["counts_by_type"]["azure-native:network:VirtualNetwork"] == 4
    assert [i["id"] for i in doc["invariants"]] == [i.id for i in INVARIANTS]
    assert all(i["ok"] and i["violations"] == [] for i in doc["invariants"])
    assert [r["id"] for r in doc["azure_rules"]] == [r.id for r in RULES]
    assert all(r["ok"] and r["source"] for r in doc["azure_rules"])
    moves = doc["job_path"]["movements"]
    assert doc["job_path"]["ok"] and all(m["ok"] for m in moves)
    steps = {m["step"] for m in moves}
    assert steps == {
        "submit",
        "image build",
        "Azure ML service",
        "orchestrator: agent",
        *(f"silo silo{i}: agent" for i in (1, 2, 3)),
        *(f"seed silo silo{i}" for i in (1, 2, 3)),
        "seed the test set",
    }
    matrix = doc["access_matrix"]["matrix"]
    for silo in ("silo1", "silo2", "silo3"):
        mine = matrix[f"silo:{silo} identity"]
        assert any(t.startswith(f"silo:{silo} storage") for t in mine)
        assert not any(t.startswith("silo:") and f"silo:{silo} " not in t for t in mine)
    assert not any(t.startswith("silo:") for t in matrix["orchestrator identity"])
    assert not any(t.startswith("silo:") for t in matrix["orchestrator jobs identity"])
    network = doc["network"]
    assert len(network["peerings"]) == 6 and network["overlaps"] == []
    assert {pe["groups"][0] for pe in network["private_endpoints"]} >= {"blob"}
    assert doc["manifest"] == {"valid": True, "error": None}
    FederationManifest.parse(doc["outputs"]["federation"])
    roots = {node["name"] for node in doc["tree"]}
    assert {"orchestrator", "silo-silo1", "silo-silo2", "silo-silo3"} <= roots
    by_name = {r["name"]: r for r in doc["resources"]}
    compute = by_name["silo-silo2-compute"]
    assert compute["inputs"]["properties"]["computeLocation"] == "northeurope"
    assert "orchestrator-hub-dns-ws-amlworkspace" in compute["depends_on"]
    assert by_name["orchestrator-workspace"]["options"]["replaceOnChanges"] == ["hbiWorkspace"]
    assert all("inputs" in r and "depends_on" in r for r in doc["resources"])


def test_secret_inputs_are_redacted_in_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi
    from pulumi_azure_native import keyvault

    real_build = blueprints.builder.build_sandbox
    secret_value = "s3cr3t-Very-Long-Value-0f-Its-Own-9d2c"

    def with_secret(spec: SandboxSpec) -> dict[str, Any]:
        outputs = real_build(spec)
        keyvault.Secret(
            "a-secret",
            secret_name="token",
            vault_name="kv",
            resource_group_name="rg",
            properties={"value": pulumi.Output.secret(secret_value), "content_type": "text"},
        )
        return outputs

    monkeypatch.setattr(blueprints.builder, "build_sandbox", with_secret)
    result = plan("--blueprint", "minimal", "--silos", "1", "--json")
    assert secret_value not in result.stdout
    doc = json.loads(result.stdout)
    (secret,) = [r for r in doc["resources"] if r["name"] == "a-secret"]
    # Pulumi marks the whole object holding a secret as secret; the plan redacts all of it.
    assert secret["inputs"]["properties"] == "[secret]"
    assert secret["inputs"]["vaultName"] == "kv" and secret["inputs"]["secretName"] == "[secret]"


def test_settings_whose_names_sound_secret_stay_readable_when_they_cannot_be_one() -> None:
    """allowSharedKeyAccess is a boolean a reviewer must see (false on every account);
    redaction by name applies only to values that could hold a secret."""
    from blueprints.plan import redact

    doc = json.loads(plan("--blueprint", "minimal", "--silos", "1", "--json").stdout)
    accounts = [r for r in doc["resources"] if r["type"].endswith(":storage:StorageAccount")]
    assert accounts and {a["inputs"]["allowSharedKeyAccess"] for a in accounts} == {False}
    inputs = {"sharedKey": "abc123", "accessKeys": {"primary": "x"}, "keyCount": 2, "token": ""}
    assert redact(inputs, frozenset()) == {
        "sharedKey": "[secret]",
        "accessKeys": "[secret]",
        "keyCount": 2,
        "token": "",
    }


def test_without_the_workspace_endpoint_plan_exits_1_naming_rule_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # eyes-off as it was before: computes without public IPs, no workspace endpoint or zones.
    monkeypatch.setattr(NetworkPosture, "workspace_endpoint", property(lambda self: False))
    result = plan(*EYES_OFF, "--silos", "2", "--json")
    assert result.exit_code == EXIT_VIOLATIONS
    doc = json.loads(result.stdout)
    (rule_1,) = [r for r in doc["azure_rules"] if r["number"] == 1]
    assert not rule_1["ok"]
    named = {v["resource_name"] for v in rule_1["violations"]}
    assert "silo-silo1-compute" in named and "orchestrator-compute" in named
    assert "[azure-1-workspace-endpoint] Compute 'silo-silo1-compute'" in result.stderr


def test_without_a_submitters_storage_role_the_upload_step_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = tuple(
        row
        for row in components.permissions.SUBMITTER_ROLES
        if row[0] != builtin_roles.BLOB_DATA_CONTRIBUTOR
    )
    monkeypatch.setattr(components.permissions, "SUBMITTER_ROLES", kept)
    result = plan("--blueprint", "minimal", "--silos", "1", "--json")
    assert result.exit_code == EXIT_VIOLATIONS
    doc = json.loads(result.stdout)
    broken = [m for m in doc["job_path"]["movements"] if not m["ok"]]
    assert [(m["step"], m["what"]) for m in broken] == [("submit", "upload the code snapshot")]
    assert broken[0]["resource"].startswith("StorageAccount 'orchestrator-ws-storage'")
    assert "Storage Blob Data Contributor" in broken[0]["problem"]
    human = plan("--blueprint", "minimal", "--silos", "1")
    assert "upload the code snapshot" in human.stdout and "FAILED" in human.stdout


def test_human_output_shows_tables_and_verdict() -> None:
    result = plan("--blueprint", "minimal", "--silos", "1")
    assert result.exit_code == 0, result.stderr
    for heading in ("Resources by type", "Access matrix", "Isolation invariants", "OK"):
        assert heading in result.stdout
    assert "silo:silo1 identity" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--blueprint", "eyes-closed"], "unknown blueprint"),
        (["--blueprint", "minimal", "--silos", "0"], "at least one silo"),
        (["--blueprint", "minimal", "--silos", "101"], "at most 100"),
        ([], "exactly one of --blueprint or --config"),
        (["--blueprint", "minimal", "--config", "x.yaml"], "exactly one of"),
        (["--config", "stacks/Pulumi.nope.yaml"], "no such file"),
        (["--blueprint", "eyes-off"], "--submitter-ip"),
        (["--blueprint", "eyes-off", "--submitter-ip", "10.0.0.1"], "public IPv4"),
        (["--blueprint", "private", "--submitter-ip", "198.51.100.7"], "hub VNet"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = plan(*args)
    assert result.exit_code == EXIT_BAD_CONFIG
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line
    assert "Traceback" not in result.stderr


def test_silos_with_config_is_refused(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  fl-sandbox:blueprint: minimal\n")
    result = plan("--config", str(stack), "--silos", "2")
    assert result.exit_code == EXIT_BAD_CONFIG and "--silos applies to --blueprint" in result.stderr
    result = plan("--config", str(stack), "--submitter-ip", "198.51.100.7")
    assert result.exit_code == EXIT_BAD_CONFIG
    assert "--submitter-ip applies to --blueprint" in result.stderr


def test_bad_stack_file_names_key_and_value_and_declares_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared: list[SandboxSpec] = []
    monkeypatch.setattr(blueprints.builder, "build_sandbox", declared.append)
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(
        "config:\n"
        "  fl-sandbox:blueprint: eyes-on\n"
        "  fl-sandbox:silos:\n"
        "    - name: bank-1\n"
        "      region: moonbase-1\n"
    )
    result = plan("--config", str(stack), "--json")
    assert result.exit_code == EXIT_BAD_CONFIG
    (line,) = result.stderr.strip().splitlines()
    assert "silos[0].region" in line and "moonbase-1" in line and "unknown Azure region" in line
    assert json.loads(result.stdout) == {"ok": False, "error": line.removeprefix("error: ")}
    assert declared == []


def test_broken_invariant_exits_1_and_names_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = blueprints.builder.build_sandbox

    def with_leak(spec: SandboxSpec) -> dict[str, Any]:
        outputs = real_build(spec)
        authorization.RoleAssignment(
            "everyone-reads-everything",
            principal_id="3f1c9a7e-0000-4000-8000-00000000beef",
            principal_type="User",
            role_definition_id=f"/subscriptions/{MOCK_SUBSCRIPTION}/providers/"
            f"Microsoft.Authorization/roleDefinitions/{roles.STORAGE_BLOB_DATA_READER}",
            scope=f"/subscriptions/{MOCK_SUBSCRIPTION}",
        )
        return outputs

    monkeypatch.setattr(blueprints.builder, "build_sandbox", with_leak)
    result = plan("--blueprint", "minimal", "--silos", "1", "--json")
    assert result.exit_code == EXIT_VIOLATIONS
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    (silo_data,) = [i for i in doc["invariants"] if i["id"] == "silo-data-access"]
    assert [v["resource_name"] for v in silo_data["violations"]] == ["everyone-reads-everything"]
    assert "everyone-reads-everything" in result.stderr

    human = plan("--blueprint", "minimal", "--silos", "1")
    assert human.exit_code == EXIT_VIOLATIONS
    assert "violation" in human.stdout and "FAILED" in human.stdout


@pytest.mark.parametrize(
    "stack", marked(STACK_FILES, key=lambda p: p.name), ids=[p.name for p in STACK_FILES]
)
def test_sample_stack_files_plan_cleanly(stack: Path) -> None:
    result = plan("--config", str(stack), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["blueprint"] in stack.name


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blueprints", "plan", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_subprocess_json_is_one_document_on_stdout() -> None:
    done = _subprocess("--blueprint", "minimal", "--silos", "1", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["silos"] == ["silo1"]


def test_subprocess_bad_config_has_no_traceback() -> None:
    done = _subprocess("--blueprint", "minimal", "--silos", "0")
    assert done.returncode == EXIT_BAD_CONFIG
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_hundred_silos_have_as_many_resources_per_silo_as_three() -> None:
    docs = {}
    for silos in (3, 100):
        result = plan(*EYES_OFF, "--silos", str(silos), "--json")
        assert result.exit_code == 0, result.stderr
        docs[silos] = json.loads(result.stdout)

    def per_silo(doc: dict[str, Any]) -> dict[str, int]:
        sizes = {}
        for node in doc["tree"]:
            if node["type"] == "fl-sandbox:infra:Silo":
                sizes[node["name"]] = _count_custom(node)
        return sizes

    small, large = per_silo(docs[3]), per_silo(docs[100])
    assert len(large) == 100 and len(set(large.values())) == 1
    assert set(large.values()) == set(small.values())
    per_silo_total = (docs[100]["resource_count"] - docs[3]["resource_count"]) / 97
    three_silo_fixed = docs[3]["resource_count"] - 3 * per_silo_total
    assert per_silo_total == int(per_silo_total) and three_silo_fixed > 0
    assert all(i["ok"] for i in docs[100]["invariants"])
    assert all(r["ok"] for r in docs[100]["azure_rules"]) and docs[100]["job_path"]["ok"]


def _count_custom(node: dict[str, Any]) -> int:
    own = 0 if node["component"] else 1
    return own + sum(_count_custom(child) for child in node["children"])


def test_non_numeric_silos_is_a_usage_error_in_one_line() -> None:
    result = plan("--blueprint", "minimal", "--silos", "three")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Invalid value for '--silos'") and "valid integer" in line
    assert line.endswith("see `plan --help`") or "--help" in line


def test_an_unexpected_failure_is_one_line_with_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(spec: SandboxSpec) -> dict[str, Any]:
        raise RuntimeError("the mock engine fell over")

    monkeypatch.setattr(blueprints.builder, "build_sandbox", broken)
    result = plan("--blueprint", "minimal", "--silos", "1")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "RuntimeError: the mock engine fell over" in line and "traceback in " in line
    log = Path(line.split("traceback in ", 1)[1].split(";")[0].strip())
    assert "Traceback" in log.read_text() and "the mock engine fell over" in log.read_text()
