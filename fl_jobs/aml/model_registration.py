"""Registering a finished job's final model in the Azure ML workspace.

The agents engine's orchestrator writes the final global model as an MLflow model (pyfunc:
the exported network, the input layout, the scaler and the class labels, as a local run's
``model/`` folder, ``fl_jobs.serving``) into its run folder in the model store's ``global``
container. Once the job has completed, ``submit`` registers that folder as an ``mlflow_model``
asset of the workspace, named ``fl-sandbox-<example>`` (a new version per job), with the job,
blueprint and strategy as tags. The unrolled pipeline engine leaves plain weights and does not
register them.

What cannot be checked here (no workspace): the registration call itself. The request is built
offline with azure-ai-ml and validated; a test sends it to a recording client.
"""

from __future__ import annotations

from typing import Any

from fl_jobs.aml.layout import datastore_uri
from fl_jobs.store.orchestrator import MODEL_FOLDER


def model_name(example: str) -> str:
    """The workspace model's name: one per example, a version per job."""
    return f"fl-sandbox-{example}"


def final_model_path(job_name: str) -> str:
    """Where the orchestrator agent writes the MLflow model, in the ``global`` container."""
    from fl_jobs.aml.round_movements import orchestrator_out_path

    return f"{orchestrator_out_path(job_name)}/{MODEL_FOLDER}"


def model_entity(prepared: Any) -> Any:
    """The azure-ai-ml ``Model`` registering ``prepared``'s final model (an ``mlflow_model`` on
    the model store's global datastore)."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    config = prepared.config
    return Model(
        name=model_name(config.example.name),
        path=datastore_uri(
            prepared.model_store.global_datastore, final_model_path(prepared.job_name)
        ),
        type=AssetTypes.MLFLOW_MODEL,
        description=(
            f"Final global model of fl-sandbox job {prepared.job_name}: "
            f"{config.strategy.describe()} on {config.example.name}, "
            f"{config.federation.rounds} rounds"
        ),
        tags={
            "fl-sandbox.job": prepared.job_name,
            "fl-sandbox.blueprint": prepared.manifest.blueprint,
            "fl-sandbox.strategy": config.strategy.describe(),
            "fl-sandbox.rounds": str(config.federation.rounds),
        },
    )
