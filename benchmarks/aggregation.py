"""Aggregation: fl-sandbox's streaming FedAvg vs a memory copy, stack-then-average and Flower.

For each K (updates) x P (float32 parameters per update) the same K updates are generated once
from a seed and handed to every contender in this process:

* memory copy (numpy ``copyto``, torch ``copy_`` with 1 thread and with torch's default
  threads): copies every update into one model-sized buffer; the machine's copy bandwidth for
  these bytes, this run, with as many threads as the contender it is compared with;
* fl-sandbox ``StreamingWeightedMean``: ``add`` each update (in place), then ``result()``,
  single-threaded as the local federation runs it, and with torch's default threads;
* stack-then-average: per tensor, ``np.stack`` the K updates then one weighted sum (BLAS);
* Flower's ``flwr.server.strategy.aggregate.aggregate``, run in the separate Flower environment
  as a subprocess that regenerates the same updates from the same seed (flwr is never
  installed in the product's environment) and measures its own copy bandwidth too.

Every contender starts from the updates and returns a new model; its time is the best of
``--repeats``; GB/s counts the update bytes read (K x P x 4) per second; peak extra memory is
the exact resident high-water mark above the pre-call level (see ``benchmarks/memory.py``).
All results are checked against fl-sandbox's before figures are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil
import torch

from benchmarks import harness
from benchmarks.cli import add_update_grid, parser_for
from benchmarks.flower_runtime import REPO_ROOT, flower_env, flower_python
from benchmarks.memory import exact_peaks_supported
from benchmarks.report import Table, Target
from benchmarks.timing import Measurement, measure, release_freed_memory
from benchmarks.updates import fingerprint, layer_names, make_updates

T = TypeVar("T")
NAME = "aggregation"
COPY_TARGET = 0.80
SPEEDUP_TARGET = 4.0
HEADLINE = (100, 10_000_000)
# Python objects and allocator slack allowed on top of "one model" of extra memory.
MEMORY_SLACK_BYTES = 2 * 2**20
AGREEMENT_ATOL = 1e-5
OURS = "fl-sandbox StreamingWeightedMean (single-threaded, as the federation runs it)"
OURS_DEFAULT = "fl-sandbox StreamingWeightedMean (torch's default threads)"
STACK = "stack-then-average (np.stack + tensordot)"
COPY_NUMPY = "memory copy (numpy copyto)"
COPY_TORCH_1 = "memory copy (torch copy_, 1 thread)"
COPY_TORCH_N = "memory copy (torch copy_, default threads)"
# Compared with the copy that uses as many threads; every other row with the best 1-thread copy.
MULTI_THREADED = frozenset({COPY_TORCH_N, OURS_DEFAULT})
FLOWER = "Flower aggregate()"


@dataclass(frozen=True)
class Row:
    k: int
    params: int
    contender: str
    best_s: float
    median_s: float
    peak_extra_bytes: int
    copy_best_s: float
    agrees: bool | None

    @property
    def input_bytes(self) -> int:
        return self.k * self.params * 4

    @property
    def model_bytes(self) -> int:
        return self.params * 4

    @property
    def gb_per_s(self) -> float:
        return self.input_bytes / self.best_s / 1e9

    @property
    def vs_copy(self) -> float:
        return self.copy_best_s / self.best_s


def _copy_numpy(updates: list[list[np.ndarray]]) -> list[np.ndarray]:
    out = [np.empty_like(layer) for layer in updates[0]]
    for update in updates:
        for dst, src in zip(out, update, strict=True):
            np.copyto(dst, src)
    return out


def _copy_torch(updates: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out = {name: torch.empty_like(t) for name, t in updates[0].items()}
    for update in updates:
        for name, dst in out.items():
            dst.copy_(update[name])
    return out


def _single_threaded(call: Callable[[], T]) -> Callable[[], T]:
    """``call`` under the project's own thread policy (``fl_jobs.core.torch_threads``), which the
    local federation applies to its whole loop, aggregation included."""
    from fl_jobs.core.torch_threads import single_threaded

    def run() -> T:
        with single_threaded():
            return call()

    return run


def _streaming(updates: list[dict[str, torch.Tensor]], weights: np.ndarray) -> Mapping:
    from fl_jobs.core.aggregation import StreamingWeightedMean

    mean = StreamingWeightedMean()
    for update, weight in zip(updates, weights, strict=True):
        mean.add(update, float(weight))
    return mean.finish()


def _stack_then_average(updates: list[list[np.ndarray]], weights: np.ndarray) -> list[np.ndarray]:
    share = (weights / weights.sum()).astype(np.float32)
    return [
        np.tensordot(share, np.stack(layer_updates), axes=1)
        for layer_updates in zip(*updates, strict=True)
    ]


def _as_list(model: Mapping[str, torch.Tensor] | list[np.ndarray], names: list[str]) -> list:
    if isinstance(model, Mapping):
        return [model[name].detach().numpy() for name in names]
    return list(model)


def _flower(k: int, params: int, seed: int, repeats: int) -> dict | None:
    python = flower_python()
    if python is None:
        return None
    with tempfile.TemporaryDirectory(prefix="flwr-agg-") as scratch:
        out = Path(scratch) / "flower.json"
        command = [str(python), "-m", "benchmarks.flower_aggregate", "--k", str(k)]
        command += ["--params", str(params), "--seed", str(seed)]
        command += ["--repeats", str(repeats), "--out", str(out)]
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=flower_env(Path(scratch)),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"Flower aggregation failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def _agrees(reference: list[float], other: list[float]) -> bool:
    return bool(np.allclose(reference, other, rtol=0, atol=AGREEMENT_ATOL))


def _in_process(
    k: int, params: int, seed: int, repeats: int, notes: list[str]
) -> tuple[list[Row], list[float]]:
    """The contenders that run here, on updates generated once; returns rows and the
    fingerprint of fl-sandbox's result. The updates are freed when this returns."""
    arrays, weights = make_updates(k, params, seed)
    names = layer_names(params)
    tensors = [
        {n: torch.from_numpy(a) for n, a in zip(names, update, strict=True)} for update in arrays
    ]
    contenders: dict[str, Callable[[], object]] = {
        COPY_NUMPY: lambda: _copy_numpy(arrays),
        COPY_TORCH_1: _single_threaded(lambda: _copy_torch(tensors)),
        OURS: _single_threaded(lambda: _streaming(tensors, weights)),
    }
    if torch.get_num_threads() > 1:
        contenders[COPY_TORCH_N] = lambda: _copy_torch(tensors)
        contenders[OURS_DEFAULT] = lambda: _streaming(tensors, weights)
    if psutil.virtual_memory().available > 1.2 * k * params * 4:
        contenders[STACK] = lambda: _stack_then_average(arrays, weights)
    else:
        notes.append(f"K={k} P={params:,}: stack-then-average skipped (not enough free memory)")
    measured: dict[str, Measurement] = {
        label: measure(call, repeats) for label, call in contenders.items()
    }
    single_copy = min(measured[COPY_NUMPY].best_s, measured[COPY_TORCH_1].best_s)
    multi_copy = measured[COPY_TORCH_N].best_s if COPY_TORCH_N in measured else single_copy
    reference = fingerprint(_as_list(measured[OURS].result, names))
    rows = []
    for label, m in measured.items():
        agrees = None
        if not label.startswith("memory copy"):
            agrees = _agrees(reference, fingerprint(_as_list(m.result, names)))
        copy_s = multi_copy if label in MULTI_THREADED else single_copy
        rows.append(Row(k, params, label, m.best_s, m.median_s, m.peak_extra_bytes, copy_s, agrees))
    return rows, reference


def run_cell(
    k: int, params: int, seed: int, repeats: int, with_flower: bool
) -> tuple[list[Row], list[str]]:
    """Every contender on one K x P cell; returns rows and notes (skips, checks)."""
    notes: list[str] = []
    input_bytes = k * params * 4
    available = psutil.virtual_memory().available
    if available < 1.3 * input_bytes:
        return [], [
            f"K={k} P={params:,}: skipped, {available / 2**30:.1f} GiB available for "
            f"{input_bytes / 2**30:.1f} GiB of updates"
        ]
    rows, reference = _in_process(k, params, seed, repeats, notes)
    release_freed_memory()
    copy_s = next(r.copy_best_s for r in rows if r.contender == OURS)
    if with_flower:
        flower = _flower(k, params, seed, repeats)
        if flower is None:
            notes.append(
                "Flower not measured: create its environment with benchmarks/flower_env.sh"
            )
        else:
            rows.append(
                Row(
                    k,
                    params,
                    FLOWER,
                    flower["best_s"],
                    flower["median_s"],
                    flower["peak_extra_bytes"],
                    copy_s,
                    _agrees(reference, flower["fingerprint"]),
                )
            )
            notes.append(
                f"K={k} P={params:,}: numpy copy in the Flower process took "
                f"{flower['copy_best_s']:.4f} s (this process: {copy_s:.4f} s); Flower's "
                f"result dtype: {flower['result_dtype']}"
            )
    return rows, notes


def _targets(rows: list[Row], with_flower: bool) -> list[Target]:
    ours = [r for r in rows if r.contender == OURS]
    if not ours:
        return []
    headline = max(ours, key=lambda r: (r.k * r.params, r.params))
    worst_copy = min(ours, key=lambda r: r.vs_copy)
    worst_mem = max(ours, key=lambda r: r.peak_extra_bytes / r.model_bytes)
    targets = [
        Target(
            name="streaming FedAvg throughput vs memory copy (every cell)",
            target=f">= {COPY_TARGET:.0%} of copy bandwidth",
            measured=f"{worst_copy.vs_copy:.0%} worst (K={worst_copy.k}, P={worst_copy.params:,}"
            f"); {headline.vs_copy:.0%} at K={headline.k}, P={headline.params:,}",
            met=worst_copy.vs_copy >= COPY_TARGET,
        ),
        Target(
            name="streaming FedAvg peak extra memory (every cell)",
            target="<= 1 model",
            measured=f"{worst_mem.peak_extra_bytes / worst_mem.model_bytes:.2f} models worst "
            f"(K={worst_mem.k}, P={worst_mem.params:,})",
            met=worst_mem.peak_extra_bytes <= worst_mem.model_bytes + MEMORY_SLACK_BYTES,
            note=f"allowance of {MEMORY_SLACK_BYTES // 2**20} MiB for Python objects",
        ),
    ]
    k, params = HEADLINE
    mine = next((r for r in ours if (r.k, r.params) == HEADLINE), None)
    flower = next(
        (r for r in rows if r.contender == FLOWER and (r.k, r.params) == HEADLINE),
        None,
    )
    speedup_name = f"speed-up over Flower's aggregate() at K={k}, P={params:,}"
    if mine is not None and flower is not None:
        speedup = flower.best_s / mine.best_s
        targets.append(
            Target(
                name=speedup_name,
                target=f">= {SPEEDUP_TARGET:.0f}x",
                measured=f"{speedup:.1f}x ({mine.best_s:.3f} s vs {flower.best_s:.3f} s)",
                met=speedup >= SPEEDUP_TARGET,
                note=f"ceiling here: an aggregator running at copy bandwidth would be "
                f"{flower.best_s / mine.copy_best_s:.1f}x faster than Flower's function",
            )
        )
    else:
        why = "Flower environment absent" if with_flower else "cell or Flower not in this run"
        targets.append(
            Target(
                name=speedup_name,
                target=f">= {SPEEDUP_TARGET:.0f}x",
                measured="not measured",
                met=None,
                note=why,
            )
        )
    return targets


def _table(rows: list[Row]) -> Table:
    return Table(
        title="Aggregating K float32 updates of P parameters (best of the repeats)",
        columns=[
            "K",
            "P",
            "contender",
            "seconds",
            "GB/s",
            "vs copy",
            "vs fl-sandbox",
            "peak extra memory (MB)",
            "extra / model",
            "same result",
        ],
        rows=[
            [
                r.k,
                r.params,
                r.contender,
                round(r.best_s, 4),
                round(r.gb_per_s, 2),
                round(r.vs_copy, 2),
                round(r.best_s / _ours(rows, r).best_s, 2),
                round(r.peak_extra_bytes / 1e6, 1),
                round(r.peak_extra_bytes / r.model_bytes, 2),
                r.agrees,
            ]
            for r in rows
        ],
    )


def _ours(rows: list[Row], like: Row) -> Row:
    return next(r for r in rows if r.contender == OURS and (r.k, r.params) == (like.k, like.params))


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(NAME, __doc__)
    add_update_grid(parser, [10, 50, 100], "numbers of updates")
    parser.add_argument(
        "--no-flower", action="store_true", help="skip the Flower contender (it needs .venv-flwr)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.k, args.params, args.repeats = [2, 5], [20_000], 1
    too_small = [p for p in args.params if p < 4_000]
    if too_small:
        parser.error(f"--params: each size must be >= 4000 (got {too_small})")

    bench = harness.start(NAME, args, argv, flower_python=flower_python())
    rows: list[Row] = []
    notes: list[str] = [
        f"torch's default is {torch.get_num_threads()} intra-op threads; numpy's copy is "
        "single-threaded, torch's copy_ and the BLAS weighted sum may use every thread. The "
        "targets are judged on fl-sandbox as its local "
        "federation runs it: single-threaded (fl_jobs.core.torch_threads). The default-threads row "
        "shows the same code with torch's default: when other processes keep the cores busy, a "
        "multi-threaded memory-bound op waits for its slowest thread.",
        "GB/s = K x P x 4 bytes of updates read / best seconds; 'vs copy' = copy seconds / "
        "contender seconds for the same bytes, measured in the same run, against the copy with "
        "the same threads: the default-threads rows against torch's default-threads copy, "
        "every other row (numpy and the single-threaded rows) against the best 1-thread copy.",
    ]
    for params in args.params:
        for k in args.k:
            cell_rows, cell_notes = run_cell(k, params, args.seed, args.repeats, not args.no_flower)
            rows += cell_rows
            notes += cell_notes
            for r in cell_rows:
                print(
                    f"K={k:>4} P={params:>11,} {r.contender:<45} {r.best_s:8.4f} s "
                    f"{r.gb_per_s:6.2f} GB/s  extra {r.peak_extra_bytes / 1e6:8.1f} MB",
                    file=sys.stderr,
                )
    method = (
        "the exact resident high-water mark (VmHWM, reset via /proc/self/clear_refs)"
        if exact_peaks_supported()
        else "resident set sampled every 1 ms"
    )
    notes.append(f"peak extra memory: {method} above the pre-call level; malloc_trim first.")
    bench.finish(
        title="Aggregation: streaming FedAvg vs memory copy, stack-then-average and Flower",
        parameters={
            "k": args.k,
            "params": args.params,
            "repeats": args.repeats,
            "seed": args.seed,
            "flower": not args.no_flower,
        },
        targets=_targets(rows, not args.no_flower),
        tables=[_table(rows)] if rows else [],
        notes=notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
