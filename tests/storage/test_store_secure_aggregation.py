"""Secure aggregation through the model store over Azurite: the silo agents and the
orchestrator run the protocol through blobs, the result equals the local engine's secure
run, no update leaves a silo, and a message that fails its checks is refused by name."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.local.federation import run_federation
from fl_jobs.local.prepare import prepare_job
from fl_jobs.local.secure_messages import (
    SECURE_REPLIES,
    SECURE_REQUESTS,
    ConsistencyRequest,
    KeysRequest,
    Refused,
)
from fl_jobs.rounds.federation_state import FederationState
from fl_jobs.secure_aggregation import SecureAggregationSession
from fl_jobs.silo.silo_store import LocalSiloStore, local_silo_store
from fl_jobs.store import layout
from fl_jobs.store import messages as msg
from fl_jobs.store.blobs import Blob
from fl_jobs.store.orchestrator import StoreOrchestrator
from fl_jobs.store.secure_relay import read_document, reply_document, request_document
from fl_jobs.store.silo import StoreSilo
from fl_jobs.store.silo_agent import run_silo_agent, silo_data
from tests.azurite import AzuriteServer, sas_store

SILOS = ["silo-0", "silo-1", "silo-2"]
CONTAINERS = [
    layout.GLOBAL_CONTAINER,
    layout.SIGNING_KEYS_CONTAINER,
    *map(layout.silo_container, SILOS),
]


def _run_over_store(
    azurite: AzuriteServer,
    root: Path,
    silos: list[str],
    *,
    local_stores: bool = False,
    **settings: object,
) -> tuple[str, FederationState]:
    """A job over the store, silo agents as threads with container-scoped SAS only: each
    silo writes its own container, reads ``global`` and writes ``signing-keys`` (where Azure
    narrows the write to its own blob by condition; a SAS cannot).
    ``local_stores``: each silo keeps its secret where the local engine's silo does."""
    containers = {layout.silo_container(s): s for s in silos}
    service = azurite.service_client()
    for name in [layout.GLOBAL_CONTAINER, layout.SIGNING_KEYS_CONTAINER, *containers]:
        if not service.get_container_client(name).exists():
            service.create_container(name)
    job = f"job-{uuid.uuid4().hex[:10]}"
    prepared = prepare_job(JobConfig(**settings, silos=len(silos), round_timeout=120))  # type: ignore[arg-type]
    orchestrator_store = sas_store(azurite, {"global": "racwdl", **dict.fromkeys(containers, "r")})
    errors: list[BaseException] = []

    def serve(index: int, silo: str) -> None:
        try:
            own_container = layout.silo_container(silo)
            grants = {"global": "rl", own_container: "racw", layout.SIGNING_KEYS_CONTAINER: "racwl"}
            store = sas_store(azurite, grants)
            data = silo_data(prepared, index, silo, root / silo, given=False)
            own = local_silo_store(silo) if local_stores else LocalSiloStore(root / "stores" / silo)
            transport = StoreSilo(store, job, silo, poll_max_s=0.5)
            run_silo_agent(prepared, transport, data, own, silos)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=(i, s)) for i, s in enumerate(silos)]
    for thread in threads:
        thread.start()
    said: list[str] = []
    state = StoreOrchestrator(
        prepared,
        job=job,
        store=orchestrator_store,
        silos=silos,
        out=root / "orchestrator",
        notify=said.append,
    ).run()
    # With a deadline the round says nothing while it polls (no line per poll).
    assert not [line for line in said if "still waiting" in line], said
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return job, state


def _equal_to_local(state: FederationState, root: Path, silos: int, **settings: object) -> None:
    local = run_federation(JobConfig(**settings, silos=silos, output_dir=root / "local"))  # type: ignore[arg-type]
    assert state.global_weights.keys() == local.final_weights.keys()
    for key, value in local.final_weights.items():
        assert torch.equal(state.global_weights[key], value), key


COMMON: dict[str, object] = {"example": "digits", "rounds": 2, "seed": 3, "epochs": 1}


def test_secure_aggregation_over_the_store_equals_the_local_engine(
    azurite: AzuriteServer, tmp_path: Path
) -> None:
    settings = {**COMMON, "secure_aggregation": True}
    job, state = _run_over_store(azurite, tmp_path, SILOS, **settings)
    assert state.round == 2
    for record in state.history:
        assert record.secure_aggregation is not None, record
        assert record.secure_aggregation["contributors"] == 3, record
        assert not record.rejected
    _equal_to_local(state, tmp_path, len(SILOS), **settings)
    # No update left a silo: each silo's round reply is a "trained" note without tensors.
    admin = sas_store(azurite, {c: "rl" for c in CONTAINERS})
    for silo in SILOS:
        blob = admin.read(layout.silo_container(silo), layout.update_blob(job, 1, 1))
        assert isinstance(blob, Blob)
        weights, head = msg.decode_tensors(blob.data, limit=1 << 20)
        assert head["kind"] == "trained" and weights == {}
    # Every step went through the store: requests in global, replies in each silo's container.
    requests = admin.list("global", layout.secagg_prefix(job, 1, 1))
    assert len(requests) == 5 * len(SILOS)  # keys, shares, masks, consistency, reveal
    keys = admin.list(layout.SIGNING_KEYS_CONTAINER, "")
    assert sorted(keys) == sorted(layout.signing_key_blob(s) for s in SILOS)


@pytest.mark.parametrize(
    "privacy",
    [
        {"dp_level": "silo", "dp_silo_clip": 1.0, "target_epsilon": 8.0},
        {
            "dp_level": "silo",
            "dp_silo_clip": 1.0,
            "target_epsilon": 8.0,
            "dp_silo_noise": "distributed",
            "secure_aggregation": True,
        },
    ],
    ids=["orchestrator-noise", "distributed-noise"],
)
def test_silo_level_dp_over_the_store_spends_what_the_local_engine_spends(
    azurite: AzuriteServer, tmp_path: Path, privacy: dict[str, object]
) -> None:
    """DP-FedAvg through the agents: each silo clips (and, distributed, noises from its own
    secret) its update and records the release in its own ledger before it leaves; the
    epsilon per round is the local engine's. With distributed noise every draw is the silos'
    (keyed by their secret, the global model and the round), so with the local silos'
    secrets the result is the local engine's bit for bit; the orchestrator's noise comes
    from its own run's secret, so there the weights differ by design."""
    silos = [f"silo-{i}" for i in range(5)]
    settings = {**COMMON, **privacy}
    distributed = privacy.get("dp_silo_noise") == "distributed"
    _, state = _run_over_store(azurite, tmp_path, silos, local_stores=distributed, **settings)
    assert state.round == 2
    local = run_federation(JobConfig(**settings, silos=5, output_dir=tmp_path / "local"))  # type: ignore[arg-type]
    spent = [r.silo_dp["epsilon"] for r in state.history if r.silo_dp is not None]
    assert spent == [r.silo_dp["epsilon"] for r in local.history if r.silo_dp is not None]
    assert len(spent) == 2 and spent[0] > 0
    same = all(torch.equal(state.global_weights[k], v) for k, v in local.final_weights.items())
    print(
        "DEBUG-R",
        [r.global_metrics for r in state.history],
        [r.global_metrics for r in local.history],
        [r.silo_dp for r in state.history],
        [r.silo_dp for r in local.history],
    )
    assert same == distributed
    if not distributed:  # the silos' ledgers, in their own stores, hold both rounds
        for silo in silos:
            ledger = [p for p in (tmp_path / "stores" / silo).iterdir() if "ledger" in p.name]
            assert ledger and all(p.stat().st_size > 0 for p in ledger), silo


def _session() -> SecureAggregationSession:
    return SecureAggregationSession("store:job-1", 1, SILOS)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda d: {**d, "step": 4}, "step 4, expected 3"),
        (lambda d: {**d, "writer": "silo-1"}, "writer 'silo-1', expected 'silo-0'"),
        (lambda d: {**d, "kind": "secagg-Pickle"}, "kind 'secagg-Pickle', expected one of"),
        (lambda d: {**d, "round": 2}, "round 2, expected 1"),
        (lambda d: {**d, "body": {**d["body"], "extra": 1}}, "unknown ['extra']"),
        (lambda d: {**d, "body": {"silo": "silo-0", "reason": 7}}, "reason must be a string"),
        (lambda d: {**d, "schema": "other"}, "schema 'other'"),
    ],
)
def test_a_secure_reply_that_fails_a_check_is_rejected_with_its_reason(
    tamper: object, reason: str
) -> None:
    raw = reply_document("job-1", 1, 1, 3, "silo-0", Refused("silo-0", "a-code"))
    assert read_document(
        raw, expected=SECURE_REPLIES, job="job-1", round=1, attempt=1, writer="silo-0", step=3
    ) == Refused("silo-0", "a-code")
    bad = json.dumps(tamper(json.loads(raw))).encode()  # type: ignore[operator]
    with pytest.raises(msg.MessageRejected, match=reason.replace("[", r"\[").replace("(", r"\(")):
        read_document(
            bad, expected=SECURE_REPLIES, job="job-1", round=1, attempt=1, writer="silo-0", step=3
        )


def test_a_request_for_another_silo_or_of_another_kind_is_refused() -> None:
    raw = request_document("job-1", 1, 1, 1, "silo-1", KeysRequest(_session()))
    common = {"job": "job-1", "round": 1, "attempt": 1, "writer": "orchestrator", "step": 1}
    got = read_document(raw, expected=SECURE_REQUESTS, to="silo-1", **common)  # type: ignore[arg-type]
    assert isinstance(got, KeysRequest) and got.session.digest == _session().digest
    with pytest.raises(msg.MessageRejected, match="addressed to 'silo-1', not 'silo-0'"):
        read_document(raw, expected=SECURE_REQUESTS, to="silo-0", **common)  # type: ignore[arg-type]
    with pytest.raises(msg.MessageRejected, match="expected one of secagg-ConsistencyRequest"):
        read_document(raw, expected=(ConsistencyRequest,), to="silo-1", **common)  # type: ignore[arg-type]
    # A session whose fields break the constructor's rules never becomes a session.
    doc = json.loads(raw)
    doc["body"]["session"]["threshold"] = 1
    with pytest.raises(msg.MessageRejected, match="threshold must be a whole number"):
        read_document(
            json.dumps(doc).encode(),
            expected=SECURE_REQUESTS,
            to="silo-1",
            **common,  # type: ignore[arg-type]
        )
    with pytest.raises(msg.MessageRejected, match="bytes, more than"):
        read_document(raw, expected=SECURE_REQUESTS, to="silo-1", limit=100, **common)  # type: ignore[arg-type]
