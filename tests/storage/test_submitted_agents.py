"""The agents engine's submission, run: the commands of a dry run's ``pipeline.yaml`` (read back
with ``load_job``) executed from the staged code snapshot against Azurite.

Only what Azure ML itself does is stood in for: it would mount each silo's datastore for
``${{inputs.silo_data}}`` and the global store for ``${{outputs.run}}``, and give the steps
their managed identity (here a managed-identity endpoint on loopback); the store's endpoint in
the commands is swapped for Azurite's.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from fl_jobs.aml.cli import app
from fl_jobs.store import layout
from tests.aml.conftest import blueprint_outputs
from tests.azurite import AzuriteServer
from tests.storage.identity_endpoint import IdentityEndpoint, identity_endpoint  # noqa: F401


def _write_silo_data(code: Path, manifest_silos: list[str], root: Path) -> dict[str, Path]:
    """Each silo's raw data folder, as scripts/prepare_silo_data.py would upload it."""
    from fl_jobs.config import load_job_config
    from fl_jobs.core.silo_data import SiloArrays
    from fl_jobs.local.prepare import prepare_job
    from fl_jobs.silo.silo_cache import materialize_silo_folder

    prepared = prepare_job(load_job_config(code / "job.yaml"))
    folders = {}
    for index, silo in enumerate(manifest_silos):
        rows = prepared.partitions[index]
        folder = root / "data" / silo
        arrays = SiloArrays(
            X=prepared.dataset.X[rows], y=prepared.dataset.y[rows],
            task=prepared.example.task, meta={"example": "digits", "silo": silo},
        )  # fmt: skip
        materialize_silo_folder(folder, arrays, cache=None)
        folders[silo] = folder
    return folders


def test_the_submitted_agent_steps_run_a_federation_over_the_store(
    tmp_path: Path,
    azurite: AzuriteServer,
    identity_endpoint: IdentityEndpoint,  # noqa: F811
) -> None:
    from azure.ai.ml import load_job

    outputs = blueprint_outputs("eyes-off", 3)
    manifest_file = tmp_path / "outputs.json"
    manifest_file.write_text(json.dumps(outputs))
    out = tmp_path / "dry"
    job_file = tmp_path / "job.yaml"
    job_file.write_text("example: digits\nrounds: 2\nseed: 3\nround_timeout: 120\n")
    result = CliRunner().invoke(
        app,
        ["submit", "--manifest", str(manifest_file), "--example", "digits", "--config",
         str(job_file), "--dry-run", "--out", str(out), "--job-name", "fl-agents-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = load_job(out / "pipeline.yaml")
    code = out / "code"
    silos = [s["name"] for s in outputs["federation"]["silos"]]
    service = azurite.service_client()
    for name in [layout.GLOBAL_CONTAINER, *map(layout.silo_container, silos)]:
        if not service.get_container_client(name).exists():
            service.create_container(name)
    data = _write_silo_data(code, silos, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_"))}
    env.update(azurite.client_env)
    env.update(identity_endpoint.env)
    env["PYTHONPATH"] = str(code)  # the snapshot, as on the compute
    run_folder = tmp_path / "orchestrator-run"
    procs = {}
    for name, node in job.jobs.items():
        words = shlex.split(node.command)
        at = words.index("--account-url")
        words[at + 1] = azurite.account_url
        words = [
            str(run_folder)
            if w == "${{outputs.run}}"
            else str(data[words[words.index("--silo") + 1]])
            if w == "${{inputs.silo_data}}"
            else w
            for w in words
        ]
        assert words[:3] == ["python", "-m", "fl_jobs.store"]
        log = (tmp_path / f"{name}.log").open("wb")
        procs[name] = subprocess.Popen(
            [sys.executable, *words[1:]], cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        codes = {name: proc.wait(timeout=400) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    logs = "\n".join((tmp_path / f"{n}.log").read_text() for n in procs)
    assert codes == dict.fromkeys(procs, 0), logs
    rounds = [json.loads(x) for x in (run_folder / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2]
    assert (run_folder / "global_model.pt").is_file()
    # The final model as an MLflow model (what submit registers in the workspace), read back
    # in a second process with MLflow itself, scoring the input example it carries.
    model = run_folder / "model"
    assert (model / "MLmodel").is_file(), logs
    read_back = subprocess.run(
        [sys.executable, "-c",
         "import sys, mlflow.pyfunc; from mlflow.models import Model; "
         "path = sys.argv[1]; rows = Model.load(path).load_input_example(path); "
         "print(len(mlflow.pyfunc.load_model(path).predict(rows)), len(rows))", str(model)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert read_back.returncode == 0, read_back.stderr[-2000:]
    predicted, given = read_back.stdout.split()[-2:]
    assert predicted == given and int(given) > 0
