"""One declaration of a round's data movements (``fl_jobs.aml.round_movements``) drives both
the agents pipeline's ports and the job path's checks: every port built is declared, every
declared port is built, every declared movement is checked, and a movement added to the
declaration shows up in both without touching either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blueprints.catalog import BLUEPRINT_NAMES
from fl_jobs.aml import round_movements
from fl_jobs.aml.agents_pipeline import silo_step_name
from fl_jobs.aml.layout import datastore_uri
from fl_jobs.aml.model_store import model_store_for
from fl_jobs.aml.pipeline import default_data_prefix
from fl_jobs.aml.round_movements import (
    SEEDING,
    SILO_AGENT,
    Access,
    BlobSdk,
    DataMovement,
    Port,
    PortPaths,
    Store,
)
from fl_jobs.aml.submit import prepare_job
from fl_jobs.run.manifest import FederationManifest, SiloRef
from policies.job_path import (
    BLOB_READ,
    BLOB_WRITE,
    ORCHESTRATOR_STEP,
    ROLE_WORDS,
    Movement,
    job_path,
    silo_step,
)
from tests.aml.conftest import blueprint_outputs, job_config, stack_outputs
from tests.infra.breaks import graph, run_of

JOB = "fl-x"
PIPELINE_CASES = ["minimal:1", "eyes-off:3", "hybrid"]
"""Azure ML cluster silos at both sizes, and a Kubernetes silo reading its own volume."""


def _manifest(case: str) -> FederationManifest:
    if ":" in case:
        blueprint, silos = case.split(":")
        return FederationManifest.parse(blueprint_outputs(blueprint, int(silos)))
    return FederationManifest.parse(stack_outputs(case))


def _agents_job(manifest: FederationManifest, tmp_path: Path) -> Any:
    prepared = prepare_job(
        manifest, job_config(), code_dir=tmp_path / "code", job_name=JOB, engine="agents"
    )
    return prepared.job


def _built_ports(job: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(step, direction, port) -> the port as the pipeline YAML carries it."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for step, node in job._to_dict()["jobs"].items():
        for direction in ("input", "output"):
            for name, port in (node.get(f"{direction}s") or {}).items():
                found[(step, direction, name)] = dict(port)
    return found


def _declared_ports(manifest: FederationManifest) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What the declaration says the pipeline mounts, on the datastore each store names."""
    store = model_store_for(manifest)
    prefix = default_data_prefix(job_config()).strip("/")

    def datastore(movement: DataMovement, silo: SiloRef | None) -> str:
        if movement.store is Store.SILO_DATA and silo is not None:
            return silo.datastore
        if movement.store is Store.SILO_UPDATES and silo is not None:
            return store.update_datastore(silo.name)
        assert movement.store in (Store.GLOBAL_MODELS, Store.TEST_SET), movement
        return store.global_datastore

    wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
    names = [s.name for s in manifest.silos]
    steps: list[tuple[str, list[DataMovement], SiloRef | None]] = [
        ("orchestrator", round_movements.orchestrator_movements(names), None),
        *((silo_step_name(s), round_movements.silo_movements(), s) for s in manifest.silos),
    ]
    for step, movements, silo in steps:
        for movement in movements:
            port = movement.port
            if port is None or (port.volume_instead and silo is not None and silo.data_mount):
                continue
            paths = PortPaths(JOB, prefix, silo.name if silo is not None else None)
            entry = {
                "type": port.type,
                "path": datastore_uri(datastore(movement, silo), port.path(paths)),
            }
            if port.mode is not None:
                entry["mode"] = port.mode
            wanted[(step, port.direction, port.name)] = entry
    return wanted


@pytest.mark.parametrize("case", PIPELINE_CASES)
def test_the_agents_pipeline_mounts_exactly_the_declared_ports(case: str, tmp_path: Path) -> None:
    manifest = _manifest(case)
    built = _built_ports(_agents_job(manifest, tmp_path))
    assert built == _declared_ports(manifest)
    # The declaration's ports are all there is: the silo's data and store, the run folder.
    assert {name for _, _, name in built} == {"silo_data", "silo_store", "run"} - (
        {"silo_data"} if all(s.data_mount for s in manifest.silos) else set()
    )
    if case == "hybrid":  # a silo with its own volume reads it there, not through a port
        mounted = [s for s in manifest.silos if s.data_mount]
        assert mounted
        for silo in mounted:
            assert (silo_step_name(silo), "input", "silo_data") not in built


def _rows(movements: list[Movement]) -> dict[tuple[str, str], list[Movement]]:
    found: dict[tuple[str, str], list[Movement]] = {}
    for movement in movements:
        found.setdefault((movement.step, movement.what), []).append(movement)
    return found


def _seed_step(movement: DataMovement) -> str:
    return f"seed silo {movement.silo}" if movement.silo else "seed the test set"


def _expected_rows(silos: list[str]) -> dict[tuple[str, str], DataMovement]:
    """(job-path step, what) -> the declared movement it checks."""
    found: dict[tuple[str, str], DataMovement] = {}
    for silo in silos:
        for movement in round_movements.silo_movements():
            found[(silo_step(silo), movement.what)] = movement
    for movement in round_movements.orchestrator_movements(silos):
        found[(ORCHESTRATOR_STEP, movement.what)] = movement
    for movement in round_movements.seeding_movements(silos):
        found[(_seed_step(movement), movement.what)] = movement
    return found


def _on_a_store(movement: Movement) -> bool:
    """A job-path row on one of the round's stores (not the workspace, registry, logs)."""
    return (
        movement.target.startswith("datastore '") or "container 'signing-keys'" in movement.target
    )


@pytest.mark.parametrize("blueprint", BLUEPRINT_NAMES)
def test_every_declared_movement_is_checked_by_the_job_path(blueprint: str) -> None:
    records, outputs = run_of(blueprint, 2)
    found = job_path(graph(records, outputs))
    rows = _rows(found)
    silos = [str(s["name"]) for s in outputs["federation"]["silos"]]
    expected = _expected_rows(silos)
    for (step, what), declared in expected.items():
        assert (step, what) in rows, (step, what)
        role = BLOB_WRITE if declared.access is not Access.READ else BLOB_READ
        assert all(m.role == ROLE_WORDS[role] for m in rows[(step, what)]), (step, what)
    # and nothing on the round's stores that the declaration does not know
    agents = {ORCHESTRATOR_STEP, *(silo_step(s) for s in silos)}
    on_stores = {
        (m.step, m.what)
        for m in found
        if _on_a_store(m) and (m.step in agents or m.step.startswith("seed "))
    }
    assert on_stores - set(expected) == set()


EXTRA_PORT = DataMovement(
    "silo",
    Store.SILO_DATA,
    Access.READ,
    "read its extra features",
    Port("silo_extra", "input", lambda paths: f"{paths.prefix}/{paths.silo}-extra"),
    SILO_AGENT,
)
EXTRA_SEED = DataMovement(
    "uploader",
    Store.SILO_DATA,
    Access.WRITE,
    "upload silo {silo}'s extra features",
    BlobSdk("<prefix>/<silo>-extra/..."),
    SEEDING,
    per_silo=True,
)


def test_a_movement_added_to_the_declaration_is_mounted_and_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        round_movements, "SILO_MOVEMENTS", (*round_movements.SILO_MOVEMENTS, EXTRA_PORT)
    )
    monkeypatch.setattr(
        round_movements, "SEEDING_MOVEMENTS", (*round_movements.SEEDING_MOVEMENTS, EXTRA_SEED)
    )
    manifest = FederationManifest.parse(blueprint_outputs("eyes-off", 2))
    built = _built_ports(_agents_job(manifest, tmp_path))
    assert built == _declared_ports(manifest)
    for silo in manifest.silos:
        port = built[(silo_step_name(silo), "input", "silo_extra")]
        assert port["path"] == datastore_uri(silo.datastore, f"fl-sandbox/digits/{silo.name}-extra")
    records, outputs = run_of("eyes-off", 2)
    rows = _rows(job_path(graph(records, outputs)))
    for silo in manifest.silos:
        (extra,) = rows[(silo_step(silo.name), "read its extra features")]
        assert extra.ok and extra.role == ROLE_WORDS[BLOB_READ]
        assert f"datastore '{silo.datastore}'" in extra.target
        seeds = rows[(f"seed silo {silo.name}", f"upload silo {silo.name}'s extra features")]
        assert seeds and all(m.ok and m.role == ROLE_WORDS[BLOB_WRITE] for m in seeds)


def test_a_port_the_command_needs_cannot_be_left_out_of_the_declaration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The silo store is declared once; without it the agent's command has nothing to name."""
    kept = tuple(
        m for m in round_movements.SILO_MOVEMENTS if m.port is None or m.port.name != "silo_store"
    )
    monkeypatch.setattr(round_movements, "SILO_MOVEMENTS", kept)
    manifest = FederationManifest.parse(blueprint_outputs("minimal", 1))
    with pytest.raises(ValueError, match="silo_store"):
        _agents_job(manifest, tmp_path)
    records, outputs = run_of("minimal", 1)
    whats = {m.what for m in job_path(graph(records, outputs))}
    assert not any(w.startswith("keep its silo store") for w in whats)
