"""Agent processes over Azurite: a federation through the model store and its faults.

Every agent is a real ``fl-sandbox agent`` process authenticating with
``DefaultAzureCredential`` (a managed-identity endpoint on loopback) over HTTPS.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fl_jobs.store import layout
from tests.azurite import AzuriteServer
from tests.storage.agents import Federation, final_weights, run_local
from tests.storage.identity_endpoint import IdentityEndpoint, identity_endpoint  # noqa: F401

SILOS = ["silo-0", "silo-1", "silo-2"]


def _federation(
    root: Path, azurite: AzuriteServer, identity: IdentityEndpoint, **settings: object
) -> Federation:
    return Federation(root, azurite, identity, SILOS, {"seed": 7, **settings})


@pytest.fixture
def make(
    tmp_path: Path,
    azurite: AzuriteServer,
    identity_endpoint: IdentityEndpoint,  # noqa: F811
) -> Iterator:
    made: list[Federation] = []

    def build(**settings: object) -> Federation:
        fed = _federation(tmp_path / f"f{len(made)}", azurite, identity_endpoint, **settings)
        made.append(fed)
        return fed

    try:
        yield build
    finally:
        for fed in made:
            fed.stop_all()


def _rounds(fed: Federation, out: str = "orchestrator") -> list[dict]:
    return fed.rounds(out)


def _assert_equal_to_local(fed: Federation, out: str = "orchestrator") -> None:
    store_weights = final_weights(fed.root / out)
    local_weights = final_weights(run_local(fed.root, fed.job_file))
    assert store_weights.keys() == local_weights.keys()
    for key in local_weights:
        assert torch.equal(store_weights[key], local_weights[key]), key


def _finish(fed: Federation, orchestrator, silos) -> None:
    assert orchestrator.wait(timeout=300) == 0, fed.logs()
    for proc in silos:
        assert proc.wait(timeout=60) == 0, fed.logs()


@pytest.mark.parametrize("strategy", ["fedavg", "fedadam", "scaffold"])
def test_federation_over_the_store_equals_the_local_engine(make, strategy: str) -> None:
    fed = make(rounds=3, round_timeout=60, strategy=strategy)
    _finish(fed, fed.orchestrator(), [fed.silo(s) for s in SILOS])
    _assert_equal_to_local(fed)
    head = fed.head()
    assert head is not None and head["state"] == "finished" and head["complete"] == 3
    rounds = _rounds(fed)
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert all(r["store"]["requests"] > 0 and r["store"]["bytes_down"] > 0 for r in rounds)


def test_dp_sgd_over_the_store_equals_the_local_engine_with_silo_held_controls(
    make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The silo agent trains through the local worker's own silo side: DP-SGD's randomness
    from the silo's secret (in the store ``--silo-store`` names), each release in the silo's
    ledger before the update leaves, the metrics policy; the one round engine adds each
    silo's epsilon."""
    from fl_jobs.silo.silo_ledger import read_ledger
    from fl_jobs.silo.silo_store import local_silo_store

    fed = make(rounds=2, round_timeout=60, clip_norm=1.0, noise_multiplier=1.0)
    stores = fed.root / "silo-stores"
    silos = [fed.silo(s, "--silo-store", str(stores / s)) for s in SILOS]
    _finish(fed, fed.orchestrator(), silos)
    # The local run's silos keep the same secrets: the same stores.
    monkeypatch.setenv("FL_SANDBOX_SILO_STORE", str(stores))
    _assert_equal_to_local(fed)
    rounds = _rounds(fed)
    for silo in SILOS:
        epsilons = [r["silo_metrics"][silo]["epsilon"] for r in rounds]
        assert 0 < epsilons[0] < epsilons[1]  # spent grows round by round
        # The training loss stays in the silo (metrics policy "none" under DP).
        assert "train_loss" not in rounds[0]["silo_metrics"][silo]
        ledger = read_ledger(local_silo_store(silo, stores))
        mine = [e for e in ledger if e["run"] == f"store:{fed.job}"]
        assert [e["round"] for e in mine] == [1, 2]
        assert all(e["noise_multiplier"] == 1.0 for e in mine)


def test_a_killed_silo_is_left_out_at_the_deadline_and_rejoins(make) -> None:
    fed = make(rounds=10, round_timeout=10, min_silos=2)
    orchestrator = fed.orchestrator()
    silos = {s: fed.silo(s) for s in SILOS}
    fed.wait_for("round 1", lambda: (fed.head() or {}).get("complete", 0) >= 1)
    # Freeze silo-2, then kill it while a round it has not answered is open.
    silos["silo-2"].send_signal(signal.SIGSTOP)
    head = fed.head()
    assert head is not None
    open_round = head["round"]
    answered = fed.azurite.service_client().get_blob_client(
        layout.silo_container("silo-2"),
        layout.update_blob(fed.job, open_round, head["attempt"]),
    )
    if answered.exists():  # it replied before the freeze: the next round is the one it misses
        open_round += 1
        fed.wait_for(f"round {open_round}", lambda: (fed.head() or {})["round"] >= open_round)
    silos["silo-2"].kill()
    silos["silo-2"].wait(timeout=10)
    fed.wait_for(
        "silo-2 left out",
        lambda: any("silo-2" in r["dropped"] for r in _rounds(fed)),
    )
    dropped_in = next(r["round"] for r in _rounds(fed) if "silo-2" in r["dropped"])
    assert dropped_in == open_round
    assert "no answer within 10 s" in _rounds(fed)[dropped_in - 1]["dropped"]["silo-2"]
    restarted = fed.silo("silo-2")
    _finish(fed, orchestrator, [silos["silo-0"], silos["silo-1"], restarted])
    later = [r for r in _rounds(fed) if r["round"] > dropped_in and "silo-2" in r["silo_metrics"]]
    assert later, "silo-2 never rejoined"
    assert (fed.head() or {})["complete"] == 10


def test_a_killed_orchestrator_resumes_from_the_store_bit_identically(make) -> None:
    fed = make(rounds=6, round_timeout=60)
    first = fed.orchestrator()
    silos = [fed.silo(s) for s in SILOS]
    fed.wait_for("round 2", lambda: (fed.head() or {}).get("complete", 0) >= 2)
    first.kill()
    first.wait(timeout=10)
    done_before = (fed.head() or {})["complete"]
    assert done_before < 6, "the job finished before the kill; nothing to resume"
    second = fed.orchestrator()  # same --out folder: it renews its own lease at once
    _finish(fed, second, silos)
    assert f"resumed job {fed.job} after round" in fed.log("orchestrator")
    _assert_equal_to_local(fed)


def test_secure_aggregation_agents_survive_a_killed_orchestrator_and_a_killed_silo(
    make,
) -> None:
    """Real agent processes under secure aggregation: the orchestrator is SIGKILLed after
    round 2 and restarted (its sessions start at a new attempt number, so no silo sees a
    session twice), silo-2 is SIGKILLed and left out at the deadline while two silos (the
    floor) carry the round, then it rejoins; the job finishes with every silo's guard intact."""
    fed = make(rounds=6, round_timeout=10, min_silos=2, secure_aggregation="true")
    first = fed.orchestrator()
    silos = {s: fed.silo(s) for s in SILOS}
    fed.wait_for("round 2", lambda: (fed.head() or {}).get("complete", 0) >= 2)
    first.kill()
    first.wait(timeout=10)
    silos["silo-2"].kill()
    silos["silo-2"].wait(timeout=10)
    second = fed.orchestrator()
    fed.wait_for(
        "silo-2 left out",
        lambda: any("silo-2" in r["dropped"] for r in _rounds(fed)),
    )
    restarted = fed.silo("silo-2")
    _finish(fed, second, [silos["silo-0"], silos["silo-1"], restarted])
    rounds = _rounds(fed)
    assert [r["round"] for r in rounds][-1] == 6 and (fed.head() or {})["complete"] == 6
    assert all(r["secure_aggregation"] is not None for r in rounds)
    left_out = next(r for r in rounds if "silo-2" in r["dropped"])
    assert left_out["secure_aggregation"]["contributors"] == 2
    rejoined = [r for r in rounds if r["round"] > left_out["round"] and not r["dropped"]]
    assert rejoined and rejoined[-1]["secure_aggregation"]["contributors"] == 3
    assert f"resumed job {fed.job} after round" in fed.log("orchestrator")
    assert "Traceback" not in fed.logs()


def test_a_second_orchestrator_for_the_same_job_is_refused(make) -> None:
    fed = make(rounds=2, round_timeout=60)
    first = fed.orchestrator()
    fed.wait_for("round 1 announced", lambda: fed.head() is not None)
    second = fed.orchestrator(out="second")
    assert second.wait(timeout=120) == 2, fed.logs()
    line = fed.log("second").strip().splitlines()[-1]
    assert line.startswith(f"error: job {fed.job} is already driven by another orchestrator")
    assert not (fed.root / "second").exists()  # refused before it wrote anything
    assert first.poll() is None  # the first one is untouched
    silos = [fed.silo(s) for s in SILOS]
    _finish(fed, first, silos)


def test_the_agents_retry_through_a_storage_outage(
    tmp_path: Path,
    private_azurite: AzuriteServer,
    identity_endpoint: IdentityEndpoint,  # noqa: F811
) -> None:
    fed = _federation(tmp_path, private_azurite, identity_endpoint, rounds=3, round_timeout=120)
    try:
        orchestrator = fed.orchestrator()
        silos = [fed.silo(s) for s in SILOS[:2]]
        service = private_azurite.service_client()

        def replied(silo: str) -> bool:
            blob = layout.update_blob(fed.job, 1, 1)
            return service.get_blob_client(layout.silo_container(silo), blob).exists()

        # Round 1 is open and waits for silo-2: the endpoint goes away mid-round.
        fed.wait_for("round 1 answered by two silos", lambda: all(map(replied, SILOS[:2])))
        private_azurite.stop()
        silos.append(fed.silo("silo-2"))  # starts during the outage
        time.sleep(10)  # the scenario itself is a duration: the endpoint is away for 10 s
        private_azurite.start()
        _finish(fed, orchestrator, silos)
        assert "retrying" in fed.log("orchestrator")
        assert "retrying" in fed.log("silo-2")
        assert _rounds(fed)[0]["store"]["retries"] > 0
        assert not any(r["dropped"] or r["rejected"] for r in _rounds(fed))
        _assert_equal_to_local(fed)
    finally:
        fed.stop_all()
