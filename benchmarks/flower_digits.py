"""The digits task as a Flower simulation (runs in the Flower environment, ``.venv-flwr``).

Invoked by ``benchmarks/local_vs_flower.py``. Everything but the federation engine is the
project's own code, imported from the repository: the job config (so the example's defaults,
e.g. momentum, apply as they do for ``python -m fl_jobs run``), the data loading and the
partition (``prepare_job``), the seeded initial model, local training (``train_local`` with the
same settings and the same per-round, per-silo seeds) and the test-set evaluation. Only the
engine differs: Flower's ``run_simulation`` (Ray backend, one virtual client per silo) and
Flower's ``FedAvg`` in place of fl-sandbox's worker processes and streaming FedAvg. Writes a
JSON file with the accuracy after each round and a digest of the partition, which the caller
checks against its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np


def partition_digest(partitions: list[np.ndarray]) -> str:
    """sha256 over every silo's sorted row indices, in silo order."""
    digest = hashlib.sha256()
    for part in partitions:
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes() + b"|")
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flower_digits", description=__doc__)
    parser.add_argument("--silos", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--partition", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from fl_jobs.config import JobConfig
    from fl_jobs.core.evaluation import evaluate
    from fl_jobs.core.seeds import derive_seed
    from fl_jobs.core.silo_data import SiloArrays
    from fl_jobs.core.training import state_weights, train_local
    from fl_jobs.local.federation import initial_model
    from fl_jobs.local.prepare import prepare_job
    from fl_jobs.rounds.job_parts import train_params_from_config

    config = JobConfig.of(
        example="digits",
        silos=args.silos,
        rounds=args.rounds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        partition=args.partition,
        seed=args.seed,
        tracking=False,
        baselines=False,
    )
    prepared = prepare_job(config)
    example, ds = prepared.example, prepared.dataset
    model = initial_model(prepared)
    keys = list(state_weights(model))
    initial = [t.numpy() for t in state_weights(model).values()]
    params = train_params_from_config(config)
    history: list[dict[str, Any]] = []

    def set_weights(net: torch.nn.Module, arrays: list[np.ndarray]) -> None:
        state = {
            k: torch.from_numpy(np.asarray(a).copy()) for k, a in zip(keys, arrays, strict=True)
        }
        net.load_state_dict(state)

    class SiloClient(NumPyClient):
        def __init__(self, index: int) -> None:
            rows = prepared.partitions[index]
            self.index = index
            self.data = SiloArrays(X=example.prepare(ds.X[rows]), y=ds.y[rows], task=example.task)
            self.net = example.build_model(config.example, ds.shape)

        def fit(self, parameters: list[np.ndarray], config: dict) -> tuple:
            torch.set_num_threads(1)
            set_weights(self.net, parameters)
            seed = derive_seed(args.seed, int(config["server_round"]), self.index)
            update = train_local(self.net, self.data, params, seed=seed, example=example)
            return [t.numpy() for t in update.weights.values()], update.n_samples, {}

    def client_fn(context: Context) -> Any:
        return SiloClient(int(context.node_config["partition-id"])).to_client()

    def evaluate_fn(server_round: int, arrays: list[np.ndarray], _: dict) -> tuple:
        net = example.build_model(config.example, ds.shape)
        set_weights(net, arrays)
        metrics = evaluate(net, ds.test_X, ds.test_y, example)
        history.append(
            {"round": server_round, "metrics": metrics, "at_s": time.perf_counter() - started}
        )
        return metrics["loss"], {example.metric_name: metrics[example.metric_name]}

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=args.silos,
            min_available_clients=args.silos,
            initial_parameters=ndarrays_to_parameters(initial),
            evaluate_fn=evaluate_fn,
            on_fit_config_fn=lambda rnd: {"server_round": rnd},
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=args.rounds))

    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=client_fn),
        num_supernodes=args.silos,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {
                "include_dashboard": False,
                "num_cpus": len(os.sched_getaffinity(0)),
                "_node_ip_address": "127.0.0.1",
                "log_to_driver": False,
            },
        },
    )
    finals = [h for h in history if h["round"] == args.rounds]
    if not finals:
        raise SystemExit(f"Flower finished without evaluating round {args.rounds}")
    args.out.write_text(
        json.dumps(
            {
                "history": history,
                "final_metrics": finals[-1]["metrics"],
                "metric_name": example.metric_name,
                "partition_sha256": partition_digest(prepared.partitions),
                "silo_sizes": prepared.silo_sizes(),
                "inner_s": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
