"""Streaming FedAvg: exactness against a float64 mean, memory independent of the number of
updates, and the server step."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fl_jobs.core.aggregation import StreamingWeightedMean
from fl_jobs.core.training import LocalUpdate
from fl_jobs.strategies.fedavg import FedAvg

SHAPES = {"w1": (64, 32), "b1": (32,), "w2": (32, 10), "b2": (10,)}


def make_update(seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * scale for k, s in SHAPES.items()}


def test_streaming_mean_matches_float64_weighted_mean() -> None:
    counts = [1, 7, 250, 3, 1999, 42, 5, 611, 2, 98765]
    updates = [make_update(i, scale=1 + i) for i in range(len(counts))]
    agg = StreamingWeightedMean()
    for update, n in zip(updates, counts, strict=True):
        agg.add(update, n)
    result = agg.result()
    assert agg.count == len(counts) and agg.total_weight == sum(counts)
    for key in SHAPES:
        stacked = np.stack([u[key].double().numpy() for u in updates])
        expected = np.tensordot(np.asarray(counts, np.float64), stacked, axes=1) / sum(counts)
        got = result[key]
        assert got.dtype == torch.float32  # no upcast of the model
        rel = np.linalg.norm(got.double().numpy() - expected) / np.linalg.norm(expected)
        assert rel < 1e-6, (key, rel)
        assert np.allclose(
            got.double().numpy(), expected, rtol=1e-6, atol=1e-6 * abs(expected).max()
        )


def test_streaming_mean_rejects_mismatched_updates() -> None:
    agg = StreamingWeightedMean()
    agg.add(make_update(0), 1)
    with pytest.raises(ValueError, match="shape"):
        agg.add({**make_update(1), "b2": torch.zeros(11)}, 1)
    with pytest.raises(ValueError, match="missing"):
        agg.add({k: v for k, v in make_update(1).items() if k != "w1"}, 1)
    with pytest.raises(ValueError, match="weight"):
        agg.add(make_update(1), 0)
    with pytest.raises(ValueError, match="no updates"):
        StreamingWeightedMean().result()


class LiveTensorBytes(TorchDispatchMode):
    """Counts bytes of tensors created by torch ops that are still alive, and the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        outputs = out if isinstance(out, (tuple, list)) else [out]
        for tensor in outputs:
            if isinstance(tensor, torch.Tensor) and tensor._base is None:
                inputs = [a for a in args if isinstance(a, torch.Tensor)]
                if any(tensor.data_ptr() == a.data_ptr() for a in inputs):
                    continue  # in-place op: no new memory
                nbytes = tensor.untyped_storage().nbytes()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(tensor, self._free, nbytes)
        return out


MODEL_BYTES = sum(int(np.prod(s)) for s in SHAPES.values()) * 4


def peak_bytes(n_updates: int, aggregate) -> int:  # type: ignore[no-untyped-def]
    def updates() -> Iterator[LocalUpdate]:
        for i in range(n_updates):
            yield LocalUpdate(weights=make_update(i), n_samples=10 + i)

    with LiveTensorBytes() as mode:
        result = aggregate(updates())
        del result
    return mode.peak


def stacking_mean(updates: Iterator[LocalUpdate]) -> dict[str, torch.Tensor]:
    """The non-streaming way (stack, then average): what the test must be able to catch."""
    items = list(updates)
    w = torch.tensor([u.n_samples for u in items], dtype=torch.float32)
    return {
        k: torch.tensordot(w, torch.stack([u.weights[k] for u in items]), dims=1) / w.sum()
        for k in SHAPES
    }


def test_peak_memory_does_not_grow_with_number_of_updates() -> None:
    def fedavg(updates: Iterator[LocalUpdate]) -> dict[str, torch.Tensor]:
        return FedAvg().aggregate(1, {}, updates)

    few, many = peak_bytes(2, fedavg), peak_bytes(40, fedavg)
    assert few > MODEL_BYTES  # the counter sees the accumulator and the updates
    assert many == few, (few, many)
    assert many <= 4 * MODEL_BYTES
    # The same probe catches an aggregator that keeps every update.
    assert peak_bytes(40, stacking_mean) > 20 * MODEL_BYTES


def updates_of(*pairs: tuple[float, int]) -> list[LocalUpdate]:
    return [LocalUpdate({"w": torch.full((3,), v)}, n) for v, n in pairs]


def test_fedavg_weights_by_sample_count() -> None:
    new = FedAvg().aggregate(1, {"w": torch.zeros(3)}, iter(updates_of((1.0, 1), (4.0, 3))))
    assert torch.allclose(new["w"], torch.full((3,), 3.25))


def test_fedavg_server_lr_and_momentum() -> None:
    glob = {"w": torch.zeros(3)}
    half = FedAvg(server_lr=0.5).aggregate(1, glob, iter(updates_of((2.0, 1))))
    assert torch.allclose(half["w"], torch.full((3,), 1.0))
    strategy = FedAvg(server_momentum=0.5)
    first = strategy.aggregate(1, glob, iter(updates_of((2.0, 1))))
    assert torch.allclose(first["w"], torch.full((3,), 2.0))
    second = strategy.aggregate(2, first, iter(updates_of((2.0, 1))))
    # pseudo-gradient 0, velocity 0.5 * (-2) = -1: the model keeps moving by momentum
    assert torch.allclose(second["w"], torch.full((3,), 3.0))


def test_fedavg_client_fraction() -> None:
    silos = [f"silo-{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    chosen = FedAvg(fraction=0.3).configure_round(1, silos, rng)
    assert len(chosen) == 3 and chosen == sorted(chosen, key=silos.index)
    assert FedAvg(fraction=0.01).configure_round(1, silos, rng) != []
    assert FedAvg(fraction=1.0).configure_round(1, silos, rng) == silos
    with pytest.raises(ValueError, match="fraction"):
        FedAvg(fraction=0.0)


def test_finish_divides_in_place_and_matches_result() -> None:
    torch.manual_seed(0)
    updates = [{"w": torch.randn(50, 20), "b": torch.randn(20)} for _ in range(5)]
    counts = [3, 70, 11, 1, 400]
    mean = StreamingWeightedMean()
    for update, n in zip(updates, counts, strict=True):
        mean.add(update, n)
    expected = mean.result()
    accumulators = {k: v.data_ptr() for k, v in mean._sums.items()}
    finished = mean.finish()
    for key, tensor in finished.items():
        assert torch.equal(tensor, expected[key])
        assert tensor.data_ptr() == accumulators[key]  # no second model was allocated
    with pytest.raises(ValueError, match="finished"):
        mean.add(updates[0], 1)
    with pytest.raises(ValueError, match="finished"):
        mean.finish()
