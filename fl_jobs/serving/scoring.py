"""Load a run's model (a run folder, a model folder, or an MLflow ``runs:/``/``models:/`` URI)
and score a CSV with it: what ``fl-sandbox predict`` does."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from fl_jobs.errors import FLJobError


class ModelNotFound(FLJobError):
    """The --model argument names no model."""


def load_pyfunc_class() -> Any:
    """A fresh FLSandboxModel from pyfunc_model.py (imported by path, as MLflow loads it)."""
    path = Path(__file__).with_name("pyfunc_model.py")
    spec = importlib.util.spec_from_file_location("fl_sandbox_pyfunc_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FLSandboxModel()


def resolve_model(ref: str, tracking_uri: str | None = None) -> tuple[str, str | None]:
    """(model URI or folder, tracking URI) for ``ref``: a run folder (its ``model/``), a model
    folder (holding ``MLmodel``), ``runs:/ID/model``, ``models:/NAME/VERSION``, or a bare run
    id (``runs:/ID/model``) in the store of ``tracking_uri`` / ``MLFLOW_TRACKING_URI``."""
    path = Path(ref)
    if path.is_dir():
        if (path / "MLmodel").is_file():
            return str(path.resolve()), tracking_uri
        if (path / "model" / "MLmodel").is_file():
            return str((path / "model").resolve()), tracking_uri
        if (path / "summary.json").is_file():
            raise ModelNotFound(
                f"run folder {path} holds no model (model/MLmodel); only finished runs export "
                "one - finish the run with `fl-sandbox run --resume` first"
            )
        raise ModelNotFound(
            f"{path} is neither a run folder nor an MLflow model folder - pass a run folder "
            "(e.g. runs/latest), a model folder, or runs:/<run id>/model"
        )
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if ref.startswith(("runs:/", "models:/")):
        model_uri = ref
    elif len(ref) == 32 and all(c in "0123456789abcdef" for c in ref):
        model_uri = f"runs:/{ref}/model"
    else:
        raise ModelNotFound(
            f"--model {ref!r} is not a folder, a runs:/ or models:/ URI, or a run id - pass a "
            "run folder (e.g. runs/latest) or runs:/<run id>/model"
        )
    if uri is None:
        raise ModelNotFound(
            f"--model {ref} needs the MLflow store it lives in - pass --tracking-uri or set "
            "MLFLOW_TRACKING_URI"
        )
    return model_uri, uri


def load_model(ref: str, tracking_uri: str | None = None) -> Any:
    """The pyfunc model of ``ref`` (see resolve_model)."""
    import logging
    import warnings

    import mlflow

    model_uri, uri = resolve_model(ref, tracking_uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if uri is not None:
        mlflow.set_tracking_uri(uri)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # MLflow's advice on type hints
            warnings.simplefilter("ignore")
            return mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelNotFound(
            f"cannot load model {model_uri}: {first} - check the run id and --tracking-uri"
        ) from None


def layout(model: Any) -> dict[str, Any]:
    """The layout JSON stored with a loaded model (input columns, classes, target)."""
    impl = model.unwrap_python_model()
    return dict(impl.layout)


def read_rows(path: Path) -> Any:
    """The rows to score, read with the project's CSV rules (csv_format)."""
    from fl_jobs.examples.csv_format import read_csv_table

    if not path.is_file():
        raise ModelNotFound(f"CSV file {path} does not exist - pass --data PATH to a CSV file")
    return read_csv_table(path).frame


def describe(layout: dict[str, Any]) -> str:
    return json.dumps({k: layout[k] for k in ("example", "task", "input_columns")})
