"""Silo-level DP (DP-FedAvg) against record-level DP (DP-SGD) at equal epsilon.

On scikit-learn's digits (MLP) and on MNIST (2NN, a seeded subset of the training set), with
20 and 50 silos (IID), the project's local federation (``run_federation``, in this process): final
test accuracy of

* no DP (the reference);
* record-level DP: DP-SGD at every silo, ``--clip-norm``, noise for ``--target-epsilon``
  (each silo's records, replace-one adjacency, the project's reported figure);
* silo-level DP: ``--dp-level silo``, updates clipped to ``--dp-silo-clip``, the
  orchestrator's Gaussian noise for ``--target-epsilon`` (one whole silo added or removed,
  Opacus's RDP accountant at q = client fraction, one step per round).

The epsilons are the same numbers but not the same promise: silo-level DP hides a whole silo
(every record of it at once), record-level DP one record of a silo. Distributed noise
(``--dp-silo-noise distributed``) adds the same total variance to the same sum, so its
accuracy is the orchestrator mode's; it is not run here. No target: this measures what
silo-level DP costs with tens of silos, where the paper (McMahan et al., 2018) had ~800,000
users.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.cli import list_of, parser_for
from benchmarks.report import Table, Target

NAME = "silo_dp"

#: Per data set: the common job settings (IID, no momentum: DP-SGD and DP-FedAvg alike).
TASKS: dict[str, dict[str, Any]] = {
    "digits": {"example": "digits", "silos": 20, "rounds": 15, "epochs": 2, "batch_size": 16,
               "lr": 0.05, "momentum": 0.0},
    "mnist": {"example": "mnist", "model": "2nn", "silos": 20, "rounds": 10, "epochs": 1,
              "batch_size": 32, "lr": 0.1, "momentum": 0.0, "max_train_samples": 12000},
    "mnist-50": {"example": "mnist", "model": "2nn", "silos": 50, "rounds": 10, "epochs": 1,
                 "batch_size": 32, "lr": 0.1, "momentum": 0.0, "max_train_samples": 12000},
}  # fmt: skip
RECORD_CLIP = 1.0
SILO_CLIP = 1.0


@dataclass(frozen=True)
class Result:
    task: str
    mode: str
    epsilon: float | None
    accuracy: float | None
    reported_epsilon: float | None
    noise_multiplier: float | None
    wall_s: float


def run(task: str, mode: str, eps: float | None, smoke: bool, data_dir: Path | None) -> Result:
    from fl_jobs.config import load_job_config
    from fl_jobs.errors import DivergenceError
    from fl_jobs.local.federation import run_federation
    from fl_jobs.silo import silo_dp

    settings: dict[str, Any] = dict(TASKS[task])
    if smoke:
        mnist = settings["example"] == "mnist"
        settings.update(rounds=2, max_train_samples=2000 if mnist else None)
    if settings["example"] == "mnist" and data_dir is not None:
        settings["data_dir"] = data_dir
    if mode == "record":
        settings.update(clip_norm=RECORD_CLIP, target_epsilon=eps)
    elif mode == "silo":
        settings.update(dp_level="silo", dp_silo_clip=SILO_CLIP, target_epsilon=eps)
    with tempfile.TemporaryDirectory(prefix="bench-silo-dp-") as scratch:
        config = load_job_config(
            None,
            {**settings, "seed": 0, "tracking": False, "baselines": False, "collapse_rounds": 0,
             "output_dir": Path(scratch)},
        )  # fmt: skip
        start = time.perf_counter()
        try:
            result = run_federation(config)
        except DivergenceError as exc:  # reported as a row: what this setting does
            wall = time.perf_counter() - start
            print(f"  {task} {mode} eps={eps}: {exc}", file=sys.stderr, flush=True)
            return Result(task, mode, eps, None, None, None, wall)
        wall = time.perf_counter() - start
    reported: float | None = None
    noise: float | None = None
    if mode == "record" and result.epsilon_per_silo:
        reported = max(result.epsilon_per_silo.values())
        noise = max(
            m["dp_noise_multiplier"]
            for r in result.history
            for m in r.silo_metrics.values()
            if "dp_noise_multiplier" in m
        )
    if mode == "silo":
        last = result.history[-1].silo_dp or {}
        reported = float(last["epsilon"])
        noise = silo_dp.noise_multiplier(config)
    out = Result(task, mode, eps, result.final_metrics["accuracy"], reported, noise, wall)
    print(f"  {task} {mode} eps={eps}: accuracy {result.final_metrics['accuracy']:.4f} "
          f"({wall:.1f} s)",
          file=sys.stderr, flush=True)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(NAME, __doc__)
    parser.add_argument(
        "--epsilons", type=list_of(float), default=[1.0, 4.0, 8.0], help="(default: 1,4,8)"
    )
    parser.add_argument(
        "--tasks", type=list_of(str), default=list(TASKS), help="(default: digits,mnist,mnist-50)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="MNIST files (default: the example's)"
    )
    args = parser.parse_args(argv)
    bench = harness.start(NAME, args, argv)
    results: list[Result] = []
    for task in args.tasks:
        results.append(run(task, "none", None, args.smoke, args.data_dir))
        for eps in args.epsilons:
            for mode in ("record", "silo"):
                results.append(run(task, mode, eps, args.smoke, args.data_dir))
    rows = [
        [r.task, r.mode, r.epsilon,
         "diverged" if r.accuracy is None else round(100 * r.accuracy, 2),
         None if r.reported_epsilon is None else round(r.reported_epsilon, 3),
         None if r.noise_multiplier is None else round(r.noise_multiplier, 3),
         round(r.wall_s, 1)]
        for r in results
    ]  # fmt: skip
    gaps = [
        (r.epsilon - r.reported_epsilon, r)
        for r in results
        if r.epsilon is not None and r.reported_epsilon is not None
    ]
    worst = max(gaps, key=lambda g: abs(g[0]), default=None)
    spends = Target(
        name="every DP run reports the epsilon it was asked for (record: worst silo)",
        target="target - 0.1 <= reported <= target",
        measured="no DP run finished"
        if worst is None
        else f"{len(gaps)} runs; largest gap {worst[0]:.4f} ({worst[1].task}, "
        f"{worst[1].mode}, epsilon {worst[1].epsilon:g})",
        met=None if worst is None else all(0 <= gap <= 0.1 for gap, _ in gaps),
    )
    describe = "; ".join(
        f"{task}: " + ", ".join(f"{k}={v}" for k, v in TASKS[task].items() if k != "example")
        for task in args.tasks
    )
    bench.finish(
        title="Silo-level DP (DP-FedAvg) vs record-level DP (DP-SGD) at equal epsilon",
        parameters={
            "tasks": {t: TASKS[t] for t in args.tasks},
            "epsilons": args.epsilons,
            "record_clip": RECORD_CLIP,
            "silo_clip": SILO_CLIP,
            "seed": 0,
        },
        targets=[spends],
        tables=[
            Table(
                title=f"Final test accuracy at equal target epsilon, IID, seed 0 ({describe})",
                columns=[
                    "data",
                    "DP",
                    "target epsilon",
                    "final accuracy %",
                    "reported epsilon",
                    "noise multiplier (largest)",
                    "wall s",
                ],
                rows=rows,
            )
        ],
        notes=[
            "record: DP-SGD per silo (Opacus), per-example clip 1.0, each silo's noise for the "
            "target at delta 0.1/n over the planned rounds; its epsilon is per silo, for one "
            "record (replace-one).",
            "silo: DP-FedAvg, update clip 1.0, every silo every round (q = 1), fixed "
            "denominator m = the number of silos, the orchestrator's noise for the target at "
            "delta 1e-5; its epsilon is for one whole silo (add/remove).",
            "The noise on the mean is sigma * C / m per weight, against a signal of norm at "
            "most C spread over every weight: with m = 20 silos it dominates at small "
            "epsilon; mnist-50 (the same 12,000 samples over 50 silos) shows the trend. "
            "DP-FedAvg needs hundreds to thousands of silos per round to approach "
            "the non-private accuracy.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
