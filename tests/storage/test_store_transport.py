"""The store transport in-process over Azurite: conditional writes, planted messages refused
with their reason, and a whole federation run with container-scoped SAS tokens only (the
stand-in for RBAC: a silo provably needs nothing beyond its own container and read on
``global``)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from fl_jobs.config import JobConfig
from fl_jobs.local.prepare import prepare_job
from fl_jobs.store import layout
from fl_jobs.store import messages as msg
from fl_jobs.store.blobs import NOT_MODIFIED, AlreadyWritten, Blob, Conflict, Store
from fl_jobs.store.lease import LEASE_SECONDS, JobLease, JobLocked
from fl_jobs.store.orchestrator import StoreOrchestrator
from fl_jobs.store.server import StoreServer
from fl_jobs.store.silo import StoreSilo
from fl_jobs.store.silo_agent import run_silo_agent, silo_data
from fl_jobs.store.transport import Rejected, TrainResult, TrainTask
from tests.azurite import AzuriteServer, sas_store

SILOS = ["silo-0", "silo-1", "silo-2"]
CONTAINERS = [layout.GLOBAL_CONTAINER, *map(layout.silo_container, SILOS)]


def _admin_store(azurite: AzuriteServer) -> Store:
    service = azurite.service_client()
    for name in CONTAINERS:
        if not service.get_container_client(name).exists():
            service.create_container(name)
    return Store.connect(
        azurite.account_url,
        azurite.credential(),
        CONTAINERS,
        connection_verify=str(azurite.ca_path),
    )


def _job() -> str:
    return f"job-{uuid.uuid4().hex[:10]}"


def test_create_never_replaces_a_finished_result(azurite: AzuriteServer) -> None:
    store = _admin_store(azurite)
    name = f"{_job()}/rounds/r000001/a01/update.safetensors"
    etag = store.create("silo-silo-0", name, b"first")
    assert store.create("silo-silo-0", name, b"first") == etag  # a retry of the same write
    with pytest.raises(AlreadyWritten):
        store.create("silo-silo-0", name, b"second")
    blob = store.read("silo-silo-0", name)
    assert isinstance(blob, Blob) and blob.data == b"first"
    head = f"{_job()}/head.json"
    first = store.replace("global", head, b"1", etag=None)
    second = store.replace("global", head, b"2", etag=first)
    with pytest.raises(Conflict):
        store.replace("global", head, b"3", etag=first)  # a stale writer loses
    assert store.read("global", head, etag=second) is NOT_MODIFIED  # 304: unchanged


def test_planted_messages_are_rejected_with_their_reason(
    azurite: AzuriteServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = _admin_store(azurite)
    job = _job()
    weights = {"w": torch.zeros(4, 3), "b": torch.zeros(3)}
    server = StoreServer(store, job, SILOS)
    server.publish_global(0, weights)
    server.send_round(1, [TrainTask(s, 1, seed=i) for i, s in enumerate(SILOS)])
    attempt = server.attempt

    def update(writer: str, round: int) -> bytes:
        head = msg.header("update", job, round, attempt, writer, n_samples=5, metrics={})
        return msg.encode_tensors(weights, head)

    path = layout.update_blob(job, 1, attempt)
    store.create("silo-silo-0", path, update("silo-1", 1))  # another silo's name
    store.create("silo-silo-1", path, update("silo-1", 0))  # a stale round
    store.create("silo-silo-2", path, b"\x00garbage")  # garbage bytes
    with caplog.at_level(logging.WARNING, logger="fl_jobs.store"):
        replies = dict(server.replies(1, SILOS, {}, timeout=30, template=weights))
    assert replies == {
        "silo-0": Rejected(
            "silo-0", "writer 'silo-1', expected 'silo-0' (written for another silo)"
        ),
        "silo-1": Rejected("silo-1", "round 0 (stale), expected 1"),
        "silo-2": Rejected("silo-2", "not a safetensors message (its header runs past the end)"),
    }
    assert len(server.rejections) == 3
    assert "rejected a message from silo-2" in caplog.text
    # Oversized (only the first limit + 1 bytes are fetched) and empty blobs.
    server.send_round(1, [TrainTask(s, 1, seed=0) for s in SILOS[:2]])
    path = layout.update_blob(job, 1, server.attempt)
    store.create("silo-silo-0", path, b"\0" * (msg.tensor_limit(weights) + 1))
    store.create("silo-silo-1", path, b"")
    before = store.cost.bytes_down
    replies = dict(server.replies(1, SILOS[:2], {}, timeout=30, template=weights))
    assert store.cost.bytes_down - before <= msg.tensor_limit(weights) + 1
    assert replies["silo-0"].reason.startswith(f"{msg.tensor_limit(weights) + 1} bytes, more than")
    assert replies["silo-1"] == Rejected("silo-1", "0 bytes, not a safetensors message")
    # The orchestrator goes on: the next attempt's honest reply is accepted.
    server.send_round(1, [TrainTask("silo-0", 1, seed=0)])
    head = msg.header("update", job, 1, server.attempt, "silo-0", n_samples=5, metrics={})
    store.create(
        "silo-silo-0", layout.update_blob(job, 1, server.attempt), msg.encode_tensors(weights, head)
    )
    [(silo, reply)] = list(server.replies(1, ["silo-0"], {}, timeout=30, template=weights))
    assert silo == "silo-0" and isinstance(reply, TrainResult) and reply.n_samples == 5


def test_a_federation_runs_with_container_scoped_access_only(
    azurite: AzuriteServer, tmp_path: Path
) -> None:
    _admin_store(azurite)
    job = _job()
    config = JobConfig(example="digits", silos=3, rounds=2, seed=3, round_timeout=120)
    prepared = prepare_job(config)
    # The orchestrator: writes global (lease included), reads the silos' containers.
    orchestrator_store = sas_store(
        azurite, {"global": "racwdl", **{layout.silo_container(s): "r" for s in SILOS}}
    )
    silo_stores = {
        s: sas_store(azurite, {"global": "r", layout.silo_container(s): "racw"}) for s in SILOS
    }
    errors: list[BaseException] = []

    def serve(index: int, silo: str) -> None:
        try:
            data = silo_data(prepared, index, silo, tmp_path / silo, given=False)
            run_silo_agent(prepared, StoreSilo(silo_stores[silo], job, silo), data)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=(i, s)) for i, s in enumerate(SILOS)]
    for thread in threads:
        thread.start()
    state = StoreOrchestrator(
        prepared, job=job, store=orchestrator_store, silos=SILOS, out=tmp_path / "orchestrator"
    ).run()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert state.round == 2
    assert all(len(r.silo_metrics) == 3 and not r.rejected for r in state.history)
    # And the scope is real: a silo can neither write global nor touch another silo.
    mine = silo_stores["silo-0"]
    with pytest.raises(HttpResponseError) as refused:
        mine.containers["global"].upload_blob(f"{job}/head.json", b"{}", overwrite=True)
    assert refused.value.status_code == 403
    other = ContainerClient(
        azurite.account_url,
        layout.silo_container("silo-1"),
        credential=azurite.container_sas(layout.silo_container("silo-0"), "racw"),
        connection_verify=str(azurite.ca_path),
    )
    with pytest.raises(HttpResponseError) as refused:
        other.upload_blob(f"{job}/x", b"x")
    assert refused.value.status_code == 403


def test_a_silo_trains_on_its_own_data_folder(tmp_path: Path) -> None:
    """``--data``: a silo data folder is read as it is (here: written from the partition)."""
    prepared = prepare_job(JobConfig(example="digits", silos=3, rounds=1, seed=3))
    derived = silo_data(prepared, 1, "silo-1", tmp_path / "derived", given=False)
    given = silo_data(prepared, 0, "silo-1", tmp_path / "derived", given=True)
    assert (given.X == derived.X).all() and (given.y == derived.y).all()
    assert given.n_samples == len(prepared.partitions[1])


def test_a_restarted_silo_never_redoes_or_replaces_a_finished_reply(azurite: AzuriteServer) -> None:
    store = _admin_store(azurite)
    job = _job()
    weights = {"w": torch.zeros(4, 3), "b": torch.zeros(3)}
    server = StoreServer(store, job, SILOS)
    server.publish_global(0, weights)
    server.send_round(1, [TrainTask("silo-0", 1, seed=5)])
    first = StoreSilo(store, job, "silo-0")
    task = first.next_task()
    assert task is not None and (task.round, task.seed) == (1, 5)
    first.reply(task, first.global_weights(task), 7, {"train_loss": 0.5})
    name = layout.update_blob(job, 1, task.attempt)
    sent = store.read("silo-silo-0", name)
    assert isinstance(sent, Blob)

    restarted = StoreSilo(store, job, "silo-0")  # a new agent process: it remembers nothing
    found: list[TrainTask | None] = []
    waiting = threading.Thread(target=lambda: found.append(restarted.next_task()))
    waiting.start()
    deadline = time.monotonic() + 60
    while (1, task.attempt) not in restarted.handled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (1, task.attempt) in restarted.handled and not found  # looked at round 1, skipped it
    # A late reply to the same attempt (e.g. the killed agent's twin) keeps the first one.
    restarted.reply(task, {k: v + 1 for k, v in weights.items()}, 9, {})
    again = store.read("silo-silo-0", name)
    assert isinstance(again, Blob) and again.data == sent.data
    server.publish_global(1, weights)
    server.send_round(2, [TrainTask("silo-0", 2, seed=6)])
    waiting.join(timeout=60)
    assert found and found[0] is not None and (found[0].round, found[0].seed) == (2, 6)


def test_the_job_lease_refuses_a_second_holder_until_the_first_one_dies(
    azurite: AzuriteServer, tmp_path: Path
) -> None:
    store = _admin_store(azurite)
    job = _job()
    shortest = 15  # Azure's shortest lease; the agents hold LEASE_SECONDS
    first = JobLease(store, job, tmp_path / "first" / "lease-id", seconds=shortest)
    first.acquire()
    with pytest.raises(JobLocked, match=f"job {job} is already driven by another orchestrator"):
        JobLease(store, job, tmp_path / "second" / "lease-id").acquire()
    # The same orchestrator restarted (its lease id in its folder) takes over at once.
    first._stop.set()  # it "dies": no more renewals, no release
    again = JobLease(store, job, tmp_path / "first" / "lease-id", seconds=shortest)
    again.acquire()
    again._stop.set()
    # Another one gets the job once the lease has expired (not renewed).
    second = JobLease(store, job, tmp_path / "second" / "lease-id")
    started = time.monotonic()
    deadline = started + shortest * 3
    while True:
        try:
            second.acquire()
            break
        except JobLocked:
            assert time.monotonic() < deadline, "the lease never expired"
            time.sleep(1)
    second.release()
    assert not (tmp_path / "second" / "lease-id").exists()
    assert time.monotonic() - started >= shortest - 2  # it waited for the expiry, not less
    with pytest.raises(ValueError, match="15 to 60 s"):
        JobLease(store, job, tmp_path / "x", seconds=10)
    assert LEASE_SECONDS == 30
