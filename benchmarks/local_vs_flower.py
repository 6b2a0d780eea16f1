"""Local federation vs Flower simulation: the same digits task end to end, side by side.

The task: scikit-learn's digits, the project's MLP (64-64-10), 10 silos, E=1, B=16, the
project's partition and seed, 5 and 20 rounds. Two contenders, each a fresh process timed from
outside (interpreter start, imports and shutdown included, as a user pays them):

* fl-sandbox: ``python -m fl_jobs run ...`` (one worker process per silo, streaming FedAvg);
* Flower: ``benchmarks/flower_digits.py`` in the Flower environment, ``run_simulation`` with
  the Ray backend and Flower's FedAvg, training with the project's own ``train_local`` on the
  project's own partition (checked equal by digest) from the same initial weights.

Peak memory is the summed PSS of each process tree (workers, Ray's processes), sampled every
50 ms. Target: fl-sandbox at least 5x faster end to end at equal accuracy (within 1 point).

fl-sandbox runs as users run it, checkpointing every round; the same runs with
``--no-checkpoints`` measure what checkpointing costs end to end (target: at most 5%). After
one unmeasured warm-up run (which also fills the silo data cache) the two modes run in
``--repeats`` back-to-back pairs, alternating which goes first; the overhead is the median of
the pairs' time ratios, so that the load of whatever else shares the machine, which drifts
over minutes, cancels within each pair.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.cli import list_of, parser_for, positive_int
from benchmarks.flower_digits import partition_digest
from benchmarks.flower_runtime import REPO_ROOT, flower_env, flower_python
from benchmarks.measured_run import MeasuredRun, run_measured
from benchmarks.report import Cell, Table, Target

NAME = "local_vs_flower"
SPEEDUP_TARGET = 5.0
ACCURACY_POINTS = 1.0
#: Checkpointing every round may add at most this share to the end-to-end time.
CHECKPOINT_OVERHEAD = 0.05
# The task of the issue: E=1, B=16; the learning rate (and momentum) are the digits example's.
EPOCHS = 1
BATCH_SIZE = 16


def memory_stall_s() -> float | None:
    """Seconds during which every runnable task here waited for memory (Linux PSI, "full"),
    since boot; None where the kernel does not report it. A rise during the benchmark means
    something else on the machine was short of memory and the timings are disturbed."""
    try:
        for line in Path("/proc/pressure/memory").read_text().splitlines():
            if line.startswith("full"):
                return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None
    return None


def digits_lr() -> float:
    """The digits example's default learning rate, passed explicitly to both contenders."""
    from fl_jobs.examples.registry import get_example

    return float(get_example("digits").defaults["lr"])


@dataclass(frozen=True)
class Task:
    """The shared task's settings, passed identically to both contenders."""

    silos: int
    rounds: int
    epochs: int
    batch_size: int
    lr: float
    partition: str
    seed: int

    def options(self) -> list[str]:
        return [
            "--silos",
            str(self.silos),
            "--rounds",
            str(self.rounds),
            "--epochs",
            str(self.epochs),
            "--batch-size",
            str(self.batch_size),
            "--lr",
            str(self.lr),
            "--partition",
            self.partition,
            "--seed",
            str(self.seed),
        ]


@dataclass(frozen=True)
class Outcome:
    contender: str
    rounds: int
    run: MeasuredRun
    accuracy: float


@dataclass(frozen=True)
class Ours:
    """fl-sandbox's repeated runs of one task, with and without checkpoints."""

    on: list[Outcome]
    off: list[Outcome]

    @property
    def median(self) -> Outcome:
        """The checkpointing run of median wall time (the one compared with Flower)."""
        ranked = sorted(self.on, key=lambda o: o.run.wall_s)
        return ranked[(len(ranked) - 1) // 2]

    def pair_ratios(self) -> list[float]:
        """with / without, for each back-to-back pair."""
        return [a.run.wall_s / b.run.wall_s for a, b in zip(self.on, self.off, strict=True)]

    def overhead(self) -> float:
        """The median over pairs of (with / without) - 1."""
        return statistics.median(self.pair_ratios()) - 1


def our_partition_digest(task: Task) -> str:
    """The digest of the partition the project computes for this task."""
    from fl_jobs.config import JobConfig
    from fl_jobs.local.prepare import prepare_job

    config = JobConfig.of(
        example="digits",
        silos=task.silos,
        rounds=task.rounds,
        epochs=task.epochs,
        batch_size=task.batch_size,
        lr=task.lr,
        partition=task.partition,
        seed=task.seed,
        tracking=False,
        baselines=False,
    )
    return partition_digest(prepare_job(config).partitions)


def _final_accuracy(summary: dict[str, Any]) -> float:
    """The global model's final test accuracy from the CLI's JSON summary."""
    for key in ("final_metrics", "federated"):
        block = summary.get(key)
        if isinstance(block, dict) and "accuracy" in block:
            return float(block["accuracy"])
        if isinstance(block, dict) and isinstance(block.get("metrics"), dict):
            return float(block["metrics"]["accuracy"])
    raise KeyError(f"no final accuracy in the run summary (keys: {sorted(summary)})")


def run_ours(task: Task, scratch: Path, *, checkpoints: bool, label: str) -> Outcome:
    summary = scratch / f"ours-{task.rounds}-{label}.json"
    command = [
        sys.executable,
        "-m",
        "fl_jobs",
        "run",
        "--example",
        "digits",
        *task.options(),
        "--no-baselines",
        "--no-tracking",
        "--checkpoints" if checkpoints else "--no-checkpoints",
        "--output-dir",
        str(scratch / f"ours-{task.rounds}-{label}"),
        "--summary",
        str(summary),
    ]
    env = {**os.environ, "FL_SANDBOX_CACHE": str(scratch / "cache")}
    run = run_measured(command, cwd=REPO_ROOT, env=env).check()
    accuracy = _final_accuracy(json.loads(summary.read_text()))
    mode = "checkpoints on" if checkpoints else "--no-checkpoints"
    return Outcome(f"fl-sandbox (python -m fl_jobs run), {mode}", task.rounds, run, accuracy)


def run_ours_repeated(task: Task, scratch: Path, repeats: int) -> Ours:
    """One warm-up run, then ``repeats`` runs with and without checkpoints, alternating."""
    run_ours(task, scratch, checkpoints=True, label="warm-up")
    on: list[Outcome] = []
    off: list[Outcome] = []
    for i in range(repeats):
        first_on = i % 2 == 0  # alternate which mode goes first, against drift
        for checkpoints in (first_on, not first_on):
            outcome = run_ours(task, scratch, checkpoints=checkpoints, label=f"{i}-{checkpoints}")
            (on if checkpoints else off).append(outcome)
    return Ours(on, off)


def run_flower(task: Task, scratch: Path, expected_digest: str) -> Outcome | None:
    python = flower_python()
    if python is None:
        return None
    out = scratch / f"flower-{task.rounds}.json"
    command = [str(python), "-m", "benchmarks.flower_digits", *task.options(), "--out", str(out)]
    run = run_measured(command, cwd=REPO_ROOT, env=flower_env(scratch / "flower")).check()
    result = json.loads(out.read_text())
    if result["partition_sha256"] != expected_digest:
        raise RuntimeError(
            "the Flower run's partition differs from the project's (digest "
            f"{result['partition_sha256']} vs {expected_digest}); the comparison would be unfair"
        )
    accuracy = float(result["final_metrics"][result["metric_name"]])
    return Outcome("Flower run_simulation (Ray)", task.rounds, run, accuracy)


def _overhead_targets(pairs: list[tuple[Ours, Outcome | None]]) -> list[Target]:
    targets = []
    for ours, _ in pairs:
        on = statistics.median(o.run.wall_s for o in ours.on)
        off = statistics.median(o.run.wall_s for o in ours.off)
        overhead = ours.overhead()
        targets.append(
            Target(
                name=f"{ours.on[0].rounds} rounds: checkpointing every round, end-to-end overhead",
                target=f"<= {100 * CHECKPOINT_OVERHEAD:.0f}%",
                measured=f"{100 * overhead:+.1f}% (median ratio {1 + overhead:.3f} over "
                f"{len(ours.on)} back-to-back pairs; median {on:.2f} s with, {off:.2f} s "
                "without)",
                met=overhead <= CHECKPOINT_OVERHEAD,
            )
        )
    return targets


def _targets(pairs: list[tuple[Outcome, Outcome | None]]) -> list[Target]:
    targets = []
    for ours, flower in pairs:
        name = f"{ours.rounds} rounds: speed-up over Flower at equal accuracy (±1 point)"
        if flower is None:
            targets.append(
                Target(
                    name=name,
                    target=f">= {SPEEDUP_TARGET:.0f}x",
                    measured="not measured",
                    met=None,
                    note="Flower environment absent (benchmarks/flower_env.sh)",
                )
            )
            continue
        speedup = flower.run.wall_s / ours.run.wall_s
        gap = 100 * (ours.accuracy - flower.accuracy)
        equal = abs(gap) <= ACCURACY_POINTS
        targets.append(
            Target(
                name=name,
                target=f">= {SPEEDUP_TARGET:.0f}x, |accuracy gap| <= {ACCURACY_POINTS:g} point",
                measured=f"{speedup:.1f}x ({ours.run.wall_s:.1f} s vs {flower.run.wall_s:.1f} s);"
                f" accuracy {100 * ours.accuracy:.1f}% vs {100 * flower.accuracy:.1f}%",
                met=speedup >= SPEEDUP_TARGET and equal,
            )
        )
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(NAME, __doc__)
    parser.add_argument(
        "--rounds",
        type=list_of(positive_int),
        default=[5, 20],
        help="round counts to run, comma-separated (default: 5,20)",
    )
    parser.add_argument("--silos", type=positive_int, default=10, help="silos (default: 10)")
    parser.add_argument(
        "--partition", default="iid", help="the project's partition spec (default: iid)"
    )
    parser.add_argument("--seed", type=int, default=0, help="job seed (default: 0)")
    parser.add_argument("--no-flower", action="store_true", help="skip the Flower contender")
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=7,
        help="back-to-back pairs of fl-sandbox runs with and without checkpoints (default: 7)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.silos, args.repeats = [1], 3, 1
    from fl_jobs.core.partition import parse_partition

    try:
        parse_partition(args.partition)
    except ValueError as exc:
        parser.error(f"--partition: {exc}")

    bench = harness.start(NAME, args, argv, flower_python=flower_python())
    stall_before = memory_stall_s()
    lr = digits_lr()
    pairs: list[tuple[Ours, Outcome | None]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-local-flwr-") as tmp:
        scratch = Path(tmp)
        for rounds in args.rounds:
            task = Task(args.silos, rounds, EPOCHS, BATCH_SIZE, lr, args.partition, args.seed)
            digest = our_partition_digest(task)
            ours = run_ours_repeated(task, scratch, args.repeats)
            flower = None if args.no_flower else run_flower(task, scratch, digest)
            if flower is None and not args.no_flower:
                notes.append(
                    "Flower not measured: create its environment with benchmarks/flower_env.sh"
                )
            pairs.append((ours, flower))
            for o in (*ours.on, *ours.off, flower):
                if o is not None:
                    print(
                        f"{rounds:>3} rounds {o.contender:<38} {o.run.wall_s:6.1f} s "
                        f"peak {o.run.peak_tree_bytes / 1e6:6.0f} MB acc {o.accuracy:.4f}",
                        file=sys.stderr,
                    )
    stall_after = memory_stall_s()
    if stall_before is not None and stall_after is not None:
        stalled = stall_after - stall_before
        notes.append(
            f"Memory pressure on the machine during the benchmark: {stalled:.1f} s during which "
            "all runnable tasks waited for memory (Linux PSI 'full'); well above 0 means other "
            "work was short of memory and the timings are disturbed."
        )
    rows: list[list[Cell]] = []
    overhead_rows: list[list[Cell]] = []
    for ours, flower in pairs:
        reference = ours.median
        for o in (reference, flower):
            if o is None:
                continue
            rows.append(
                [
                    o.rounds,
                    o.contender,
                    round(o.run.wall_s, 2),
                    round(o.run.wall_s / reference.run.wall_s, 2),
                    round(o.run.peak_tree_bytes / 1e6),
                    round(100 * o.accuracy, 2),
                ]
            )
        for mode, runs in (("checkpoints on", ours.on), ("--no-checkpoints", ours.off)):
            times = [o.run.wall_s for o in runs]
            overhead_rows.append(
                [
                    reference.rounds,
                    mode,
                    round(statistics.median(times), 2),
                    ", ".join(f"{t:.2f}" for t in times),
                    round(100 * runs[0].accuracy, 2),
                ]
            )
        overhead_rows.append(
            [
                reference.rounds,
                "ratio with / without, per pair",
                round(1 + ours.overhead(), 3),
                ", ".join(f"{r:.3f}" for r in ours.pair_ratios()),
                None,
            ]
        )
    bench.finish(
        title="Local federation vs Flower simulation: digits MLP, end to end",
        parameters={
            "example": "digits",
            "silos": args.silos,
            "rounds": args.rounds,
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "lr": lr,
            "partition": args.partition,
            "seed": args.seed,
            "repeats": args.repeats,
        },
        targets=_targets([(ours.median, flower) for ours, flower in pairs])
        + _overhead_targets(pairs),
        tables=[
            Table(
                title="End to end, fresh process each (imports, start-up and shutdown included)",
                columns=[
                    "rounds",
                    "contender",
                    "wall s",
                    "vs fl-sandbox",
                    "peak memory, process tree PSS (MB)",
                    "final test accuracy %",
                ],
                rows=rows,
            ),
            Table(
                title="fl-sandbox with and without checkpoints (fresh process each, alternating)",
                columns=[
                    "rounds",
                    "mode",
                    "median wall s",
                    "each run, wall s",
                    "final test accuracy %",
                ],
                rows=overhead_rows,
            ),
        ],
        notes=[
            *notes,
            "Both sides run the project's data loading, partition (digest checked equal), "
            "seeded initial model, local training (train_local with the same per-round "
            "per-silo seeds) and evaluation; only the federation engine differs. Learning rate "
            f"{lr} and the other local settings (momentum) are the digits example's defaults.",
            "fl-sandbox: the run of median wall time among the checkpointing runs is compared "
            "with Flower. Checkpoints: the global model, server state, RNG state and round "
            "history are written atomically after every round, on a background thread.",
            "fl-sandbox runs with --no-baselines --no-tracking (Flower does neither); Flower "
            "uses its FedAvg (fraction_fit=1, centralised evaluation each round, no client "
            "evaluation) and one CPU per virtual client.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
