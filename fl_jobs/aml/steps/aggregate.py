"""Azure ML step (orchestrator, every round): the job's strategy over the silos' updates, then
evaluation.

The strategy is built from the job config (``fl_jobs.strategies.registry``) and continues from
the state the previous round's step left in the global model folder (``server_state.pt``,
e.g. FedAvgM's velocity or FedAdam's moments); its new state goes into the new folder. Updates
are read one at a time, each validated against the global model (keys, shapes, dtypes, finite
values, positive sample count); an invalid update, or with norm screening one far above the
round's median norm, is rejected with its reason (logged, and in ``metrics.json``), and the
round goes on if at least ``min_silos`` updates remain. A mean strategy (FedAvg family) streams
them into one model's worth of accumulators; a robust one holds them (see docs/fl-jobs.md).

Exit codes: 0 done, 2 bad input (config, global model, strategy state), 3 the round lost its
quorum.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from fl_jobs.aml.steps.common import (
    METRICS_FILE,
    MODEL_FILE,
    SERVER_STATE_FILE,
    UPDATE_FILE,
    example_for,
    load_config,
    log_round_metrics,
    write_json,
)
from fl_jobs.aml.steps.entry import StepArgumentError, step
from fl_jobs.errors import ModelUpdateError


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--round", type=int, required=True, help="1-based round number")
    parser.add_argument("--global-model", type=Path, required=True, help="previous global model")
    parser.add_argument("--test-data", type=Path, required=True, help="orchestrator test set")
    parser.add_argument(
        "--update", type=Path, action="append", required=True, help="a silo's update folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="new global model folder")


@step("Aggregate one round of silo updates into the next global model.", arguments)
def main(args: argparse.Namespace) -> None:
    if args.round < 1:
        raise StepArgumentError("--round must be >= 1")

    import torch

    from fl_jobs.aml.steps.model_folder import module_for, read_global
    from fl_jobs.core.evaluation import evaluate
    from fl_jobs.core.model_io import read_update, save_weights
    from fl_jobs.core.screening import screen_norms
    from fl_jobs.core.silo_data import read_silo_data
    from fl_jobs.core.training import LocalUpdate
    from fl_jobs.local.round_ledger import RoundLedger
    from fl_jobs.rounds.job_parts import build_strategy
    from fl_jobs.strategies.registry import get_info
    from fl_jobs.strategies.state_file import load_strategy_state, save_strategy_state

    torch.set_num_threads(1)  # as the local federation's orchestrator (same test metrics)
    config = load_config(args.config)
    weights, meta = read_global(args.global_model, config)
    if meta["round"] != args.round - 1:
        raise ModelUpdateError(
            f"{args.global_model} is the global model of round {meta['round']}, but round "
            f"{args.round} must start from round {args.round - 1}"
        )
    strategy = build_strategy(config)
    # This process lives one round: the strategy continues from the previous step's state.
    load_strategy_state(args.global_model / SERVER_STATE_FILE, strategy, args.round - 1)
    # The local engine's quorum book: same formula (min_silos, the strategy's floor),
    # same messages; a rejection that breaks the quorum stops the step.
    ledger = RoundLedger(
        args.round,
        len(args.update),
        config.federation.min_silos,
        lambda line: print(line, file=sys.stderr),
        floor=get_info(config.strategy.name).min_updates(config.strategy.options),
        strategy=config.strategy.describe(),
    )
    rejected = ledger.rejected
    reject = ledger.reject
    counts = {"updates": 0, "samples": 0}

    def updates() -> Iterator[LocalUpdate]:
        for folder in args.update:  # one at a time: a mean strategy streams them
            try:
                update_weights, update_meta = read_update(folder / UPDATE_FILE, weights)
            except ModelUpdateError as exc:
                reject(str(folder), str(exc))
                continue
            yield LocalUpdate(
                weights=update_weights,
                n_samples=int(update_meta["n_samples"]),
                metrics=dict(update_meta.get("metrics") or {}),
                silo=str(update_meta.get("silo") or folder),
            )

    def counted(stream: Iterator[LocalUpdate]) -> Iterator[LocalUpdate]:
        for update in stream:  # what reaches the strategy, after screening
            counts["updates"] += 1
            counts["samples"] += update.n_samples
            yield update

    stream: Iterator[LocalUpdate] = updates()
    if config.screens_norms():
        stream = screen_norms(stream, weights, config.server.norm_limit, reject)
    new_weights = strategy.aggregate(args.round, weights, counted(stream))
    test = read_silo_data(args.test_data)
    model = module_for(config, meta, new_weights)
    metrics = evaluate(model, test.X, test.y, example_for(config, meta["task"]))
    save_weights(args.out / MODEL_FILE, new_weights, meta={**meta, "round": args.round})
    save_strategy_state(args.out / SERVER_STATE_FILE, strategy, args.round)
    summary = {
        **metrics,
        "n_updates": counts["updates"],
        "n_samples": counts["samples"],
        "rejected": rejected,
    }
    write_json(args.out / METRICS_FILE, {"round": args.round, **summary})
    log_round_metrics(args.round, metrics, counts={"silos_rejected": len(rejected)})


if __name__ == "__main__":
    sys.exit(main())
