"""Asynchronous rounds (FedBuff) with real agent processes over Azurite.

Each fold is checked against the store's own artifacts, read back with the message decoder:
the published model of version v + 1 is the fold of the updates the record names (each from
its silo's container, each against the model version it trained from) under FedAvg's step.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fl_jobs.rounds.fedbuff import Buffered, fold
from fl_jobs.store import layout
from fl_jobs.store import messages as msg
from tests.azurite import AzuriteServer
from tests.storage.agents import Federation
from tests.storage.identity_endpoint import IdentityEndpoint, identity_endpoint  # noqa: F401

SILOS = ["silo-0", "silo-1", "silo-2"]
ORDER = {s: i for i, s in enumerate(SILOS)}


@pytest.fixture
def make(
    tmp_path: Path,
    azurite: AzuriteServer,
    identity_endpoint: IdentityEndpoint,  # noqa: F811
) -> Iterator:
    made: list[Federation] = []

    def build(**settings: object) -> Federation:
        fed = Federation(
            tmp_path / f"f{len(made)}",
            azurite,
            identity_endpoint,
            SILOS,
            {"seed": 7, "async_buffer": 2, **settings},
        )
        made.append(fed)
        return fed

    try:
        yield build
    finally:
        for fed in made:
            fed.stop_all()


def _tensors(fed: Federation, container: str, name: str) -> dict[str, torch.Tensor]:
    client = fed.azurite.service_client().get_blob_client(container, name)
    weights, _ = msg.decode_tensors(client.download_blob().readall(), limit=1 << 30)
    return weights


def _assert_folds_match_the_store(fed: Federation, records: list[dict]) -> None:
    for record in records:
        v = record["round"] - 1
        updates = record["asynchronous"]["updates"]
        models = {
            u["base"]: _tensors(fed, layout.GLOBAL_CONTAINER, layout.model_blob(fed.job, u["base"]))
            for u in updates.values()
        }
        current = _tensors(fed, layout.GLOBAL_CONTAINER, layout.model_blob(fed.job, v))
        buffered = [
            Buffered(
                silo,
                _tensors(
                    fed, layout.silo_container(silo), layout.update_blob(fed.job, u["task"], 1)
                ),
                u["base"],
            )
            for silo, u in updates.items()
        ]
        assert all(u["staleness"] == v - u["base"] for u in updates.values())
        expected = fold(v, current, buffered, {**models, v: current}, ORDER).weights
        published = _tensors(fed, layout.GLOBAL_CONTAINER, layout.model_blob(fed.job, v + 1))
        for key in expected:  # FedAvg with server_lr 1: the new model is the fold's mean
            assert torch.equal(published[key], expected[key]), (record["round"], key)


def test_a_frozen_silo_does_not_hold_the_folds_and_its_late_update_counts_less(make) -> None:
    fed = make(rounds=8)
    orchestrator = fed.orchestrator()
    silos = {s: fed.silo(s) for s in SILOS}
    # silo-2 freezes before its first task is answered: the other two carry the folds.
    fed.wait_for("silo-2's first task", lambda: "silo-2" in ((fed.head() or {}).get("open") or {}))
    silos["silo-2"].send_signal(signal.SIGSTOP)
    first_task = (fed.head() or {})["open"]["silo-2"]
    answered = fed.azurite.service_client().get_blob_client(
        layout.silo_container("silo-2"), layout.update_blob(fed.job, first_task, 1)
    )
    if answered.exists():
        pytest.skip("silo-2 answered before the freeze")  # not seen on 2 cores; see the log
    fed.wait_for("three folds without silo-2", lambda: len(fed.rounds()) >= 3)
    assert all("silo-2" not in r["selected"] for r in fed.rounds())
    silos["silo-2"].send_signal(signal.SIGCONT)
    assert orchestrator.wait(timeout=300) == 0, fed.logs()
    late = [
        r["asynchronous"]["updates"]["silo-2"]
        for r in fed.rounds()
        if "silo-2" in r["asynchronous"]["updates"]
    ]
    assert late and late[0]["task"] == first_task and late[0]["base"] == 0
    assert late[0]["staleness"] >= 3  # folded at version 3 or later, from version 0
    _assert_folds_match_the_store(fed, fed.rounds())


def test_a_restarted_orchestrator_goes_on_with_new_task_numbers_and_every_fold_is_the_stores(
    make,
) -> None:
    fed = make(rounds=6, round_timeout=60)
    first = fed.orchestrator()
    silos = [fed.silo(s) for s in SILOS]
    fed.wait_for("fold 2", lambda: (fed.head() or {}).get("complete", 0) >= 2)
    first.kill()
    first.wait(timeout=10)
    assert len(fed.rounds()) < 6, "the job finished before the kill; nothing to resume"
    second = fed.orchestrator()
    assert second.wait(timeout=300) == 0, fed.logs()
    for proc in silos:
        assert proc.wait(timeout=60) == 0, fed.logs()
    assert f"resumed job {fed.job} after round" in fed.log("orchestrator")
    records = fed.rounds()
    assert [r["round"] for r in records][-1] == 6
    by_round = {r["round"]: r for r in records}  # a fold redone after the kill: the last line
    folds = [by_round[n] for n in sorted(by_round)]
    assert [r["round"] for r in folds] == [1, 2, 3, 4, 5, 6]
    for record in folds:
        assert len(record["selected"]) == 2 and record["asynchronous"]["buffer"] == 2
    tasks = [u["task"] for r in folds for u in r["asynchronous"]["updates"].values()]
    assert len(tasks) == len(set(tasks)), "a task was folded twice"
    _assert_folds_match_the_store(fed, folds)
    head = fed.head()
    assert head is not None and head["state"] == "finished" and head["complete"] == 6
