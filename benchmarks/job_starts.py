"""Job starts per FL job on Azure ML, counted from the built submissions: pipeline vs agents.

Every Azure ML step is one job start (scheduling, container start, code snapshot download,
data mount). For each engine, federation size K and round count R the submission is built the
way ``fl-sandbox submit`` builds it (``fl_jobs.aml.submit.prepare_job``: build, offline
validation, data-flow check) and its steps are counted; nothing is sent. Each cell runs in its
own process under a time budget (``--budget``, 120 s): a cell that does not build within it is
reported as not built, with the count its formula gives (1 + K + R(K + 1)), marked as such.
Run: ``python -m benchmarks.job_starts``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.cli import list_of, parser_for, positive_int
from benchmarks.report import Table

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("pipeline", "agents")


def manifest(silos: int) -> Any:
    """An eyes-off style manifest of ``silos`` Azure ML cluster silos, with a model store."""
    from benchmarks.infra_probe import _manifest

    base = _manifest(silos)
    orchestrator = base.orchestrator.model_copy(
        update={"model_store_url": "https://stbenchmodels.blob.core.windows.net"}
    )
    return base.model_copy(update={"orchestrator": orchestrator})


def build(engine: str, silos: int, rounds: int) -> dict[str, Any]:
    """Build, validate and check one submission; its step count and the seconds it took."""
    from fl_jobs.aml.submit import prepare_job
    from fl_jobs.config import load_job_config

    config = load_job_config(None, {"example": "digits", "rounds": rounds, "silos": silos})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare_job(
            manifest(silos), config, code_dir=Path(tmp) / "code", job_name="fl-bench-starts",
            engine=engine,
        )  # fmt: skip
    return {"steps": len(prepared.job.jobs), "seconds": time.perf_counter() - started}


def cell(engine: str, silos: int, rounds: int, budget: float) -> dict[str, Any] | None:
    """``build`` in a fresh process; None when it does not finish within ``budget`` seconds."""
    code = (
        "import json, sys; from benchmarks.job_starts import build; "
        f"print(json.dumps(build({engine!r}, {silos}, {rounds})))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
            timeout=budget, check=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def formula(engine: str, silos: int, rounds: int) -> int:
    return silos + 1 if engine == "agents" else 1 + silos + rounds * (silos + 1)


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("job_starts", __doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--k", type=list_of(positive_int), default=[2, 10, 100])
    parser.add_argument("--rounds", type=list_of(positive_int), default=[20, 50])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per build")
    args = parser.parse_args(argv)
    if args.smoke:
        args.k, args.rounds = [2], [2]
    bench = harness.start("job_starts", args, argv)
    rows = []
    for k in args.k:
        for r in args.rounds:
            for engine in ENGINES:
                result = cell(engine, k, r, args.budget)
                expected = formula(engine, k, r)
                if result is not None and result["steps"] != expected:
                    raise SystemExit(f"{engine} K={k} R={r}: {result['steps']} != {expected}")
                rows.append(
                    [
                        engine,
                        k,
                        r,
                        result["steps"] if result else f"{expected} (formula; not built)",
                        round(result["seconds"], 1) if result else f"> {args.budget:.0f}",
                    ]
                )
                print(rows[-1], flush=True)
    bench.finish(
        title="Azure ML job starts per FL job: unrolled pipeline vs model-store agents",
        parameters={"k": args.k, "rounds": args.rounds, "budget_s": args.budget},
        tables=[
            Table(
                title="Steps (= job starts) of the built submission, and build seconds "
                "(build + offline validation + data-flow check, fresh process)",
                columns=["engine", "K", "R", "job starts", "build s"],
                rows=rows,
            )
        ],
        notes=[
            "agents: K silo agent steps + 1 orchestrator step, all started together; pipeline: "
            "init + K preprocess + R x (K train + 1 aggregate), each round's steps waiting on "
            "the previous round.",
            "A count marked 'formula; not built' is the pipeline's formula for a cell whose "
            "build did not finish within the budget on this machine.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
