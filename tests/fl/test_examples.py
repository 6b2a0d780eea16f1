"""Examples load real data, validate files, and keep per-party preprocessing per party."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.evaluation import evaluate
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.training import TrainParams, train_local
from fl_jobs.errors import DataError, PartitionError
from fl_jobs.examples.base import DataShape
from fl_jobs.examples.mnist import read_idx_images, read_idx_labels
from fl_jobs.examples.registry import EXAMPLES, get_example
from fl_jobs.examples.turbofan import RUL_CAP, WINDOW
from fl_jobs.local.prepare import prepare_job

MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def test_registry_lists_every_example() -> None:
    assert set(EXAMPLES) == {"digits", "mnist", "turbofan", "tabular"}
    for name in EXAMPLES:
        example = get_example(name)
        assert example.metric_name in ("accuracy", "rmse")


def test_digits_split_is_stratified_and_seeded() -> None:
    config = JobConfig(example="digits")
    a, b = (
        get_example("digits").load(config.example, 0),
        get_example("digits").load(config.example, 0),
    )
    assert len(a.X) + len(a.test_X) == 1797 and abs(len(a.test_X) - 360) <= 5
    assert np.array_equal(a.test_y, b.test_y)
    assert np.bincount(a.test_y).min() >= 35  # every class in the test set


def test_models_are_deterministic_under_seed() -> None:
    for name, extra in [("digits", {}), ("mnist", {"model": "cnn"}), ("mnist", {"model": "2nn"})]:
        config = JobConfig(example=name, **extra)
        example = get_example(name)
        shape = DataShape(64 if name == "digits" else 784, 10)
        torch.manual_seed(3)
        m1 = example.build_model(config.example, shape)
        torch.manual_seed(3)
        m2 = example.build_model(config.example, shape)
        assert all(
            torch.equal(a, b)
            for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True)
        )
        assert m1(torch.zeros(2, shape.n_features)).shape == (2, 10)


def test_mnist_cnn_is_the_papers(shared_data: Path) -> None:
    model = get_example("mnist").build_model(
        JobConfig(example="mnist", model="cnn").example,
        DataShape(784, 10),
    )
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 1_663_370  # 5x5x32 conv, 5x5x64 conv, fc 512, fc 10 (FedAvg paper)


def test_mnist_reads_gz_and_plain_idx(shared_data: Path, tmp_path: Path) -> None:
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(shared_data / "mnist" / f"{name}.gz", "rb") as src:
            (tmp_path / name).write_bytes(src.read())
    images = read_idx_images(shared_data / "mnist", "t10k-images-idx3-ubyte")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, read_idx_images(tmp_path, "t10k-images-idx3-ubyte"))
    labels = read_idx_labels(tmp_path, "t10k-labels-idx1-ubyte")
    assert np.array_equal(labels, read_idx_labels(shared_data / "mnist", "t10k-labels-idx1-ubyte"))
    assert set(np.unique(labels)) == set(range(10))


def test_mnist_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist - download the data with"):
        get_example("mnist").load(JobConfig(example="mnist", data_dir=tmp_path / "none").example, 0)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte, t10k-images"):
        get_example("mnist").load(JobConfig(example="mnist", data_dir=tmp_path).example, 0)


def test_mnist_env_variable_locates_data(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FL_SANDBOX_DATA", str(tmp_path))
    with pytest.raises(DataError, match=str(tmp_path / "mnist")):
        get_example("mnist").load(JobConfig(example="mnist").example, 0)


def corrupt_copy(shared_data: Path, tmp_path: Path, name: str, data: bytes) -> Path:
    for other in MNIST_FILES:
        shutil.copy(shared_data / "mnist" / f"{other}.gz", tmp_path / f"{other}.gz")
    (tmp_path / f"{name}.gz").unlink()
    (tmp_path / name).write_bytes(data)
    return tmp_path


def test_mnist_bad_magic_and_truncation(shared_data: Path, tmp_path: Path) -> None:
    with gzip.open(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", "rb") as fh:
        labels = fh.read()
    folder = corrupt_copy(
        shared_data, tmp_path, "t10k-labels-idx1-ubyte", b"\0\0\x08\x03" + labels[4:]
    )
    with pytest.raises(DataError, match="magic number 2051, expected 2049"):
        get_example("mnist").load(JobConfig(example="mnist", data_dir=folder).example, 0)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels[:-10])
    with pytest.raises(DataError, match="header says 10000 labels, file holds 9990"):
        get_example("mnist").load(JobConfig(example="mnist", data_dir=folder).example, 0)


def test_turbofan_windows_and_groups(shared_data: Path) -> None:
    ds = get_example("turbofan").load(JobConfig(example="turbofan").example, 0)
    assert ds.test_X.shape == (100, ds.X.shape[1]) and ds.X.shape[1] == WINDOW * 14
    assert len(np.unique(ds.groups)) == 100 and len(ds.groups) == len(ds.X)
    assert ds.y.max() == RUL_CAP and ds.y.min() == 0 and ds.test_y.max() <= RUL_CAP
    prepared = prepare_job(JobConfig(example="turbofan", silos=4))
    owners = [set(ds.groups[p]) for p in prepared.partitions]
    assert all(a.isdisjoint(b) for i, a in enumerate(owners) for b in owners[i + 1 :])


def test_turbofan_refuses_label_skew(shared_data: Path) -> None:
    with pytest.raises(PartitionError, match="needs class labels"):
        prepare_job(JobConfig(example="turbofan", partition="dirichlet:0.5"))


def write_csv(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(100, 20, n)
    x2 = rng.normal(0, 1, n)
    color = rng.choice(["red", "blue"], n)
    label = np.where(x1 + 20 * x2 > 100, "yes", "no")
    price = 3 * x1 + rng.normal(0, 1, n)
    lines = ["x1,x2,color,label,price"] + [
        f"{a:.3f},{b:.3f},{c},{d},{e:.3f}"
        for a, b, c, d, e in zip(x1, x2, color, label, price, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tabular_infers_task_and_encodes(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "d.csv")
    cls = prepare_job(JobConfig(example="tabular", data=csv, target="label", silos=3))
    assert cls.dataset.task == "classification" and cls.dataset.shape.n_outputs == 2
    assert cls.dataset.shape.n_features == 5  # x1, x2, price, color one-hot (2)
    reg = prepare_job(JobConfig(example="tabular", data=csv, target="price", silos=3))
    assert reg.dataset.task == "regression" and reg.example.metric_name == "rmse"


def test_tabular_standardises_with_each_silos_own_statistics(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "d.csv", n=200)
    prepared = prepare_job(JobConfig(example="tabular", data=csv, target="label", silos=2))
    ds, ex = prepared.dataset, prepared.example
    for part in prepared.partitions:
        own = ex.prepare(ds.X[part])
        assert np.allclose(own.mean(axis=0), 0, atol=1e-5)
        assert np.allclose(own.std(axis=0), 1, atol=1e-4)
    # the held-out test set is standardised with the test set's own statistics
    assert np.allclose(ds.test_X.mean(axis=0), 0, atol=1e-5)


def test_tabular_errors(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "d.csv")
    with pytest.raises(DataError, match="has no column 'nope' - pass --target with one of"):
        prepare_job(JobConfig(example="tabular", data=csv, target="nope"))
    with pytest.raises(DataError, match="does not exist"):
        prepare_job(JobConfig(example="tabular", data=tmp_path / "x.csv", target="label"))
    with pytest.raises(DataError, match="not numeric"):
        prepare_job(JobConfig(example="tabular", data=csv, target="label", task="regression"))
    holes = tmp_path / "holes.csv"
    holes.write_text("a,b,t\n1,,0\n2,3,1\n")
    with pytest.raises(DataError, match="missing values: b"):
        prepare_job(JobConfig(example="tabular", data=holes, target="t"))


def test_train_local_is_deterministic_and_learns() -> None:
    ds = get_example("digits").load(JobConfig(example="digits").example, 0)
    example = get_example("digits")
    data = SiloArrays(X=ds.X, y=ds.y, task="classification", meta={"example": "digits"})
    params = TrainParams(epochs=5, batch_size=16, lr=0.1)
    runs, models = [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = example.build_model(JobConfig().example, ds.shape)
        runs.append(train_local(model, data, params, seed=5))  # example from the silo meta
        models.append(model)
    assert all(torch.equal(runs[0].weights[k], runs[1].weights[k]) for k in runs[0].weights)
    assert runs[0].n_samples == len(ds.X) and runs[0].metrics["train_loss"] < 1.0
    assert evaluate(models[0], ds.test_X, ds.test_y, example)["accuracy"] > 0.85
