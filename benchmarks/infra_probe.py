"""One infra-scale measurement in a fresh process (run by ``benchmarks/infra_scale.py``).

``blueprint``: evaluate a blueprint with N silos under Pulumi's mocks (the offline plan's
engine), then run every check the plan runs over it (isolation invariants, Azure's rules, the
job path of one FL round); ``pipeline``: build the Azure ML pipeline for N silos x R
rounds and validate it offline. Prints one JSON object: import seconds, work seconds, the
process's peak resident memory (VmHWM) and its resident memory after the imports, and what
was built.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.memory import rss_bytes

_PROCESS_START = time.perf_counter()


class GcClock:
    """Time spent in Python's cyclic garbage collector (via ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return rss_bytes()


def _checks(run: Any) -> dict[str, int]:
    """Every check of the offline plan over a run: how much was checked, how much broke."""
    from blueprints.plan import _plain
    from policies.azure_rules import check_rules
    from policies.graph import ResourceGraph
    from policies.invariants import check_graph
    from policies.job_path import job_path

    graph = ResourceGraph.build(run.resources, _plain(run.result))
    invariants, rules, movements = check_graph(graph), check_rules(graph), job_path(graph)
    return {
        "movements": len(movements),
        "violations": sum(len(v) for v in [*invariants.values(), *rules.values()])
        + sum(1 for m in movements if not m.ok),
    }


def blueprint(name: str, silos: int) -> dict[str, Any]:
    """Resources, seconds and memory of evaluating blueprint ``name`` at ``silos`` silos."""
    start = time.perf_counter()
    from blueprints.builder import build_sandbox
    from blueprints.mock_runtime import run_under_mocks
    from blueprints.spec import example_spec

    imported = time.perf_counter()
    after_imports = rss_bytes()
    spec = example_spec(name, silos)
    with contextlib.redirect_stdout(sys.stderr), GcClock() as gc_clock:
        run = run_under_mocks(lambda: build_sandbox(spec))
    done = time.perf_counter()
    checks = _checks(run)
    checked = time.perf_counter()
    custom = [r for r in run.resources if r.custom]
    return {
        "resources": len(custom),
        "components": len(run.resources) - len(custom),
        "import_s": imported - start,
        "work_s": done - imported,
        "checks_s": checked - done,
        **checks,
        "gc_s": gc_clock.seconds,
        "gc_collections": gc_clock.collections,
        "rss_after_imports_bytes": after_imports,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def _manifest(silos: int) -> Any:
    from fl_jobs.run.manifest import FederationManifest

    return FederationManifest.model_validate(
        {
            "blueprint": "eyes-off",
            "workspace": {
                "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "rg-bench",
                "name": "mlw-bench",
                "region": "westeurope",
            },
            "orchestrator": {"compute": "orchestrator", "datastore": "models"},
            "silos": [
                {
                    "name": f"silo{i}",
                    "region": "westeurope",
                    "compute": f"silo{i}-compute",
                    "datastore": f"silo{i}_data",
                    "update_datastore": f"updates_silo{i}",
                }
                for i in range(1, silos + 1)
            ],
        }
    )


def pipeline(silos: int, rounds: int) -> dict[str, Any]:
    """Seconds and memory of building the pipeline, ``_validate()`` and the data-flow check."""
    start = time.perf_counter()
    from fl_jobs.aml.code_snapshot import stage_code
    from fl_jobs.aml.dataflow import check_steps
    from fl_jobs.aml.pipeline import build_pipeline
    from fl_jobs.aml.steps_io import describe_steps
    from fl_jobs.config import JobConfig

    imported = time.perf_counter()
    after_imports = rss_bytes()
    manifest = _manifest(silos)
    config = JobConfig.of(example="digits", silos=silos, rounds=rounds)
    with tempfile.TemporaryDirectory(prefix="bench-aml-") as scratch:
        code = stage_code(Path(scratch) / "code", config)
        t0 = time.perf_counter()
        job = build_pipeline(manifest, config, code=code, job_name="fl-bench-scale")
        t1 = time.perf_counter()
        validation = job._validate()
        t2 = time.perf_counter()
        violations = check_steps(describe_steps(job), manifest)
        t3 = time.perf_counter()
    if not validation.passed:
        raise SystemExit(f"pipeline does not validate: {validation.error_messages}")
    if violations:
        raise SystemExit(f"data-flow check failed: {violations}")
    return {
        "steps": len(job.jobs),
        "import_s": imported - start,
        "build_s": t1 - t0,
        "validate_s": t2 - t1,
        "dataflow_s": t3 - t2,
        "rss_after_imports_bytes": after_imports,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.infra_probe", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    bp = sub.add_parser("blueprint", help="evaluate a blueprint under mocks")
    bp.add_argument("--blueprint", required=True)
    bp.add_argument("--silos", type=int, required=True)
    pl = sub.add_parser("pipeline", help="build and validate the Azure ML pipeline")
    pl.add_argument("--silos", type=int, required=True)
    pl.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args(argv)
    if args.what == "blueprint":
        result = blueprint(args.blueprint, args.silos)
    else:
        result = pipeline(args.silos, args.rounds)
    result["process_s"] = time.perf_counter() - _PROCESS_START
    print(json.dumps(result))


if __name__ == "__main__":
    main()
