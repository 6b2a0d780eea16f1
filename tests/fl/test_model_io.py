"""Model updates are validated before aggregation, with messages naming tensor and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fl_jobs.core.model_io import load_update, load_weights, read_update, save_weights
from fl_jobs.errors import ModelUpdateError

TEMPLATE = {"0.weight": torch.zeros(4, 3), "0.bias": torch.zeros(4)}


def good() -> dict[str, torch.Tensor]:
    return {"0.weight": torch.ones(4, 3), "0.bias": torch.ones(4)}


def test_round_trip(tmp_path: Path) -> None:
    save_weights(tmp_path / "u.pt", good(), meta={"n_samples": 12, "metrics": {"train_loss": 0.5}})
    weights, meta = read_update(tmp_path / "u.pt", TEMPLATE)
    assert meta["n_samples"] == 12 and meta["metrics"]["train_loss"] == 0.5
    assert torch.equal(weights["0.bias"], torch.ones(4))
    assert set(load_update(tmp_path / "u.pt", TEMPLATE)) == set(TEMPLATE)
    assert load_weights(tmp_path / "u.pt")[1]["n_samples"] == 12


@pytest.mark.parametrize(
    ("weights", "meta", "fragment"),
    [
        ({**good(), "1.weight": torch.ones(2)}, {"n_samples": 1}, "unknown tensor '1.weight'"),
        ({"0.weight": torch.ones(4, 3)}, {"n_samples": 1}, "tensor '0.bias' is missing"),
        (
            {**good(), "0.weight": torch.ones(3, 4)},
            {"n_samples": 1},
            r"tensor '0.weight' has shape \(3, 4\), expected \(4, 3\)",
        ),
        (
            {**good(), "0.bias": torch.ones(4, dtype=torch.float64)},
            {"n_samples": 1},
            "tensor '0.bias' has dtype torch.float64, expected torch.float32",
        ),
        (
            {**good(), "0.bias": torch.tensor([1.0, float("nan"), 1.0, 1.0])},
            {"n_samples": 1},
            "tensor '0.bias' holds 1 non-finite values",
        ),
        (
            {**good(), "0.weight": torch.full((4, 3), float("inf"))},
            {"n_samples": 1},
            "tensor '0.weight' holds 12 non-finite",
        ),
        (good(), {"n_samples": 0}, "n_samples must be a positive integer, got 0"),
        (good(), {"n_samples": -3}, "n_samples must be a positive integer"),
        (good(), {"n_samples": 2.5}, "n_samples must be a positive integer"),
        (good(), {}, "n_samples must be a positive integer, got None"),
    ],
)
def test_bad_updates_are_rejected(
    tmp_path: Path, weights: dict[str, torch.Tensor], meta: dict[str, object], fragment: str
) -> None:
    path = tmp_path / "bad.pt"
    save_weights(path, weights, meta=meta)
    with pytest.raises(ModelUpdateError, match=fragment):
        load_update(path, TEMPLATE)


def test_unreadable_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelUpdateError, match="does not exist"):
        load_update(tmp_path / "missing.pt", TEMPLATE)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelUpdateError, match="not a readable weights file"):
        load_update(tmp_path / "junk.pt", TEMPLATE)
    torch.save(good(), tmp_path / "bare.pt")  # a plain state dict, not our format
    with pytest.raises(ModelUpdateError, match="is not a fl-sandbox/weights/1 file"):
        load_update(tmp_path / "bare.pt", TEMPLATE)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    torch.save(
        {"format": "fl-sandbox/weights/1", "weights": {}, "meta": {"x": Evil()}},
        tmp_path / "evil.pt",
    )
    with pytest.raises(ModelUpdateError, match="not a readable weights file"):
        load_update(tmp_path / "evil.pt", TEMPLATE)
