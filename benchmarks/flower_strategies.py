"""Flower's own strategies on given updates (runs in the Flower environment): the oracle that
fl-sandbox's strategies are compared with.

Reads an ``.npz`` of rounds of updates (``initial_<j>`` for the initial weights' tensors,
``round<r>_update<i>_<j>`` for update i's tensor j in round r, ``samples`` a rounds x updates
array of sample counts), runs each of Flower's strategies through ``aggregate_fit`` round after
round, and writes each round's aggregate as ``<strategy>_round<r>_<j>`` in an ``.npz``.

Settings per strategy are fixed here and mirrored by the caller (tests/fl/
test_strategies_vs_flower.py). FedAdam is called with ``server_round = r - 1``: Flower's
FedAdam bias-corrects with the exponent ``server_round + 1``, so that its call r - 1 uses the
exponent r, as Adam (and fl-sandbox's ``bias_correction``) does in round r.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

#: name -> (Flower class, its keyword arguments); "initial" marks strategies that need the
#: initial weights (server-side optimisers).
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "fedavg": ("FedAvg", {}),
    "fedavgm": ("FedAvgM", {"server_learning_rate": 0.5, "server_momentum": 0.9}),
    "fedprox": ("FedProx", {"proximal_mu": 0.1}),
    "fedadam": ("FedAdam", {"eta": 0.1, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}),
    "fedyogi": ("FedYogi", {"eta": 0.05, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}),
    "fedadagrad": ("FedAdagrad", {"eta": 0.1, "tau": 1e-3}),
    "median": ("FedMedian", {}),
    "trimmed_mean": ("FedTrimmedAvg", {"beta": 0.2}),
    "krum": ("Krum", {"num_malicious_clients": 1, "num_clients_to_keep": 0}),
    "multikrum": ("Krum", {"num_malicious_clients": 1, "num_clients_to_keep": 3}),
}


def load_rounds(path: Path) -> tuple[list[np.ndarray], list[list[list[np.ndarray]]], np.ndarray]:
    data = np.load(path)
    samples = data["samples"]
    n_tensors = sum(1 for key in data.files if key.startswith("initial_"))
    initial = [data[f"initial_{j}"] for j in range(n_tensors)]
    rounds = [
        [
            [data[f"round{r}_update{i}_{j}"] for j in range(n_tensors)]
            for i in range(samples.shape[1])
        ]
        for r in range(samples.shape[0])
    ]
    return initial, rounds, samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=Path, required=True, help="input .npz")
    parser.add_argument("--out", type=Path, required=True, help=".npz of Flower's aggregates")
    args = parser.parse_args(argv)

    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import strategy as flower_strategies

    initial, rounds, samples = load_rounds(args.updates)
    out: dict[str, Any] = {}
    for name, (cls, kwargs) in SETTINGS.items():
        strategy = getattr(flower_strategies, cls)(
            initial_parameters=ndarrays_to_parameters(initial),
            fit_metrics_aggregation_fn=lambda metrics: {},
            **kwargs,
        )
        for r, updates in enumerate(rounds, start=1):
            results = [
                (
                    None,
                    FitRes(
                        status=Status(code=Code.OK, message=""),
                        parameters=ndarrays_to_parameters(update),
                        num_examples=int(samples[r - 1, i]),
                        metrics={},
                    ),
                )
                for i, update in enumerate(updates)
            ]
            server_round = r - 1 if name == "fedadam" else r
            parameters, _ = strategy.aggregate_fit(server_round, results, [])
            for j, array in enumerate(parameters_to_ndarrays(parameters)):
                out[f"{name}_round{r}_{j}"] = array
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
