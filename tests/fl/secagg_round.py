"""One secure-aggregation round driven in a single process, for the tests: the message flow
the federation carries between workers and the orchestrator, with dropouts where asked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from fl_jobs.secure_aggregation import (
    MaskedSum,
    MaskedUpdate,
    PublicKeys,
    SecureAggregationClient,
    SecureAggregationSession,
)

Weights = dict[str, torch.Tensor]


def connect(
    session: SecureAggregationSession, clients: Mapping[str, SecureAggregationClient] | None = None
) -> tuple[dict[str, SecureAggregationClient], dict[str, PublicKeys]]:
    """Clients for every silo (fresh keys unless given), keys advertised, shares relayed."""
    clients = dict(clients or {s: SecureAggregationClient(session, s) for s in session.silos})
    keys = {silo: client.public_keys for silo, client in clients.items()}
    outgoing = {silo: client.share_secrets(keys) for silo, client in clients.items()}
    for silo, client in clients.items():
        client.receive_shares(outgoing[other][silo] for other in session.silos if other != silo)
    return clients, keys


def mask_all(
    clients: Mapping[str, SecureAggregationClient],
    updates: Mapping[str, Weights],
    counts: Mapping[str, int],
) -> dict[str, MaskedUpdate]:
    return {s: c.masked_update(updates[s], counts[s]) for s, c in clients.items()}


def unmask(
    total: MaskedSum,
    clients: Mapping[str, SecureAggregationClient],
    *,
    silent: Iterable[str] = (),
) -> Weights:
    """Ask every contributor except ``silent`` ones for its reveal, then finish."""
    quiet = set(silent)
    reveals = [
        clients[s].reveal(total.contributors, total.missing)
        for s in total.contributors
        if s not in quiet
    ]
    return total.finish(reveals)


def secure_round(
    session: SecureAggregationSession,
    updates: Mapping[str, Weights],
    counts: Mapping[str, int],
    *,
    lost: Sequence[str] = (),
    silent: Sequence[str] = (),
) -> Weights:
    """A whole round: ``lost`` silos mask but their update never arrives; ``silent`` ones
    send their update but not their reveal."""
    clients, keys = connect(session)
    masked = mask_all(clients, updates, counts)
    total = MaskedSum(session, keys, next(iter(updates.values())))
    for silo in session.silos:
        if silo not in lost:
            total.add(masked[silo])
    return unmask(total, clients, silent=silent)


def exact_mean(
    updates: Mapping[str, Weights], counts: Mapping[str, int], silos: Iterable[str]
) -> dict[str, np.ndarray]:
    """The weighted mean in float64 (exact to about 1e-16 relative)."""
    chosen = list(silos)
    total = sum(counts[s] for s in chosen)
    first = updates[chosen[0]]
    return {
        key: sum(counts[s] * updates[s][key].double().numpy() for s in chosen) / total
        for key in first
    }


def max_excess(result: Weights, exact: Mapping[str, np.ndarray], bound: float) -> float:
    """How far the largest error exceeds ``bound`` plus half a float32 ulp of the exact
    value (the final rounding to the model's dtype); <= 0 when every element is within."""
    worst = -np.inf
    for key, ref in exact.items():
        got = result[key].double().numpy()
        half_ulp = 0.5 * np.spacing(np.abs(ref).astype(np.float32) + np.float32(bound))
        worst = max(worst, float(np.max(np.abs(got - ref) - bound - half_ulp.astype(np.float64))))
    return worst
