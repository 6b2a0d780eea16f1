"""Azure ML step (silo, every round): local training from the current global model.

Runs on the silo's compute. Reads the global model (model store) and the silo's prepared data
(silo datastore); writes only the update folder (weights, sample count, metrics) to the
silo's own path in the model store. ``--train-config`` carries the strategy's settings for this
silo and round (e.g. FedProx's ``proximal_mu=0.01``), as the local worker's train request does.
With DP-SGD the step also reports the epsilon the silo has spent after this round: every round
of an Azure ML job trains every silo (a failed step stops the job), so that is this round's
steps times the round number.

DP-SGD's noise and Poisson sampling come from the silo's own secret (fl_jobs.silo.silo_secret),
kept in ``--silo-store``: a folder of the silo's own datastore that only the silo's compute
writes (the pipeline mounts ``fl-sandbox/silo-store`` of the silo's datastore there), not from
the job seed, which the orchestrator knows. Each release goes into the silo's ledger in the
same folder before the update is written, and a budget its operator set there is enforced,
as in the local engine. ``--silo-metrics`` is applied to what the step writes and logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fl_jobs.aml.steps.common import (
    METRICS_FILE,
    NO_SILO_CONFIG,
    UPDATE_FILE,
    decode_silo_config,
    example_for,
    load_config,
    log_silo_metrics,
    write_json,
)
from fl_jobs.aml.steps.entry import StepArgumentError, step
from fl_jobs.aml.steps.silo_privacy import SiloPrivacy
from fl_jobs.core.silo_metrics import METRIC_NOISE_KEY, released
from fl_jobs.errors import FLJobError


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--silo", required=True)
    parser.add_argument("--silo-index", type=int, required=True, help="0-based silo position")
    parser.add_argument("--round", type=int, required=True, help="1-based round number")
    parser.add_argument("--global-model", type=Path, required=True)
    parser.add_argument("--silo-data", type=Path, required=True, help="prepared silo data")
    parser.add_argument("--out", type=Path, required=True, help="update folder to write")
    parser.add_argument(
        "--silo-store",
        type=Path,
        default=None,
        help="the silo's own store (its secret and privacy ledger); needed with DP-SGD",
    )
    parser.add_argument(
        "--train-config",
        default=NO_SILO_CONFIG,
        help="the strategy's settings for this silo and round: KEY=NUMBER[,...] or none",
    )


@step("Train one silo for one round.", arguments)
def main(args: argparse.Namespace) -> None:
    if args.silo_index < 0 or args.round < 1:
        raise StepArgumentError("--silo-index must be >= 0 and --round >= 1")
    try:
        silo_config = decode_silo_config(args.train_config)
    except ValueError as exc:
        raise StepArgumentError(str(exc)) from None

    import torch

    from fl_jobs.aml.steps.model_folder import module_for, read_global
    from fl_jobs.core.model_io import save_weights
    from fl_jobs.core.seeds import derive_seed
    from fl_jobs.core.silo_data import read_silo_data
    from fl_jobs.core.silo_hook import round_inputs
    from fl_jobs.core.training import train_local
    from fl_jobs.rounds.job_parts import build_strategy, train_params_from_config

    # One intra-op thread, as in the local federation's workers: matmul blocking depends on
    # the thread count, so this makes the update bit-identical on any node size.
    torch.set_num_threads(1)
    config = load_config(args.config)
    weights, meta = read_global(args.global_model, config)
    data = read_silo_data(args.silo_data)
    model = module_for(config, meta, weights)
    params = train_params_from_config(config)  # momentum and DP settings included
    hook = build_strategy(config).silo_hook()  # the strategy's silo side (FedProx's term)
    try:
        settings = hook.check_settings(silo_config)
    except ValueError as exc:
        raise StepArgumentError(f"--train-config: {exc}") from None
    inputs = round_inputs(
        model, {}, settings, round=args.round, state=None, keep_start=hook.keeps_start
    )
    example = example_for(config, meta["task"])
    policy = config.silo_metrics_policy()
    own: SiloPrivacy | None = None
    if params.clip_norm is not None:
        if args.silo_store is None:
            raise FLJobError(
                "DP-SGD draws its noise from the silo's own secret, and no --silo-store was given",
                "pass the silo's store folder (--silo-store)",
            )
        own = SiloPrivacy.open(args.silo, args.silo_store, model, args.round)
        own.check(params, data.n_samples, args.out, policy == "dp")
    update = train_local(
        model,
        data,
        params,
        seed=derive_seed(config.federation.seed, args.round, args.silo_index),  # as the local run
        example=example,
        private_seeds=None if own is None else own.seeds,
        terms=hook.terms(inputs),
    )
    if own is not None:  # in the silo's ledger before the update is written
        update.metrics.update(own.record(update.metrics, model, data, example, policy))
    sent = released(update.metrics, policy)  # the rest stays in the silo
    if "dp_steps" in sent:
        from fl_jobs.core.privacy import spent

        steps = sent["dp_steps"] * args.round
        history = [(sent["dp_noise_multiplier"], sent["dp_sample_rate"], steps)]
        if METRIC_NOISE_KEY in sent:  # one noised-metric release a round
            history.append((sent[METRIC_NOISE_KEY], 1.0, float(args.round)))
        sent["epsilon"] = spent(history, sent["dp_delta"])
    save_weights(
        args.out / UPDATE_FILE,
        update.weights,
        meta={
            "n_samples": update.n_samples,
            "metrics": sent,
            "silo": args.silo,
            "round": args.round,
        },
    )
    write_json(
        args.out / METRICS_FILE,
        {
            "silo": args.silo,
            "round": args.round,
            "n_samples": update.n_samples,
            **sent,
        },
    )
    log_silo_metrics(args.silo, args.round, {**sent, "samples": update.n_samples})


if __name__ == "__main__":
    sys.exit(main())
