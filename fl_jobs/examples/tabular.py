"""Bring your own data: any CSV with a target column (format: ``csv_format``).

Numeric features (and one-hot encoded categorical ones) are standardised by each party with
its own statistics, so no pooled statistic ever leaves a silo. The task is inferred from the
target (non-numeric or few integer values: classification) unless given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import model_validator

from fl_jobs.errors import DataError
from fl_jobs.examples.base import (
    Dataset,
    DataShape,
    Example,
    Task,
    own_statistics,
    standardize_own,
)
from fl_jobs.examples.csv_format import (
    check_decimal_marks,
    check_finite,
    check_missing,
    read_csv_table,
)
from fl_jobs.examples.settings import HeldOutSettings
from fl_jobs.examples.split import train_test_indices
from fl_jobs.examples.strict_model import setting

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

#: An integer target with at most this many distinct values is taken as class labels.
MAX_INFERRED_CLASSES = 20


class TabularSettings(HeldOutSettings):
    """Your CSV, the column to predict and (optionally) the task."""

    name: Literal["tabular"] = "tabular"
    data: Path | None = setting(
        None, help="CSV file for the tabular example", default_text="(required by tabular)"
    )
    target: str | None = setting(
        None, help="Target column of the CSV (tabular)", default_text="(required by tabular)"
    )
    task: Task | None = setting(
        None,
        help="classification | regression, tabular",
        default_text="(default: inferred from the target)",
    )

    def rows_file(self) -> Path | None:
        return self.data

    @model_validator(mode="after")
    def _needs_data_and_target(self) -> TabularSettings:
        if self.data is None or self.target is None:
            raise ValueError(
                "the tabular example needs 'data' (a CSV path) and 'target' - pass --data PATH "
                "--target COLUMN"
            )
        return self


class TabularExample(Example):
    name = "tabular"
    task: ClassVar[Task] = "classification"
    metric_name = "accuracy"
    higher_is_better = True
    description = "your CSV (--data PATH --target COLUMN), MLP, per-silo standardisation"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 2,
        "batch_size": 32,
        "lr": 0.05,
        "momentum": 0.0,
    }
    standardize = True
    settings = TabularSettings

    def __init__(self, task: Task = "classification") -> None:
        self.task = task  # type: ignore[misc]
        self.metric_name = "accuracy" if task == "classification" else "rmse"  # type: ignore[misc]
        self.higher_is_better = task == "classification"  # type: ignore[misc]

    def specialize(self, task: Task) -> Example:
        return self if task == self.task else TabularExample(task)

    def load(self, settings: TabularSettings, seed: int) -> Dataset:
        frame = read_csv(settings)
        target = str(settings.target)
        if len(frame) == 0:
            raise DataError(f"{settings.data}: no data rows, only the header - add data rows")
        task = settings.task or infer_task(frame[target])
        features = frame.drop(columns=[target])
        if features.shape[1] == 0:
            raise DataError(
                f"{settings.data}: no feature columns besides the target {target!r} - add the "
                "columns the model should learn from"
            )
        encoded = encode_features_frame(features)
        X = encoded.to_numpy(dtype=np.float32)
        if task == "classification":
            classes, y = np.unique(frame[target].astype(str).to_numpy(), return_inverse=True)
            if len(classes) < 2:
                raise DataError(
                    f"{settings.data}: target {target!r} has a single class - classification "
                    "needs at least two; check --target"
                )
            if len(classes) > len(frame) // 2:
                raise DataError(
                    f"{settings.data}: target {target!r} has {len(classes)} classes in "
                    f"{len(frame)} rows, too few rows per class to learn and test them - check "
                    "--target (an id column?), or use --task regression for a numeric target"
                )
            n_outputs = len(classes)
            stratify = y
        else:
            try:
                y = frame[target].to_numpy(dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError(
                    f"{settings.data}: target {target!r} is not numeric - use --task "
                    "classification, or a numeric target for regression"
                ) from None
            n_outputs, stratify = 1, None
        if len(X) < 2:
            raise DataError(
                f"{settings.data}: needs at least 2 data rows, found {len(X)} - add rows"
            )
        train, test = train_test_indices(len(X), settings.test_fraction, seed, stratify)
        if len(test) == 0 or len(train) == 0:
            raise DataError(
                f"{settings.data}: {len(X)} rows leave an empty "
                f"{'test' if len(test) == 0 else 'training'} set at test_fraction "
                f"{settings.test_fraction:g} - add rows, or change --test-fraction"
            )
        X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
        mean, std = own_statistics(X_test)
        layout = {
            "input_columns": [str(c) for c in features.columns],
            "categorical": [str(c) for c in _categorical(features)],
            "encoded_columns": [str(c) for c in encoded.columns],
            # The orchestrator's held-out statistics, with which the reported metric was
            # computed: scoring the held-out rows reproduces it, and single rows can be scored.
            "scaler": {"mean": mean.tolist(), "std": std.tolist()},
            "classes": [str(c) for c in classes] if task == "classification" else None,
            "target": target,
        }
        return Dataset(
            X=X_train,
            y=y_train.astype(np.int64 if task == "classification" else np.float32),
            test_X=standardize_own(X_test),
            test_y=y_test.astype(np.int64 if task == "classification" else np.float32),
            task=task,
            shape=DataShape(n_features=X.shape[1], n_outputs=n_outputs),
            input_layout=layout,
        )

    def build_model(self, settings: TabularSettings, shape: DataShape) -> nn.Module:
        from torch import nn

        hidden = 64
        return nn.Sequential(
            nn.Linear(shape.n_features, hidden), nn.ReLU(), nn.Linear(hidden, shape.n_outputs)
        )


def read_csv(settings: TabularSettings) -> pd.DataFrame:
    """The CSV as a frame, after checking the file, its format (``csv_format``), the target
    and the values."""
    path = settings.data
    if path is None or not path.is_file():
        raise DataError(
            f"CSV file {path} does not exist - pass --data PATH to an existing CSV file"
        )
    table = read_csv_table(path)
    frame = table.frame
    if settings.target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        if all(_is_number(name) for name in frame.columns):
            raise DataError(
                f"{path} has no column {settings.target!r}: its first line looks like data, not "
                f"a header ({columns}) - add a header row naming the columns"
            )
        raise DataError(
            f"{path} has no column {settings.target!r} - pass --target with one of its columns: "
            f"{columns}"
        )
    check_decimal_marks(table)
    check_missing(table)
    check_finite(table)
    return frame


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def infer_task(target: pd.Series) -> Task:
    """Classification for non-numeric targets and few distinct integers, else regression."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    values = target.to_numpy()
    integral = np.all(np.equal(np.mod(values, 1), 0))
    if integral and len(np.unique(values)) <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def encode_features(features: pd.DataFrame) -> np.ndarray:
    """Numeric columns as they are, categorical columns one-hot (categories from the schema)."""
    return encode_features_frame(features).to_numpy(dtype=np.float32)


def _categorical(features: pd.DataFrame) -> list[Any]:
    import pandas as pd

    return [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]


def encode_features_frame(features: pd.DataFrame) -> pd.DataFrame:
    """:func:`encode_features` with its column names (``<column>_<category>`` for one-hot)."""
    import pandas as pd

    return pd.get_dummies(features, columns=_categorical(features), dtype=np.float32)
