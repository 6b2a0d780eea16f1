"""``fl-sandbox agent ...``: every bad argument stops with one line and exit code 2 before the
store is touched (or, for a container that does not exist, before anything is written)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from tests.azurite import AzuriteServer
from tests.storage.identity_endpoint import IdentityEndpoint, identity_endpoint  # noqa: F401

runner = CliRunner()
URL = "https://127.0.0.1:1/devstoreaccount1"  # never reached: the arguments are refused first


def _files(tmp_path: Path, manifest_silos: int = 2, **job: object) -> tuple[Path, Path]:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "blueprint": "local",
                "orchestrator": {"compute": "local", "datastore": "local"},
                "silos": [
                    {
                        "name": f"silo-{i}",
                        "region": "local",
                        "kind": "local",
                        "compute": "local",
                        "datastore": str(tmp_path / f"silo-{i}"),
                    }
                    for i in range(manifest_silos)
                ],
            }
        )
    )
    job_file = tmp_path / "job.yaml"
    settings = {"example": "digits", "silos": 2, "rounds": 1, **job}
    job_file.write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
    return manifest, job_file


def _run(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["agent", *args], catch_exceptions=False)
    return result.exit_code, result.stderr.strip().splitlines()


CASES = [
    ({}, ["--job", "Bad/Job"], "job id 'Bad/Job' must be 1-63 lowercase letters"),
    ({}, ["--account-url", "http://plain"], "--account-url 'http://plain' is not an https"),
    ({"silos": 3}, [], "the job has 3 silos but the manifest 2 - set silos: 2"),
    ({"example": "cifar"}, [], "unknown example 'cifar'"),
]


@pytest.mark.parametrize("command", ["orchestrator", "silo"])
@pytest.mark.parametrize(("job", "args", "fragment"), CASES, ids=[c[2][:30] for c in CASES])
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, command: str, job: dict, args: list[str], fragment: str
) -> None:
    manifest, job_file = _files(tmp_path, **job)
    options = {"--manifest": str(manifest), "--config": str(job_file), "--job": "j1"}
    options["--account-url"] = URL
    options |= dict(zip(args[::2], args[1::2], strict=True))
    extra = ["--out", str(tmp_path / "o")] if command == "orchestrator" else []
    if command == "silo":
        extra = ["--silo", "silo-0", "--work", str(tmp_path / "w")]
    code, lines = _run(command, *[x for kv in options.items() for x in kv], *extra)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_an_unknown_silo_and_a_missing_manifest(tmp_path: Path) -> None:
    manifest, job_file = _files(tmp_path)
    common = ["--config", str(job_file), "--job", "j1", "--account-url", URL]
    code, lines = _run(
        "silo", "--silo", "silo-9", "--manifest", str(manifest), *common, "--work", str(tmp_path)
    )
    assert code == 2 and "no silo named 'silo-9'" in lines[0], lines
    code, lines = _run(
        "orchestrator", "--manifest", str(tmp_path / "none.json"), *common, "--out", str(tmp_path)
    )
    assert code == 2 and "does not exist" in lines[0], lines


def test_a_missing_container_is_named(
    tmp_path: Path,
    azurite: AzuriteServer,
    identity_endpoint: IdentityEndpoint,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {**azurite.client_env, **identity_endpoint.env}.items():
        monkeypatch.setenv(key, value)
    manifest, job_file = _files(tmp_path)
    data = json.loads(manifest.read_text())
    name = f"s{uuid.uuid4().hex[:8]}"
    data["silos"][1]["name"] = name  # its container silo-<name> was never created
    manifest.write_text(json.dumps(data))
    service = azurite.service_client()
    for present in ("global", "silo-silo-0"):
        if not service.get_container_client(present).exists():
            service.create_container(present)
    code, lines = _run(
        "orchestrator",
        "--manifest",
        str(manifest),
        "--config",
        str(job_file),
        "--job",
        "j1",
        "--account-url",
        azurite.account_url,
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2, lines
    assert lines == [
        f"error: container 'silo-{name}' does not exist in {azurite.account_url} - deploy the "
        "blueprint (it creates one container per silo and `global`)"
    ]
