"""The MLflow pyfunc model of a finished run (MLflow "models from code": MLflow copies this
file into the model, so it imports nothing from fl_jobs and loads anywhere torch, pandas
and MLflow are installed).

Artifacts: ``program`` (the global model as a ``torch.export`` program, batch size free) and
``layout`` (JSON: the input columns, the one-hot layout of categorical columns, the scaler, the
class labels, the target scale). Rows go through the same steps as the run's held-out rows:
one-hot encoding (an unseen category encodes as all zeros), standardisation with the stored
statistics, the network, then class labels or the target's units.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel


class FLSandboxModel(PythonModel):
    def load_context(self, context: Any) -> None:
        import torch

        with open(context.artifacts["layout"]) as fh:
            self.layout = json.load(fh)
        self.program = torch.export.load(context.artifacts["program"]).module()

    # pd.DataFrame is a hint MLflow takes as "no schema from hints": the logged signature is
    # the schema.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predictions (class labels, or values in the target's units) for ``model_input``."""
        import torch

        layout = self.layout
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        columns = layout["input_columns"]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"input lacks column {missing[0]!r}"
                + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                + f"; the model reads: {', '.join(columns)}"
            )
        features = frame[columns]
        categorical = layout["categorical"]
        numeric = [c for c in columns if c not in categorical]
        features = features.astype({c: "float64" for c in numeric})
        encoded = pd.get_dummies(features, columns=categorical, dtype=np.float32)
        encoded = encoded.reindex(columns=layout["encoded_columns"], fill_value=0)
        X = encoded.to_numpy(dtype=np.float32)
        scaler = layout.get("scaler")
        if scaler is not None:
            mean = np.asarray(scaler["mean"], dtype=np.float64)
            std = np.asarray(scaler["std"], dtype=np.float64)
            X = ((X - mean) / std).astype(np.float32)
        with torch.no_grad():
            outputs = self.program(torch.from_numpy(np.ascontiguousarray(X)))
        if layout["task"] == "classification":
            index = outputs.argmax(dim=1).numpy()
            classes = layout.get("classes")
            labels = [classes[i] for i in index] if classes else index.astype(np.int64)
            return pd.DataFrame({"prediction": labels}, index=frame.index)
        values = outputs.squeeze(-1).numpy().astype(np.float64) * layout["target_scale"]
        return pd.DataFrame({"prediction": values}, index=frame.index)


mlflow.models.set_model(FLSandboxModel())
