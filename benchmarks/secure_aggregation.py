"""Secure aggregation: its cost against plain streaming FedAvg, for K silos of P parameters.

For each K x P cell the same K float32 updates (``benchmarks/updates.py``, sample counts 50 to
999) are aggregated

* in plain: fl-sandbox's ``StreamingWeightedMean`` (add each update, finish), as the
  orchestrator runs it today;
* securely, on the orchestrator: ``MaskedSum`` (add the K masked updates, rebuild the self-mask
  seeds from the survivors' reveals, remove those masks, decode), with every silo present, and
  with one silo lost after masking (its pairwise masks with every survivor are rebuilt and
  removed too);
* securely, on one silo: ``share_secrets`` (X25519 agreements, Shamir sharing, sealing) and
  ``masked_update`` (fixed-point encoding, one self mask and K - 1 pairwise masks).

Everything runs single-threaded, as the local federation runs. Times are the best of
``--repeats``; "vs plain" divides by the plain aggregation's best time in the same cell; peak
extra memory is the resident high-water mark above the pre-call level (``benchmarks/memory``).
Every result is compared with the float64 weighted mean and must be within the fixed-point
bound plus half a float32 ulp (the plain mean's own float32 error is shown beside it).

Then whole local runs (``benchmarks/secure_federation.py``): ``fl-sandbox run`` on digits with
10 silos for 5 rounds, with and without ``--secure-aggregation``, in back-to-back pairs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psutil
import torch

from benchmarks import harness
from benchmarks.cli import add_update_grid, parser_for
from benchmarks.report import Table, Target
from benchmarks.secure_federation import e2e_table, e2e_target, measure_pairs
from benchmarks.timing import Measurement, measure, release_freed_memory
from benchmarks.updates import layer_names, make_update, make_updates
from fl_jobs.core.aggregation import StreamingWeightedMean
from fl_jobs.core.torch_threads import single_threaded
from fl_jobs.secure_aggregation import (
    MaskedSum,
    MaskedUpdate,
    PublicKeys,
    Reveal,
    SecureAggregationClient,
    SecureAggregationSession,
    ShareBundle,
    SiloKeys,
)

NAME = "secure_aggregation"
PLAIN = "plain StreamingWeightedMean (orchestrator)"
SECURE = "secure MaskedSum, all silos (orchestrator)"
SECURE_DROP = "secure MaskedSum, 1 silo lost after masking (orchestrator)"
SILO_MASK = "secure masked_update (one silo: encode + K masks)"
SILO_SHARE = "secure share_secrets (one silo: K agreements + Shamir + sealing)"
Weights = dict[str, torch.Tensor]
#: The whole-run comparison: the local vs Flower benchmark's task size.
E2E_SILOS, E2E_ROUNDS = 10, 5


@dataclass(frozen=True)
class Row:
    k: int
    params: int
    contender: str
    best_s: float
    median_s: float
    peak_extra_bytes: int
    plain_s: float
    max_error: float | None
    within_bound: bool | None

    @property
    def model_bytes(self) -> int:
        return self.params * 4


def _tensors(arrays: list[np.ndarray], names: list[str]) -> Weights:
    return {n: torch.from_numpy(a) for n, a in zip(names, arrays, strict=True)}


def _silos(k: int) -> list[str]:
    return [f"silo-{i:03d}" for i in range(k)]


def _exact_sum(k: int, params: int, seed: int, counts: np.ndarray) -> np.ndarray:
    """``sum_i n_i * update_i`` in float64, regenerating one update at a time."""
    total = np.zeros(params, dtype=np.float64)
    for i in range(k):
        total += float(counts[i]) * np.concatenate(make_update(params, seed, i)).astype(np.float64)
    return total


def _error(result: Weights, names: list[str], exact: np.ndarray, bound: float) -> tuple:
    """Largest |result - exact| and whether every element is within ``bound`` plus half a
    float32 ulp of the exact value."""
    got = np.concatenate([result[n].reshape(-1).numpy() for n in names]).astype(np.float64)
    error = np.abs(got - exact)
    half_ulp = 0.5 * np.spacing(np.abs(exact).astype(np.float32) + np.float32(bound))
    return float(error.max()), bool(np.all(error <= bound + half_ulp.astype(np.float64)))


def _connect(
    session: SecureAggregationSession, clients: dict[str, SecureAggregationClient]
) -> tuple[dict[str, PublicKeys], dict[str, dict[str, ShareBundle]]]:
    keys = {s: c.public_keys for s, c in clients.items()}
    outgoing = {s: c.share_secrets(keys) for s, c in clients.items()}
    for silo, client in clients.items():
        client.receive_shares(outgoing[o][silo] for o in session.silos if o != silo)
    return keys, outgoing


def _orchestrate(
    session: SecureAggregationSession,
    keys: dict[str, PublicKeys],
    template: Weights,
    masked: list[MaskedUpdate],
    reveals: list[Reveal],
) -> Weights:
    total = MaskedSum(session, keys, template)
    for update in masked:
        total.add(update)
    return total.finish(reveals)


def _plain(updates: list[Weights], counts: np.ndarray) -> Weights:
    mean = StreamingWeightedMean()
    for update, n in zip(updates, counts, strict=True):
        mean.add(update, float(n))
    return mean.finish()


def _fresh(prepare: Callable[[], Callable[[], object]], repeats: int) -> Callable[[], object]:
    """A call that runs one of ``repeats`` prepared one-shot calls (clients mask and share
    once), so that only the measured step is timed."""
    calls = [prepare() for _ in range(repeats)]
    return lambda: calls.pop()()


def run_cell(k: int, params: int, seed: int, repeats: int) -> tuple[list[Row], list[str]]:
    """Every contender on one K x P cell; returns rows and notes."""
    needed = k * params * 8 + 6 * params * 8
    available = psutil.virtual_memory().available
    if available < 1.3 * needed:
        return [], [
            f"K={k} P={params:,}: skipped, {available / 2**30:.1f} GiB available for "
            f"{needed / 2**30:.1f} GiB of masked updates and work space"
        ]
    names = layer_names(params)
    arrays, counts = make_updates(k, params, seed)
    updates = [_tensors(a, names) for a in arrays]
    template = {n: torch.zeros_like(t) for n, t in updates[0].items()}
    total_samples = int(counts.sum())
    exact_sum = _exact_sum(k, params, seed, counts)
    exact = exact_sum / total_samples
    silos = _silos(k)
    session = SecureAggregationSession(f"bench-{seed}", 1, silos, max_samples=int(counts.max()))
    bound = session.codec.error_bound(k, total_samples)
    measured: dict[str, Measurement] = {}
    errors: dict[str, tuple[float, bool | None]] = {}

    with single_threaded():
        measured[PLAIN] = measure(lambda: _plain(updates, counts), repeats)
        # The plain mean is not held to the fixed-point bound: its error is shown only.
        errors[PLAIN] = (_error(measured[PLAIN].result, names, exact, bound)[0], None)
        updates.clear()  # frees the float32 updates before the masked ones are made
        arrays.clear()
        measured[PLAIN] = _drop_result(measured[PLAIN])
        release_freed_memory()

        # Fixed per-silo keys and self-mask secrets let twin clients (below) mask identically.
        own = {s: (SiloKeys.generate(), os.urandom(32)) for s in silos}
        clients = {
            s: SecureAggregationClient(session, s, keys=own[s][0], self_mask_secret=own[s][1])
            for s in silos
        }
        keys, outgoing = _connect(session, clients)
        first = silos[0]
        incoming = [outgoing[o][first] for o in silos if o != first]

        def sharer() -> Callable[[], object]:
            again = SecureAggregationClient(session, first, keys=own[first][0])
            return lambda: again.share_secrets(keys)

        measured[SILO_SHARE] = measure(_fresh(sharer, repeats), repeats)
        update0 = _tensors(make_update(params, seed, 0), names)

        def masker() -> Callable[[], object]:
            again = SecureAggregationClient(
                session, first, keys=own[first][0], self_mask_secret=own[first][1]
            )
            again.share_secrets(keys)
            again.receive_shares(incoming)
            return lambda: again.masked_update(update0, int(counts[0]))

        measured[SILO_MASK] = measure(_fresh(masker, repeats), repeats)
        masked = [measured[SILO_MASK].result]
        for i, silo in enumerate(silos[1:], start=1):
            update = _tensors(make_update(params, seed, i), names)
            masked.append(clients[silo].masked_update(update, int(counts[i])))
        measured[SILO_MASK] = _drop_result(measured[SILO_MASK])

        reveals = [clients[s].reveal(silos, []) for s in silos]
        measured[SECURE] = measure(
            lambda: _orchestrate(session, keys, template, masked, reveals), repeats
        )
        errors[SECURE] = _error(measured[SECURE].result, names, exact, bound)
        measured[SECURE] = _drop_result(measured[SECURE])

        # One silo lost after masking: the survivors answer another split, so they are the
        # same silos (same keys and self-mask secrets, hence the same masked vectors) with
        # a new exchange of shares.
        lost = silos[-1]
        survivors = silos[:-1]
        twins = {
            s: SecureAggregationClient(session, s, keys=own[s][0], self_mask_secret=own[s][1])
            for s in silos
        }
        twin_keys, _ = _connect(session, twins)
        assert twin_keys == keys
        drop_reveals = [twins[s].reveal(survivors, [lost]) for s in survivors]
        measured[SECURE_DROP] = measure(
            lambda: _orchestrate(session, keys, template, masked[:-1], drop_reveals), repeats
        )
        kept = total_samples - int(counts[-1])
        exact_kept = (
            exact_sum
            - float(counts[-1])
            * np.concatenate(make_update(params, seed, k - 1)).astype(np.float64)
        ) / kept
        errors[SECURE_DROP] = _error(
            measured[SECURE_DROP].result,
            names,
            exact_kept,
            session.codec.error_bound(k - 1, kept),
        )
        measured[SECURE_DROP] = _drop_result(measured[SECURE_DROP])
        masked.clear()
        release_freed_memory()

    plain_s = measured[PLAIN].best_s
    rows = []
    for label, m in measured.items():
        max_error, within = errors.get(label, (None, None))
        rows.append(
            Row(
                k,
                params,
                label,
                m.best_s,
                m.median_s,
                m.peak_extra_bytes,
                plain_s,
                max_error,
                within,
            )
        )
    notes = [
        f"K={k} P={params:,}: fixed-point bound K / (2^(f+1) N) = {bound:.2g} (f = "
        f"{session.codec.scale_bits}, N = {total_samples:,} samples)"
    ]
    return rows, notes


def _drop_result(m: Measurement) -> Measurement:
    """The measurement without its (large) result, once it was checked."""
    return Measurement(m.best_s, m.median_s, m.peak_extra_bytes, m.memory_method, None)


def _targets(rows: list[Row]) -> list[Target]:
    checked = [r for r in rows if r.within_bound is not None]
    secure = [r for r in checked if r.contender != PLAIN]
    worst = max(secure, key=lambda r: r.max_error or 0.0, default=None)
    targets = [
        Target(
            name="secure sum = weighted mean within the fixed-point bound (every cell, with "
            "and without a dropout)",
            target="every element within K / (2^(f+1) N) + half a float32 ulp",
            measured=(
                f"{sum(r.within_bound is True for r in secure)} of {len(secure)} results "
                f"within; largest error {worst.max_error:.2g}"
                if worst is not None
                else "not measured"
            ),
            met=all(r.within_bound for r in secure) if secure else None,
        )
    ]
    for k in (10, 100):
        mine = [r for r in rows if r.k == k and r.contender == SECURE]
        silo = [r for r in rows if r.k == k and r.contender == SILO_MASK]
        if not mine:
            targets.append(
                Target(
                    name=f"secure aggregation overhead vs plain at K={k}",
                    target="reported (issue 10)",
                    measured="not measured",
                    met=None,
                    note=f"K={k} not in this run",
                )
            )
            continue
        parts = []
        for r in sorted(mine, key=lambda r: r.params):
            s = next(x for x in silo if x.params == r.params)
            parts.append(
                f"P={r.params:,}: orchestrator {r.best_s / r.plain_s:.1f}x, one silo's "
                f"masking {s.best_s / s.plain_s:.1f}x"
            )
        targets.append(
            Target(
                name=f"secure aggregation overhead vs plain at K={k}",
                target="reported (issue 10)",
                measured="; ".join(parts),
                met=True,
                note="times of plain streaming aggregation of the same K updates",
            )
        )
    return targets


def _table(rows: list[Row]) -> Table:
    return Table(
        title="Secure vs plain aggregation of K float32 updates of P parameters (best of the "
        "repeats, single-threaded)",
        columns=[
            "K",
            "P",
            "contender",
            "seconds",
            "vs plain",
            "peak extra memory (MB)",
            "extra / model",
            "max error vs float64 mean",
            "within bound",
        ],
        rows=[
            [
                r.k,
                r.params,
                r.contender,
                round(r.best_s, 4),
                round(r.best_s / r.plain_s, 2),
                round(r.peak_extra_bytes / 1e6, 1),
                round(r.peak_extra_bytes / r.model_bytes, 2),
                r.max_error,
                r.within_bound,
            ]
            for r in rows
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(NAME, __doc__)
    add_update_grid(parser, [10, 100], "numbers of silos, each >= 2")
    parser.add_argument(
        "--e2e-pairs",
        type=int,
        default=5,
        help="back-to-back pairs of whole local runs with and without secure aggregation "
        "(digits, 10 silos, 5 rounds); 0 skips them (default: 5)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.k, args.params, args.repeats, args.e2e_pairs = [3, 5], [20_000], 1, 1
    if args.e2e_pairs < 0:
        parser.error(f"--e2e-pairs must be >= 0 (got {args.e2e_pairs})")
    if any(k < 2 for k in args.k):
        parser.error(f"--k: secure aggregation needs at least 2 silos (got {args.k})")
    too_small = [p for p in args.params if p < 4_000]
    if too_small:
        parser.error(f"--params: each size must be >= 4000 (got {too_small})")

    bench = harness.start(NAME, args, argv)
    rows: list[Row] = []
    notes: list[str] = [
        "Each silo's masking costs K - 1 pairwise masks plus its self mask, O(K x P) work; "
        "silos mask in parallel on their own machines, so a round's critical path adds one "
        "silo's masking and the orchestrator's unmasking. In the local federation every silo "
        "masks on the same machine, so the round's masking work there is K times one silo's.",
        "The orchestrator's secure rows include rebuilding each survivor's self-mask seed "
        "(Shamir, K x threshold shares) and expanding its mask: K mask streams of P words, "
        "plus K - 1 pairwise streams per lost silo.",
        "Peak extra memory of the secure orchestrator: the uint64 sum (2 float32 models) and "
        "the float32 result (1 model), decoded chunk by chunk, against the plain mean's 1 "
        "model. 'extra / model' divides by one float32 model (4P bytes).",
    ]
    for params in args.params:
        for k in args.k:
            cell_rows, cell_notes = run_cell(k, params, args.seed, args.repeats)
            rows += cell_rows
            notes += cell_notes
            for r in cell_rows:
                print(
                    f"K={k:>4} P={params:>11,} {r.contender:<66} {r.best_s:8.4f} s "
                    f"{r.best_s / r.plain_s:7.2f}x  extra {r.peak_extra_bytes / 1e6:8.1f} MB",
                    file=sys.stderr,
                )
    targets, tables = _targets(rows), [_table(rows)] if rows else []
    if args.e2e_pairs:
        silos, rounds = (3, 2) if args.smoke else (E2E_SILOS, E2E_ROUNDS)
        pairs = measure_pairs(silos, rounds, args.e2e_pairs)
        targets.append(e2e_target(silos, rounds, pairs))
        tables.append(e2e_table(silos, rounds, pairs))
    bench.finish(
        title="Secure aggregation: overhead against plain streaming FedAvg",
        parameters={
            "k": args.k,
            "params": args.params,
            "repeats": args.repeats,
            "seed": args.seed,
            "e2e_pairs": args.e2e_pairs,
        },
        targets=targets,
        tables=tables,
        notes=notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
