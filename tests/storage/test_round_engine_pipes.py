"""The round engine's contract: driven by hand over the local worker pipes (``PipesServer``),
publishing the global model between rounds as the store orchestrator does, it ends
bit-identical to ``run_federation`` for the same job (which drives the same engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.seeds import derive_seed
from fl_jobs.core.torch_threads import single_threaded
from fl_jobs.local.federation import initial_model, initial_state, run_federation
from fl_jobs.local.pipes import PipesServer
from fl_jobs.local.prepare import prepare_job
from fl_jobs.local.worker_pool import WorkerPool
from fl_jobs.rounds.job_parts import build_strategy
from fl_jobs.rounds.round_engine import RoundEngine


@pytest.mark.parametrize("strategy", ["fedavg", "fedprox"])
def test_the_round_engine_driven_by_hand_equals_the_local_engine(
    tmp_path: Path, strategy: str
) -> None:
    config = JobConfig(
        example="digits", silos=3, rounds=3, seed=11, fraction=0.67, strategy=strategy
    )
    local = run_federation(config.with_settings(output_dir=str(tmp_path / "local")))

    prepared = prepare_job(config)
    with single_threaded():
        state = initial_state(prepared)
        model = initial_model(prepared)
        strategy_ = build_strategy(config)
        rng = np.random.default_rng(derive_seed(config.federation.seed, 0xC11E))
        pool = WorkerPool(prepared, tmp_path / "pipes" / "silos", None)
        pool.start()
        try:
            transport = PipesServer(pool, tmp_path / "pipes")
            driver = RoundEngine(prepared, transport, prepared.silo_names)
            transport.publish_global(0, state.global_weights)
            for rnd in range(1, config.federation.rounds + 1):
                state = driver.run(rnd, state, model, strategy_, rng)
                transport.publish_global(rnd, state.global_weights)
        finally:
            pool.stop(graceful=True)
    assert [r.selected for r in state.history] == [r.selected for r in local.history]
    for key, value in local.final_weights.items():
        assert torch.equal(state.global_weights[key], value), key
