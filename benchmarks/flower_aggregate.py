"""Flower's aggregation function on the benchmark's updates (runs in the Flower environment).

Invoked by ``benchmarks/aggregation.py`` with the Flower environment's interpreter. It rebuilds
the same updates from the same seed, measures a numpy memory copy of the same bytes in this
process (so the machine's state is sampled here too), then times
``flwr.server.strategy.aggregate.aggregate`` and writes timings, peak extra memory and a
fingerprint of the result as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.timing import measure
from benchmarks.updates import fingerprint, make_updates


def _copy_all(updates: list[list[np.ndarray]]) -> list[np.ndarray]:
    out = [np.empty_like(layer) for layer in updates[0]]
    for update in updates:
        for dst, src in zip(out, update, strict=True):
            np.copyto(dst, src)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, required=True, help="number of updates")
    parser.add_argument("--params", type=int, required=True, help="parameters per update")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)

    from flwr.server.strategy.aggregate import aggregate

    updates, weights = make_updates(args.k, args.params, args.seed)
    results = [(update, int(w)) for update, w in zip(updates, weights, strict=True)]
    copy = measure(lambda: _copy_all(updates), args.repeats)
    flower = measure(lambda: aggregate(results), args.repeats)
    args.out.write_text(
        json.dumps(
            {
                "copy_best_s": copy.best_s,
                "copy_peak_extra_bytes": copy.peak_extra_bytes,
                "best_s": flower.best_s,
                "median_s": flower.median_s,
                "peak_extra_bytes": flower.peak_extra_bytes,
                "memory_method": flower.memory_method,
                "result_dtype": str(flower.result[0].dtype),
                "fingerprint": fingerprint(flower.result),
            }
        )
    )


if __name__ == "__main__":
    main()
