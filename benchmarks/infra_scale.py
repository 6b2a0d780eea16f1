"""Infra scale: blueprint evaluation under Pulumi's mocks and Azure ML pipeline building, by size.

Each size runs in a fresh process (``benchmarks/infra_probe.py``) so that its peak memory is its
own: every blueprint is evaluated at 1, 10, 50 and 100 silos (resources, seconds, peak
resident memory) and checked the way the offline plan checks it (isolation invariants, Azure's
rules, the job path of one FL round), and the pipeline built then validated offline
(``job._validate()``) at 10 and 100 silos x 5 rounds. Growth must be linear per silo: the
marginal cost of one more silo (extra resources, seconds with the checks, memory between
consecutive sizes) must stay the same as the federation grows; resources exactly, seconds and
memory within a factor of 1.5.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from benchmarks import harness
from benchmarks.cli import list_of, parser_for, positive_int
from benchmarks.flower_runtime import REPO_ROOT
from benchmarks.report import Table, Target
from blueprints.catalog import BLUEPRINT_NAMES

NAME = "infra_scale"
LINEAR_TOLERANCE = 1.5
MAX_SILOS = 100


@dataclass(frozen=True)
class Step:
    """The marginal cost of one more silo between two measured sizes."""

    from_silos: int
    to_silos: int
    resources: float
    seconds: float
    seconds_outside_gc: float
    checks_seconds: float
    memory_mb: float


def _probe(*arguments: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.infra_probe", *arguments]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _steps(sizes: list[int], runs: list[dict[str, Any]]) -> list[Step]:
    steps = []
    for (a, ra), (b, rb) in zip(
        zip(sizes, runs, strict=True), zip(sizes[1:], runs[1:], strict=True), strict=False
    ):
        n = b - a
        steps.append(
            Step(
                a,
                b,
                (rb["resources"] - ra["resources"]) / n,
                (_total(rb) - _total(ra)) / n,
                (_total(rb) - rb["gc_s"] - _total(ra) + ra["gc_s"]) / n,
                (rb["checks_s"] - ra["checks_s"]) / n,
                (rb["peak_rss_bytes"] - ra["peak_rss_bytes"]) / n / 1e6,
            )
        )
    return steps


def _total(run: dict[str, Any]) -> float:
    """Seconds to evaluate and check a blueprint (what `plan` spends)."""
    return float(run["work_s"] + run["checks_s"])


def _spread(values: list[float]) -> float:
    """max / min of positive marginal costs (1.0 = perfectly linear)."""
    positive = [v for v in values if v > 0]
    if len(positive) != len(values) or not positive:
        return float("inf")
    return max(positive) / min(positive)


def _linearity_targets(blueprint: str, steps: list[Step]) -> list[Target]:
    if not steps:
        return [
            Target(
                name="blueprint growth is linear per silo",
                target="constant marginal cost",
                measured="not measured",
                met=None,
                note="needs at least two sizes",
            )
        ]
    resources = sorted({round(s.resources, 6) for s in steps})
    seconds = _spread([s.seconds for s in steps])
    memory = _spread([s.memory_mb for s in steps])
    per_step = "; ".join(f"{s.from_silos}->{s.to_silos}" for s in steps)
    return [
        Target(
            name=f"{blueprint}: resources per added silo constant",
            target="identical at every size",
            measured=", ".join(f"{r:g}" for r in resources) + f" ({per_step})",
            met=len(resources) == 1,
        ),
        Target(
            name=f"{blueprint}: seconds per added silo constant, checks included",
            target=f"max/min <= {LINEAR_TOLERANCE}",
            measured=f"{seconds:.2f} ("
            + ", ".join(f"{s.seconds * 1000:.0f} ms" for s in steps)
            + ")",
            met=seconds <= LINEAR_TOLERANCE,
        ),
        Target(
            name=f"{blueprint}: peak memory per added silo constant",
            target=f"max/min <= {LINEAR_TOLERANCE}",
            measured=f"{memory:.2f} (" + ", ".join(f"{s.memory_mb:.1f} MB" for s in steps) + ")",
            met=memory <= LINEAR_TOLERANCE,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(NAME, __doc__)
    parser.add_argument(
        "--blueprints",
        type=list_of(str),
        default=list(BLUEPRINT_NAMES),
        help="blueprints to evaluate, comma-separated (default: every blueprint)",
    )
    parser.add_argument(
        "--silos",
        type=list_of(positive_int),
        default=[1, 10, 50, 100],
        help="federation sizes for the blueprint, comma-separated (default: 1,10,50,100)",
    )
    parser.add_argument(
        "--pipeline-silos",
        type=list_of(positive_int),
        default=[10, 100],
        help="federation sizes for the Azure ML pipeline (default: 10,100)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=5, help="pipeline rounds (default: 5)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.blueprints, args.silos, args.pipeline_silos, args.rounds = ["minimal"], [1, 2], [2], 1
    unknown = [b for b in args.blueprints if b not in BLUEPRINT_NAMES]
    if unknown:
        parser.error(f"--blueprints: unknown {unknown}; choose from {', '.join(BLUEPRINT_NAMES)}")
    too_many = [n for n in [*args.silos, *args.pipeline_silos] if n > MAX_SILOS]
    if too_many:
        parser.error(f"--silos/--pipeline-silos: at most {MAX_SILOS} silos (got {too_many})")
    sizes = sorted(set(args.silos))

    bench = harness.start(NAME, args, argv)
    measured: dict[str, list[dict[str, Any]]] = {}
    for name in args.blueprints:
        runs = []
        for n in sizes:
            run = _probe("blueprint", "--blueprint", name, "--silos", str(n))
            print(
                f"{name} {n:>3} silos: {run['resources']} resources, {run['work_s']:.1f} s + "
                f"{run['checks_s']:.2f} s checks, {run['violations']} violations, peak "
                f"{run['peak_rss_bytes'] / 1e6:.0f} MB",
                file=sys.stderr,
            )
            runs.append(run)
        measured[name] = runs
    pipelines = []
    for n in sorted(set(args.pipeline_silos)):
        run = _probe("pipeline", "--silos", str(n), "--rounds", str(args.rounds))
        print(
            f"pipeline {n:>3} silos x {args.rounds}: {run['steps']} steps, build "
            f"{run['build_s']:.1f} s, validate {run['validate_s']:.1f} s",
            file=sys.stderr,
        )
        pipelines.append((n, run))

    blueprint_table = Table(
        title="Blueprints evaluated under mocks and checked like `plan` (fresh process per size)",
        columns=[
            "blueprint",
            "silos",
            "resources",
            "resources / silo",
            "evaluate s",
            "of which in Python's GC",
            "checks s",
            "job-path movements",
            "violations",
            "peak memory (MB)",
            "import s",
        ],
        rows=[
            [
                name,
                n,
                r["resources"],
                round(r["resources"] / n, 1),
                round(r["work_s"], 2),
                round(r["gc_s"], 2),
                round(r["checks_s"], 2),
                r["movements"],
                r["violations"],
                round(r["peak_rss_bytes"] / 1e6),
                round(r["import_s"], 2),
            ]
            for name, runs in measured.items()
            for n, r in zip(sizes, runs, strict=True)
        ],
    )
    steps_by_blueprint = {name: _steps(sizes, runs) for name, runs in measured.items()}
    steps_table = Table(
        title="Marginal cost of one more silo between consecutive sizes",
        columns=[
            "blueprint",
            "sizes",
            "resources / silo",
            "ms / silo (with checks)",
            "ms / silo outside GC",
            "of which checks (ms)",
            "MB / silo",
        ],
        rows=[
            [
                name,
                f"{s.from_silos} -> {s.to_silos}",
                round(s.resources, 2),
                round(s.seconds * 1000),
                round(s.seconds_outside_gc * 1000),
                round(s.checks_seconds * 1000, 1),
                round(s.memory_mb, 2),
            ]
            for name, steps in steps_by_blueprint.items()
            for s in steps
        ],
    )
    pipeline_table = Table(
        title=f"Azure ML pipeline, {args.rounds} rounds: build, offline _validate(), data-flow "
        "check (fresh process per size)",
        columns=[
            "silos",
            "steps",
            "build s",
            "validate s",
            "data-flow check s",
            "peak memory (MB)",
            "import s",
        ],
        rows=[
            [
                n,
                r["steps"],
                round(r["build_s"], 2),
                round(r["validate_s"], 2),
                round(r["dataflow_s"], 3),
                round(r["peak_rss_bytes"] / 1e6),
                round(r["import_s"], 2),
            ]
            for n, r in pipelines
        ],
    )
    targets = [
        target
        for name, steps in steps_by_blueprint.items()
        for target in _linearity_targets(name, steps)
    ]
    clean = all(r["violations"] == 0 for runs in measured.values() for r in runs)
    targets.append(
        Target(
            name="every blueprint passes every check at every size",
            target="0 violations",
            measured="0" if clean else "violations found (see the table)",
            met=clean,
        )
    )
    if len(pipelines) >= 2:
        (n0, p0), (n1, p1) = pipelines[0], pipelines[-1]
        ratio = (p1["build_s"] + p1["validate_s"]) / (p0["build_s"] + p0["validate_s"])
        targets.append(
            Target(
                name=f"pipeline build + validate grows linearly ({n0} -> {n1} silos)",
                target=f"time ratio <= {LINEAR_TOLERANCE} x {n1 / n0:g}",
                measured=f"{ratio:.1f}x for {n1 / n0:g}x the silos",
                met=ratio <= LINEAR_TOLERANCE * n1 / n0,
            )
        )
    bench.finish(
        title="Infra scale: blueprint under mocks and Azure ML pipeline build, by federation size",
        parameters={
            "blueprints": list(args.blueprints),
            "silos": sizes,
            "pipeline_silos": sorted(set(args.pipeline_silos)),
            "rounds": args.rounds,
        },
        targets=targets,
        tables=[blueprint_table, steps_table, pipeline_table],
        notes=[
            "evaluate s: spec -> every resource registered and resolved under mocks; checks s: "
            "the isolation invariants, Azure's rules and the job path over the result (what "
            "`plan` adds); imports excluded and shown separately; peak memory: the process's "
            "resident high-water mark (VmHWM), imports included. 'of which in Python's GC': "
            "time inside the cyclic garbage collector during the evaluation (gc.callbacks).",
            "Pipeline: seconds exclude imports and the code snapshot; the data-flow check is "
            "the silo-rule check that runs before any submission.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
