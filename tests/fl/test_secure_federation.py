"""Secure aggregation in the local federation: real worker processes run the protocol, the
orchestrator reads no update, the result is plain FedAvg's within the fixed-point bound, and
a worker killed at each step of the protocol costs the round only what the docs say."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import load_weights
from fl_jobs.errors import QuorumLostError
from fl_jobs.local import secure_messages, worker
from fl_jobs.local.federation import FederationResult, run_federation
from fl_jobs.local.secure_messages import KeysRequest, MaskRequest, RevealRequest, SharesRequest
from fl_jobs.secure_aggregation import FixedPointCodec
from tests.fl.secagg_round import max_excess

COMMON: dict[str, Any] = {
    "example": "digits",
    "epochs": 1,
    "tracking": False,
    "baselines": False,
}


def run(tmp_path: Path, name: str, **settings: Any) -> FederationResult:
    config = JobConfig(**{**COMMON, **settings, "output_dir": tmp_path / name})
    return run_federation(config, keep_files=True)


def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> float:
    """The largest element difference (asserted below ``atol``)."""
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert worst < atol, worst
    return worst


def in_silo(silo: str) -> bool:
    """True inside the worker process of ``silo`` (workers are named ``fl-<silo>``)."""
    return multiprocessing.current_process().name == f"fl-{silo}"


def kill_at_step(monkeypatch: pytest.MonkeyPatch, step: type, silos: set[str], rnd: int) -> None:
    """The workers of ``silos`` die (SIGKILL) when asked for ``step`` in round ``rnd``; the
    patch is in place before the workers are forked, so they inherit it."""
    original = secure_messages.SecureSilo._step

    def step_or_die(self: secure_messages.SecureSilo, request: Any) -> Any:
        session = request.session if isinstance(request, KeysRequest) else None
        if session is None and self._client is not None:
            session = self._client.session
        if (
            isinstance(request, step)
            and session is not None
            and session.round == rnd
            and any(in_silo(s) for s in silos)
        ):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, request)

    monkeypatch.setattr(secure_messages.SecureSilo, "_step", step_or_die)


def kill_in_training(monkeypatch: pytest.MonkeyPatch, silos: set[str], rnd: int) -> None:
    """The plain-aggregation twin: the same workers die when they load round ``rnd``'s model."""
    original = worker.load_weights

    def load_or_die(path: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name == f"global_{rnd:04d}.pt" and any(in_silo(s) for s in silos):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(worker, "load_weights", load_or_die)


def test_secure_round_is_the_plain_weighted_mean_within_the_bound(tmp_path: Path) -> None:
    settings = {"silos": 5, "rounds": 1, "partition": "dirichlet:0.5"}
    plain = run(tmp_path, "plain", **settings)
    secure = run(tmp_path, "secure", secure_aggregation=True, **settings)

    # The plain run kept its round-1 update files: their exact float64 mean is the reference.
    updates, counts = {}, {}
    for path in sorted((tmp_path / "plain" / "updates" / "round_0001").glob("*.pt")):
        updates[path.stem], meta = load_weights(path)
        counts[path.stem] = int(meta["n_samples"])
    assert len(updates) == 5 and len(set(counts.values())) > 1  # unequal weights
    total = sum(counts.values())
    exact = {
        key: sum(counts[s] * updates[s][key].double().numpy() for s in updates) / total
        for key in secure.final_weights
    }
    bound = FixedPointCodec().error_bound(5, total)
    assert max_excess(secure.final_weights, exact, bound) <= 0
    close(secure.final_weights, plain.final_weights, atol=1e-6)

    # The orchestrator never had an update to read: no update file was written.
    assert not any((tmp_path / "secure" / "updates").rglob("*.pt"))
    record = secure.history[0]
    assert record.secure_aggregation == {"attempts": 1, "contributors": 5, "recovered": []}
    # The train loss stays in the silos under secure aggregation (--silo-metrics none), and
    # so does each silo's sample count (masked in its vector: only the total is unmasked).
    assert set(plain.history[0].silo_metrics["silo-0"]) >= {"samples", "train_loss"}
    assert record.silo_metrics == {s: {} for s in plain.history[0].silo_metrics}


def test_server_optimiser_over_secure_sums_tracks_plain_fedadam(tmp_path: Path) -> None:
    settings = {
        "silos": 4,
        "rounds": 4,
        "fraction": 0.75,
        "strategy": {"name": "fedadam", "eta": 0.03},
    }
    plain = run(tmp_path, "plain", **settings)
    secure = run(tmp_path, "secure", secure_aggregation=True, **settings)
    assert [r.selected for r in secure.history] == [r.selected for r in plain.history]
    close(secure.final_weights, plain.final_weights, atol=1e-4)
    assert secure.final_metrics["accuracy"] == pytest.approx(
        plain.final_metrics["accuracy"], abs=0.01
    )
    assert secure.strategy == "FedAdam + secure aggregation"


@pytest.mark.parametrize(
    ("step", "attempts", "recovered"),
    [(KeysRequest, 2, []), (SharesRequest, 2, []), (MaskRequest, 1, ["silo-1"])],
    ids=["before-keys", "before-shares", "after-shares"],
)
def test_a_silo_lost_before_its_update_counts_as_left_out(
    step: type,
    attempts: int,
    recovered: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {"silos": 4, "rounds": 3, "min_silos": 2}
    with monkeypatch.context() as patch:
        kill_in_training(patch, {"silo-1"}, 2)
        plain = run(tmp_path, "plain", **settings)
    kill_at_step(monkeypatch, step, {"silo-1"}, 2)
    secure = run(tmp_path, "secure", secure_aggregation=True, **settings)

    record = secure.history[1]
    assert record.dropped == {"silo-1": "worker died (killed by SIGKILL)"}
    assert record.secure_aggregation == {
        "attempts": attempts,
        "contributors": 3,
        "recovered": recovered,
    }
    assert plain.history[1].dropped == record.dropped
    # Round 2 is the mean of the three others; silo-1 is restarted and rejoins in round 3.
    assert secure.history[2].secure_aggregation == {
        "attempts": 1,
        "contributors": 4,
        "recovered": [],
    }
    close(secure.final_weights, plain.final_weights, atol=1e-5)


def test_a_silo_lost_after_its_masked_update_still_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"silos": 4, "rounds": 3, "min_silos": 3}
    plain = run(tmp_path, "plain", **settings)
    kill_at_step(monkeypatch, RevealRequest, {"silo-2"}, 2)
    secure = run(tmp_path, "secure", secure_aggregation=True, **settings)
    record = secure.history[1]
    assert record.dropped == {"silo-2": "worker died (killed by SIGKILL)"}
    assert record.secure_aggregation == {"attempts": 1, "contributors": 4, "recovered": []}
    close(secure.final_weights, plain.final_weights, atol=1e-5)  # its update is in


def test_too_few_reveals_stop_the_round_instead_of_shrinking_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three of five silos die while revealing: the round is not redone over the two left
    (the sum of two, next to the sum of five, would be the redo-differencing attack); it
    stops below the silos' floor, a majority of the cohort."""
    settings = {"silos": 5, "rounds": 2, "min_silos": 2}
    gone = {"silo-0", "silo-2", "silo-4"}
    kill_at_step(monkeypatch, RevealRequest, gone, 2)
    config = JobConfig(
        **COMMON, **settings, secure_aggregation=True, output_dir=tmp_path / "secure"
    )
    with pytest.raises(QuorumLostError, match=r"needs at least 3 silos \(a majority"):
        run_federation(config)


def test_losing_the_quorum_in_a_secure_step_stops_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_at_step(monkeypatch, MaskRequest, {"silo-0", "silo-1"}, 1)
    config = JobConfig(
        **COMMON, silos=3, rounds=2, secure_aggregation=True, output_dir=tmp_path / "run"
    )
    with pytest.raises(QuorumLostError, match="round 1 lost its quorum: at most 2 of 3"):
        run_federation(config)


def test_a_weight_beyond_the_clip_is_refused_by_the_silos(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "3", "--rounds", "2", "--epochs", "1",
         "--no-baselines", "--no-tracking", "--secure-aggregation",
         "--secure-aggregation-clip", "0.05", "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "round 1 lost its quorum" in result.output
    assert "update-not-encodable: a weight is beyond the secure-aggregation clip" in result.output
    assert " holds " not in result.output  # no weight value nor tensor name leaves the silo


def test_secure_run_resumes_bit_identically(tmp_path: Path) -> None:
    args = ["--example", "digits", "--silos", "3", "--epochs", "1", "--server-momentum", "0.9",
            "--secure-aggregation", "--no-baselines", "--no-tracking"]  # fmt: skip
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["run", *args, "--rounds", "2", "--output-dir", str(out)])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--rounds", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after round 2" in resumed.output
    final, _ = load_weights(out / "global_model.pt")
    clean = run(
        tmp_path, "clean", silos=3, rounds=3, server_momentum=0.9, secure_aggregation=True
    ).final_weights
    assert all(torch.equal(final[k], clean[k]) for k in clean)
    summary = (out / "summary.json").read_text()
    assert '"secure_aggregation": {' in summary


def test_masked_updates_differ_from_run_to_run_but_results_do_not(tmp_path: Path) -> None:
    """Fresh keys every session: two runs with the same seed mask differently (the
    orchestrator cannot link them) and decode the same integers to the same weights."""
    seen: list[np.ndarray] = []
    original = secure_messages.SecureSilo._step

    def record(self: secure_messages.SecureSilo, request: Any) -> Any:
        reply = original(self, request)
        if isinstance(request, MaskRequest) and self.silo == "silo-0":
            path = Path(os.environ["SECAGG_SEEN"]) / f"{os.getpid()}.npy"
            np.save(path, reply.vector[:64])
        return reply

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(secure_messages.SecureSilo, "_step", record)
        patch.setenv("SECAGG_SEEN", str(tmp_path))
        a = run(tmp_path, "a", silos=3, rounds=1, secure_aggregation=True)
        b = run(tmp_path, "b", silos=3, rounds=1, secure_aggregation=True)
    seen = [np.load(p) for p in sorted(tmp_path.glob("*.npy"))]
    assert len(seen) == 2 and not np.array_equal(seen[0], seen[1])
    assert all(torch.equal(a.final_weights[k], b.final_weights[k]) for k in a.final_weights)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"silos": 2, "fraction": 0.5}, "needs at least 2 silos a round, but 1 trains"),
        ({"silos": 3, "min_silos": 1}, "set min_silos to 2 or more with secure_aggregation"),
        ({"silos": 3, "screen_norms": True}, "screen_norms cannot run with secure_aggregation"),
        ({"silos": 6, "strategy": {"name": "krum"}}, "cannot be combined with strategy krum"),
        ({"silos": 3, "secure_aggregation_clip": 0}, "greater than 0"),
        ({"silos": 3, "secure_aggregation_weights": "counts"}, "'samples' or 'equal'"),
    ],
)
def test_settings_secure_aggregation_cannot_run_are_refused(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        JobConfig(example="digits", secure_aggregation=True, **settings)


def test_equal_weights_without_secure_aggregation_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="add --secure-aggregation, or drop"):
        JobConfig(example="digits", silos=3, secure_aggregation_weights="equal")


def test_a_sum_that_could_overflow_is_refused_before_training(tmp_path: Path) -> None:
    config = JobConfig(
        **COMMON,
        silos=3,
        rounds=1,
        secure_aggregation=True,
        secure_aggregation_clip=2.0**40,
        output_dir=tmp_path / "run",
    )
    with pytest.raises(ValueError, match="secure aggregation could overflow"):
        run_federation(config)
    assert not (tmp_path / "run" / "silos").exists()


def test_mlflow_records_the_secure_rounds(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "3", "--rounds", "2", "--epochs", "1",
         "--no-baselines", "--secure-aggregation", "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "federated (FedAvg + secure aggregation)" in result.output
    summary = json.loads((out / "summary.json").read_text())
    client = MlflowClient(tracking_uri=summary["artifacts"]["mlflow_tracking_uri"])
    run_id = summary["artifacts"]["mlflow_run_id"]
    assert client.get_run(run_id).data.params["secure_aggregation"] == "True"
    attempts = client.get_metric_history(run_id, "secure_aggregation_attempts")
    assert sorted((m.step, m.value) for m in attempts) == [(1, 1.0), (2, 1.0)]
    assert [r["secure_aggregation"]["contributors"] for r in summary["history"]] == [3, 3]


def test_a_secure_quorum_loss_names_the_fix_that_can_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below secure aggregation's floor (a majority of the cohort, enforced by the silos) no
    --min-silos helps, so the stop line must not advise lowering it."""
    kill_at_step(monkeypatch, MaskRequest, {"silo-0", "silo-2", "silo-4"}, 1)
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "5", "--rounds", "2", "--epochs", "1",
         "--min-silos", "2", "--no-baselines", "--no-tracking", "--secure-aggregation",
         "--output-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "secure aggregation needs at least 3 silos (a majority" in result.output
    assert "a lower --min-silos cannot help" in result.output
    assert "or lower --min-silos" not in result.output


def test_a_plain_quorum_loss_says_how_far_min_silos_could_go() -> None:
    from fl_jobs.local.round_ledger import RoundLedger

    ledger = RoundLedger(1, 5, 4, None)
    ledger.drop("silo-0", "worker died")
    with pytest.raises(QuorumLostError) as lost:
        ledger.drop("silo-1", "worker died")
    assert lost.value.fix == "or lower --min-silos to at most 3"
    krum = RoundLedger(1, 5, 5, None, floor=5, strategy="krum")
    with pytest.raises(QuorumLostError) as lost:
        krum.drop("silo-0", "worker died")
    assert "--min-silos" not in (lost.value.fix or "")
    secure = RoundLedger(1, 5, 4, None, secure_floor=3)
    secure.drop("silo-0", "worker died")
    with pytest.raises(QuorumLostError) as lost:
        secure.drop("silo-1", "worker died")
    assert lost.value.fix == "or lower --min-silos to at most 3"  # 3 >= the secure floor


def test_train_settings_chosen_per_silo_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An orchestrator that sends every silo but silo-0 a huge proximal term (their updates
    stay at the global model it knows, so the sum gives silo-0's) is refused by the silos,
    which derive the round's settings from their own strategy; the run stops with the code."""
    from fl_jobs.strategies.fedprox import FedProx

    honest = FedProx.silo_config

    def rigged(self: FedProx, round: int, silo: str) -> dict[str, float]:
        if multiprocessing.current_process().name == "MainProcess" and silo != "silo-0":
            return {"proximal_mu": 1e6}
        return honest(self, round, silo)

    monkeypatch.setattr(FedProx, "silo_config", rigged)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "3", "--rounds", "1", "--epochs", "1",
         "--strategy", "fedprox", "--secure-aggregation", "--no-baselines", "--no-tracking",
         "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert "train-settings-not-own" in result.output


def test_a_new_run_in_a_deleted_run_folder_is_a_new_run_for_the_silos(tmp_path: Path) -> None:
    """The silos remember every session they unmasked; a run started again in the same
    folder (deleted first) gets a new identity, so its sessions are new, while a resume of
    one run keeps it (``run-id.json``)."""
    import shutil

    from fl_jobs.local.run_identity import RUN_ID_FILE

    first = run(tmp_path, "run", silos=3, rounds=1, secure_aggregation=True)
    identity = (tmp_path / "run" / RUN_ID_FILE).read_text()
    shutil.rmtree(tmp_path / "run")
    again = run(tmp_path, "run", silos=3, rounds=1, secure_aggregation=True)
    assert (tmp_path / "run" / RUN_ID_FILE).read_text() != identity
    assert all(torch.equal(first.final_weights[k], v) for k, v in again.final_weights.items())
    assert again.history[0].secure_aggregation is not None


def test_a_rerun_that_loses_a_silo_where_an_earlier_run_did_not_says_why_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seed trains the same updates; the silos revealed round 2's over four silos in
    the first run, so in a rerun that loses silo-3 there they refuse to reveal it over three
    (what an orchestrator redoing the job to subtract would ask). The stop says so, and that
    another --seed (or the missing silo back) is the way on."""
    settings = {"silos": 4, "rounds": 2, "min_silos": 3, "secure_aggregation": True}
    run(tmp_path, "first", **settings)
    kill_at_step(monkeypatch, KeysRequest, {"silo-3"}, 2)
    with pytest.raises(QuorumLostError) as stopped:
        run(tmp_path, "again", **settings)
    assert "unmasked this round's update before over more silos" in str(stopped.value)
    assert "update-already-unmasked" in str(stopped.value)
    assert "another --seed" in stopped.value.fix
    monkeypatch.undo()
    other = run(tmp_path, "other-seed", **settings, seed=1)  # another seed: other updates
    assert len(other.history) == 2
