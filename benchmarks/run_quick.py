"""The quick set (``make bench``): every benchmark at sizes that finish in about 15 minutes on
2 cores, then RESULTS.md regenerated.

Each benchmark runs as its own process, so that imports and memory start fresh and one failure
does not hide the others' figures; the exit code is non-zero if any failed. The Flower
environment is created first if needed (idempotent); without it the Flower contenders are
reported as not measured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks import results
from benchmarks.flower_runtime import REPO_ROOT, FlowerEnvironmentError, ensure_flower_env

# (module, arguments): the quick sizes. The non-IID FedAvg run is capped (see its table).
QUICK: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aggregation", ("--k", "10,50,100", "--params", "1M,10M", "--repeats", "3")),
    ("secure_aggregation", ("--k", "10,100", "--params", "1M,10M", "--repeats", "3")),
    ("local_vs_flower", ("--rounds", "5,20")),
    ("fedavg_paper", ("--max-rounds", "150", "--non-iid-max-rounds", "100")),
    ("strategies", ()),
    ("infra_scale", ("--silos", "1,10,50,100", "--pipeline-silos", "10,100")),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_quick", description=__doc__)
    parser.add_argument(
        "--only",
        choices=[name for name, _ in QUICK],
        action="append",
        help="run only this benchmark (repeatable); RESULTS.md still lists every JSON",
    )
    parser.add_argument(
        "--no-flower-setup",
        action="store_true",
        help="do not create .venv-flwr (Flower contenders are then not measured)",
    )
    args = parser.parse_args(argv)
    if not args.no_flower_setup:
        try:
            ensure_flower_env()
        except FlowerEnvironmentError as exc:
            print(
                f"warning: {exc}; Flower contenders will be reported as not measured",
                file=sys.stderr,
            )
    failed: list[str] = []
    for name, arguments in QUICK:
        if args.only and name not in args.only:
            continue
        print(f"== benchmarks.{name} {' '.join(arguments)}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}", *arguments], cwd=REPO_ROOT
        )
        print(
            f"== benchmarks.{name}: exit {done.returncode} after "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        if done.returncode != 0:
            failed.append(name)
    results.main([])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
