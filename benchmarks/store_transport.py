"""Round latency and cost of the model-store transport over Azurite, against the local pipes.

One round is what the transport moves, without training: the orchestrator publishes a
P-parameter global model and a round's task, K silos each fetch it and reply with an update
of the same size, and the orchestrator reads and checks all K updates.

* ``store``: :class:`fl_jobs.store.server.StoreServer` and K
  :class:`fl_jobs.store.silo.StoreSilo` over Azurite (HTTPS, token credential), the silos as
  threads of one process (their polling and decoding share one interpreter, so this is an
  upper bound on the store's latency on this machine);
* ``pipes``: the local engine's mechanism (global model file written with
  :func:`fl_jobs.core.model_io.save_weights`, request down a ``multiprocessing`` pipe to K forked
  workers, update files back, :func:`fl_jobs.core.model_io.read_update`), with echo workers.

Requests and bytes are :class:`fl_jobs.store.blobs.Cost`'s counts, on both sides (orchestrator
plus every silo). Run: ``python -m benchmarks.store_transport`` (needs ``make setup`` for
Azurite).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import torch

from benchmarks import harness
from benchmarks.cli import count, list_of, parser_for, positive_int
from benchmarks.report import Table
from fl_jobs.core.model_io import load_weights, read_update, save_weights
from fl_jobs.store import layout
from fl_jobs.store.blobs import Store
from fl_jobs.store.server import StoreServer
from fl_jobs.store.silo import StoreSilo
from fl_jobs.store.transport import TrainResult, TrainTask

ROOT = Path(__file__).resolve().parent.parent


def model(n_params: int) -> dict[str, torch.Tensor]:
    """A float32 model of ``n_params`` in two tensors, deterministic."""
    g = torch.Generator().manual_seed(0)
    bias = 1000
    return {
        "w": torch.rand(n_params - bias, generator=g),
        "b": torch.rand(bias, generator=g),
    }


def store_rounds(azurite, k: int, n_params: int, rounds: int) -> list[dict]:
    silos = [f"s{i}" for i in range(k)]
    containers = [layout.GLOBAL_CONTAINER, *map(layout.silo_container, silos)]
    service = azurite.service_client()
    for name in containers:
        if not service.get_container_client(name).exists():
            service.create_container(name)

    def connect(names: list[str]) -> Store:
        return Store.connect(
            azurite.account_url, azurite.credential(), names, connection_verify=str(azurite.ca_path)
        )

    job = f"bench-{uuid.uuid4().hex[:8]}"
    server_store = connect(containers)
    server = StoreServer(server_store, job, silos)
    silo_stores = [connect([layout.GLOBAL_CONTAINER, layout.silo_container(s)]) for s in silos]
    agents = [
        StoreSilo(st, job, s, poll_max_s=0.5) for st, s in zip(silo_stores, silos, strict=True)
    ]

    def echo(agent: StoreSilo) -> None:
        while (task := agent.next_task()) is not None:
            weights = agent.global_weights(task)
            agent.reply(task, weights, 100, {"train_loss": 0.1})

    weights = model(n_params)
    server.publish_global(0, weights)
    threads = [threading.Thread(target=echo, args=(a,), daemon=True) for a in agents]
    for t in threads:
        t.start()
    results = []
    for rnd in range(1, rounds + 1):
        stores = [server_store, *silo_stores]
        before = [s.cost.copy() for s in stores]
        t0 = time.perf_counter()
        if rnd > 1:
            server.publish_global(rnd - 1, weights)
        server.send_round(rnd, [TrainTask(s, rnd, seed=i) for i, s in enumerate(silos)])
        replies = list(server.replies(rnd, silos, {}, timeout=600, template=weights))
        seconds = time.perf_counter() - t0
        assert all(isinstance(r, TrainResult) for _, r in replies), replies
        costs = [s.cost.since(b) for s, b in zip(stores, before, strict=True)]
        results.append(
            {
                "seconds": seconds,
                "requests": sum(c["requests"] for c in costs),
                "orchestrator_requests": costs[0]["requests"],
                "bytes": sum(c["bytes_up"] + c["bytes_down"] for c in costs),
            }
        )
    server.finish(rounds)
    for t in threads:
        t.join(timeout=30)
    return results


def _pipe_worker(conn, folder: str) -> None:
    torch.set_num_threads(1)
    while (request := conn.recv()) != "stop":
        _round, global_path, update_path = request
        weights, _ = load_weights(Path(global_path))
        save_weights(Path(update_path), weights, meta={"n_samples": 100, "metrics": {}})
        conn.send(update_path)


def pipe_rounds(k: int, n_params: int, rounds: int) -> list[dict]:
    ctx = mp.get_context("fork")
    weights = model(n_params)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pipes, procs = [], []
        for _ in range(k):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_pipe_worker, args=(child, tmp), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        for rnd in range(1, rounds + 1):
            t0 = time.perf_counter()
            global_path = Path(tmp) / f"global_{rnd}.pt"
            save_weights(global_path, weights, meta={"round": rnd})
            for i, conn in enumerate(pipes):
                conn.send((rnd, str(global_path), str(Path(tmp) / f"u{rnd}_{i}.pt")))
            for conn in pipes:
                read_update(Path(conn.recv()), weights)
            results.append({"seconds": time.perf_counter() - t0, "requests": 0, "bytes": 0})
        for conn in pipes:
            conn.send("stop")
        for proc in procs:
            proc.join(timeout=10)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("store_transport", __doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--k", type=list_of(positive_int), default=[10, 100])
    parser.add_argument("--params", type=list_of(count), default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument(
        "--max-kp",
        type=count,
        default=100_000_000,
        help="skip cells with K x P above this (default: 100M, i.e. 400 MB of updates a round)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.k, args.params, args.rounds = [2], [10_000], 2
    sys.path.insert(0, str(ROOT))
    from tests.azurite import AzuriteServer

    bench = harness.start("store_transport", args, argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        azurite = AzuriteServer(Path(tmp) / "azurite")
        azurite.start()
        try:
            for k in args.k:
                for p in args.params:
                    if k * p > args.max_kp:
                        continue
                    for name, runs in (
                        ("store (Azurite)", store_rounds(azurite, k, p, args.rounds)),
                        ("local pipes", pipe_rounds(k, p, args.rounds)),
                    ):
                        rows.append(
                            [
                                name,
                                k,
                                p,
                                round(statistics.median(r["seconds"] for r in runs), 3),
                                round(statistics.median(r["requests"] for r in runs)),
                                round(statistics.median(r["bytes"] for r in runs) / 1e6, 1),
                            ]
                        )
                        print(rows[-1], flush=True)
        finally:
            azurite.stop()
    bench.finish(
        title="Model-store transport vs local pipes: one round without training",
        parameters={
            "k": args.k,
            "params": args.params,
            "rounds": args.rounds,
            "max_kp": args.max_kp,
        },
        tables=[
            Table(
                title="Round latency and cost (median over rounds)",
                columns=["transport", "K", "P", "round s", "requests/round", "MB moved/round"],
                rows=rows,
            )
        ],
        notes=[
            "store: requests and bytes count the orchestrator and every silo; the silos are "
            "threads of one process polling with backoff (0.1 s doubling to 0.5 s).",
            "pipes: the local engine's files and pipes with echo workers; requests and bytes "
            "are not counted there (no network).",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
