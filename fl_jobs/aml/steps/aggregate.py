"""Azure ML step (orchestrator, every round): FedAvg over the silos' updates, then evaluation.

Updates are read one at a time and folded into the strategy's streaming mean, so the step holds
one model's worth of accumulators however many silos there are. Each update is validated
against the global model (keys, shapes, dtypes, finite values, positive sample count) before it
counts. Server optimiser state (FedAvgM's velocity) is carried to the next round in the new
global model folder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from fl_jobs.aml.steps.common import (
    METRICS_FILE,
    MODEL_FILE,
    SERVER_STATE_FILE,
    UPDATE_FILE,
    base_parser,
    example_for,
    load_config,
    log_round_metrics,
    write_json,
)
from fl_jobs.errors import FLJobError, ModelUpdateError


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("Aggregate one round of silo updates into the next global model.")
    parser.add_argument("--round", type=int, required=True, help="1-based round number")
    parser.add_argument("--global-model", type=Path, required=True, help="previous global model")
    parser.add_argument("--test-data", type=Path, required=True, help="orchestrator test set")
    parser.add_argument(
        "--update", type=Path, action="append", required=True, help="a silo's update folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="new global model folder")
    args = parser.parse_args(argv)
    if args.round < 1:
        parser.error("--round must be >= 1")
    try:
        import torch

        from fl_jobs.aml.steps.model_folder import module_for, read_global
        from fl_jobs.evaluation import evaluate
        from fl_jobs.model_io import load_weights, read_update, save_weights
        from fl_jobs.silo_data import read_silo_data
        from fl_jobs.strategies.fedavg import FedAvg
        from fl_jobs.training import LocalUpdate

        torch.set_num_threads(1)  # as the local federation's orchestrator (same test metrics)
        config = load_config(args.config)
        weights, meta = read_global(args.global_model, config)
        if meta["round"] != args.round - 1:
            raise ModelUpdateError(
                f"{args.global_model} is the global model of round {meta['round']}, but round "
                f"{args.round} must start from round {args.round - 1}"
            )
        strategy = FedAvg(server_lr=config.server_lr, server_momentum=config.server_momentum)
        state_file = args.global_model / SERVER_STATE_FILE
        if state_file.is_file():
            # FedAvg keeps its velocity in memory across rounds; this process lives one round.
            strategy.velocity, _ = load_weights(state_file)

        def updates() -> Iterator[LocalUpdate]:
            for folder in args.update:  # one at a time: the mean is streamed
                update_weights, update_meta = read_update(folder / UPDATE_FILE, weights)
                yield LocalUpdate(
                    weights=update_weights,
                    n_samples=int(update_meta["n_samples"]),
                    metrics=dict(update_meta.get("metrics") or {}),
                )

        new_weights = strategy.aggregate(weights, updates())
        test = read_silo_data(args.test_data)
        model = module_for(config, meta, new_weights)
        metrics = evaluate(model, test.X, test.y, example_for(config, meta["task"]))
        save_weights(args.out / MODEL_FILE, new_weights, meta={**meta, "round": args.round})
        if strategy.velocity:
            save_weights(args.out / SERVER_STATE_FILE, strategy.velocity)
        summary = {
            **metrics,
            "n_updates": strategy.last_round_updates,
            "n_samples": strategy.last_round_samples,
        }
        write_json(args.out / METRICS_FILE, {"round": args.round, **summary})
        log_round_metrics(args.round, metrics)
    except FLJobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
