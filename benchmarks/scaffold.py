"""SCAFFOLD against FedAvg and FedProx under strong label skew (every silo holds two labels).

Karimireddy et al. (ICML 2020) show SCAFFOLD's control variates correcting the client drift
that label skew causes with many local steps. This runs the three on the project's own local
federation (``run_federation``, in this process), 10 silos partitioned ``shards:2``:

* digits (scikit-learn), the project's MLP, E=5, B=16, client lr 0.1, several seeds;
* MNIST (``../shared/data/mnist``), the FedAvg paper's 2NN, E=1, B=50, client lr 0.05.

FedProx runs with ``mu`` 0.01 and 0.1. Reported: final test accuracy, the best round's, and
the first round reaching each level. Target: SCAFFOLD's final accuracy beats both FedAvg's and
FedProx's best, on each data set (mean over seeds). Run: ``python -m benchmarks.scaffold``.
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

from benchmarks import harness
from benchmarks.cli import list_of, parser_for, positive_int
from benchmarks.report import Table, Target
from benchmarks.strategies import Contender, Run, run

NAME = "scaffold"
LEVELS = {"digits": (0.85, 0.90), "mnist": (0.90, 0.95)}


def contenders() -> list[Contender]:
    return [
        Contender("FedAvg", {}),
        *(
            Contender(f"FedProx, mu {mu:g}", {"strategy": {"name": "fedprox", "mu": mu}})
            for mu in (0.01, 0.1)
        ),
        Contender("SCAFFOLD", {"strategy": "scaffold"}),
    ]


def task_settings(task: str, rounds: int, smoke: bool) -> dict[str, Any]:
    common: dict[str, Any] = {"partition": "shards:2", "silos": 10, "rounds": rounds}
    if task == "digits":
        return {**common, "example": "digits", "epochs": 5, "batch_size": 16, "lr": 0.1}
    mnist = {**common, "example": "mnist", "model": "2nn", "epochs": 1, "batch_size": 50}
    return {**mnist, "lr": 0.05, **({"max_train_samples": 2000} if smoke else {})}


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(NAME, __doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=list_of(int), default=[0, 1, 2])
    parser.add_argument("--mnist-seeds", type=list_of(int), default=[0])
    parser.add_argument("--digits-rounds", type=positive_int, default=30)
    parser.add_argument("--mnist-rounds", type=positive_int, default=30)
    parser.add_argument("--tasks", type=list_of(str), default=["digits", "mnist"])
    args = parser.parse_args(argv)
    unknown = set(args.tasks) - set(LEVELS)
    if unknown:
        parser.error(f"unknown task {sorted(unknown)[0]!r} - choose from digits, mnist")
    if args.smoke:
        args.seeds, args.mnist_seeds, args.digits_rounds, args.mnist_rounds = [0], [0], 2, 2
        args.tasks = ["digits"]
    bench = harness.start(NAME, args, argv)
    rows: list[list[Any]] = []
    targets: list[Target] = []
    for task in args.tasks:
        rounds = args.digits_rounds if task == "digits" else args.mnist_rounds
        seeds = args.seeds if task == "digits" else args.mnist_seeds
        common = task_settings(task, rounds, args.smoke)
        print(task, file=sys.stderr)
        runs: dict[str, list[Run]] = {}
        for contender in contenders():
            runs[contender.label] = [run(common, contender, seed) for seed in seeds]
        finals = {label: statistics.mean(r.final for r in rs) for label, rs in runs.items()}
        for label, rs in runs.items():
            firsts = [
                ", ".join(str(r.first_round(level) or f"not in {rounds}") for r in rs)
                for level in LEVELS[task]
            ]
            rows.append(
                [
                    task,
                    label,
                    round(100 * finals[label], 2),
                    round(100 * statistics.mean(max(r.accuracy) for r in rs), 2),
                    *firsts,
                    round(statistics.mean(r.wall_s for r in rs), 1),
                ]
            )
        best_other = max(v for k, v in finals.items() if k != "SCAFFOLD")
        targets.append(
            Target(
                name=f"{task}: SCAFFOLD final accuracy vs the best of FedAvg and FedProx",
                target="higher",
                measured=f"{100 * finals['SCAFFOLD']:.2f}% vs {100 * best_other:.2f}%",
                met=finals["SCAFFOLD"] > best_other,
                note=f"mean over seeds {seeds}, {rounds} rounds",
            )
        )
    bench.finish(
        title="SCAFFOLD vs FedAvg and FedProx under label skew (shards:2, 10 silos)",
        parameters={
            "seeds": args.seeds,
            "mnist_seeds": args.mnist_seeds,
            "digits_rounds": args.digits_rounds,
            "mnist_rounds": args.mnist_rounds,
            "tasks": args.tasks,
            **{task: task_settings(task, 0, args.smoke) for task in args.tasks},
        },
        targets=targets,
        tables=[
            Table(
                title="Final and best test accuracy (%, mean over seeds), first round reaching "
                "each level (per seed)",
                columns=[
                    "task",
                    "strategy",
                    "final %",
                    "best %",
                    "first round at level 1",
                    "first round at level 2",
                    "s per run",
                ],
                rows=rows,
            )
        ],
        notes=[
            f"levels: digits {LEVELS['digits']}, mnist {LEVELS['mnist']}.",
            "One process, the project's local federation with its worker processes; the same "
            "seeds give every strategy the same partition and initial model.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
