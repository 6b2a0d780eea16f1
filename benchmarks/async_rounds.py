"""Asynchronous (FedBuff) vs synchronous rounds over the model store, with one slow silo.

Real agent processes (``fl-sandbox agent orchestrator`` and one ``agent silo`` per silo) run
a digits federation over Azurite (HTTPS, token credential), once with synchronous rounds and
once with ``--async-buffer M``. One silo is made ``--slowdown`` times slower than the others
from outside, as a busy or smaller site would be: it is stopped (SIGSTOP) for
``1 - 1/slowdown`` of every 100 ms and continued for the rest, so its training, polling and
uploads all run at that fraction of the speed. Time to accuracy is the sum of the rounds'
(folds') own durations in the orchestrator's ``rounds.jsonl`` up to the first that reaches
``--target``; start-up is left out: the orchestrator starts once every silo agent polls. Run:
``python -m benchmarks.async_rounds`` (needs ``make setup`` for Azurite).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.cli import parser_for, positive_int
from benchmarks.report import Table, Target

ROOT = Path(__file__).resolve().parent.parent
PERIOD_S = 0.1


class Throttle:
    """Keeps a process at ``1 / slowdown`` of its speed with SIGSTOP/SIGCONT duty cycles."""

    def __init__(self, pid: int, slowdown: float) -> None:
        self.pid, self.running_s = pid, PERIOD_S / slowdown
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._cycle, daemon=True)

    def __enter__(self) -> Throttle:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _cycle(self) -> None:
        try:
            while not self._stop.is_set():
                os.kill(self.pid, signal.SIGSTOP)
                time.sleep(PERIOD_S - self.running_s)
                os.kill(self.pid, signal.SIGCONT)
                time.sleep(self.running_s)
        except ProcessLookupError:
            return
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)


def run_mode(
    root: Path, azurite: Any, identity: Any, silos: list[str], settings: dict, slowdown: float
) -> list[dict]:
    """One federation; the orchestrator's round records."""
    from tests.storage.agents import Federation

    fed = Federation(root, azurite, identity, silos, settings)
    try:
        # Every silo agent is up and polling before the throttle and the orchestrator start:
        # the slow silo is slow at training, not at starting.
        agents = [fed.silo(s) for s in silos]
        fed.wait_for("every silo agent polling", lambda: all(_polling(fed, s) for s in silos))
        with Throttle(agents[-1].pid, slowdown):
            orchestrator = fed.orchestrator()
            code = orchestrator.wait(timeout=1800)
        if code != 0:
            raise RuntimeError(f"orchestrator exited {code}:\n{fed.logs()}")
        for agent in agents:
            agent.wait(timeout=120)
        lines = (root / "orchestrator" / "rounds.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]
    finally:
        fed.stop_all()


def _polling(fed: Any, silo: str) -> bool:
    """The silo agent has a heartbeat: it writes its first once its data and trainer are
    ready, just before it polls for work."""
    from fl_jobs.store import layout

    blob = fed.azurite.service_client().get_blob_client(
        layout.silo_container(silo), layout.heartbeat_blob(fed.job)
    )
    return bool(blob.exists())


def time_to(records: list[dict], target: float) -> tuple[float | None, int | None]:
    """Seconds of rounds until the first whose accuracy reaches ``target``, and its number."""
    elapsed = 0.0
    for record in records:
        elapsed += record["seconds"]
        if record["global_metrics"]["accuracy"] >= target:
            return elapsed, record["round"]
    return None, None


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("async_rounds", __doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--silos", type=positive_int, default=4)
    parser.add_argument("--buffer", type=positive_int, default=2, help="FedBuff's M")
    parser.add_argument("--sync-rounds", type=positive_int, default=10)
    parser.add_argument("--async-rounds", type=positive_int, default=30)
    parser.add_argument("--epochs", type=positive_int, default=1, help="local epochs")
    parser.add_argument("--slowdown", type=float, default=5.0)
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args(argv)
    if args.smoke:
        args.silos, args.buffer, args.sync_rounds, args.async_rounds = 2, 1, 1, 2
    sys.path.insert(0, str(ROOT))
    from tests.azurite import AzuriteServer
    from tests.storage.identity_endpoint import IdentityEndpoint

    bench = harness.start("async_rounds", args, argv)
    silos = [f"silo-{i}" for i in range(args.silos)]
    base = {"example": "digits", "seed": 3, "epochs": args.epochs, "round_timeout": 600}
    modes = {
        "synchronous": {**base, "rounds": args.sync_rounds},
        f"asynchronous (M={args.buffer})": {
            **base,
            "rounds": args.async_rounds,
            "async_buffer": args.buffer,
        },
    }
    results: dict[str, list[dict]] = {}
    identity = IdentityEndpoint()
    with tempfile.TemporaryDirectory() as tmp:
        azurite = AzuriteServer(Path(tmp) / "azurite")
        azurite.start()
        try:
            for i, (name, settings) in enumerate(modes.items()):
                results[name] = run_mode(
                    Path(tmp) / f"run{i}", azurite, identity, silos, settings, args.slowdown
                )
                print(name, [r["global_metrics"]["accuracy"] for r in results[name]], flush=True)
        finally:
            azurite.stop()
            identity.close()
    rows = []
    reached: dict[str, float | None] = {}
    for name, records in results.items():
        seconds, at = time_to(records, args.target)
        reached[name] = seconds
        per_round = sum(r["seconds"] for r in records) / len(records)
        slow_share = sum(silos[-1] in r["selected"] for r in records) / len(records)
        rows.append(
            [
                name,
                len(records),
                round(per_round, 2),
                at,
                None if seconds is None else round(seconds, 1),
                round(records[-1]["global_metrics"]["accuracy"], 4),
                round(slow_share, 2),
            ]
        )
    sync_s, async_s = reached.values()
    ratio = None if sync_s is None or async_s is None else sync_s / async_s
    bench.finish(
        title=f"Asynchronous vs synchronous rounds over Azurite, one silo {args.slowdown:g}x "
        "slower",
        parameters={
            "silos": args.silos,
            "buffer": args.buffer,
            "sync_rounds": args.sync_rounds,
            "async_rounds": args.async_rounds,
            "epochs": args.epochs,
            "slowdown": args.slowdown,
            "target": args.target,
        },
        targets=[
            Target(
                name=f"time to {args.target:.0%} digits accuracy, synchronous / asynchronous",
                target="> 1 (asynchronous is faster with a straggler)",
                measured="not reached" if ratio is None else f"{ratio:.2f}x",
                met=None if ratio is None else ratio > 1,
            )
        ],
        tables=[
            Table(
                title="Rounds (folds) over the model store",
                columns=[
                    "mode",
                    "rounds",
                    "s per round",
                    f"round reaching {args.target:.0%}",
                    f"s to {args.target:.0%}",
                    "final accuracy",
                    "rounds with the slow silo",
                ],
                rows=rows,
            )
        ],
        notes=[
            f"{args.silos} silo agents and one orchestrator agent, real processes, over Azurite "
            f"on one machine; the last silo runs at 1/{args.slowdown:g} of the speed "
            "(SIGSTOP/SIGCONT every 100 ms).",
            "Time to accuracy sums the rounds' own durations from rounds.jsonl (start-up, the "
            "same for both, is left out). Which updates land in which fold depends on timing, "
            "so asynchronous runs vary from run to run.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
