"""Where a federated pipeline reads and writes: datastore URIs and model-store paths.

One module owns the naming so that the pipeline builder (which writes the paths) and the
data-flow check (which reads them back) cannot drift apart. A job owns the prefix ``<job>/`` in
every datastore: global models live under ``<job>/global/round-<r>/`` in the global model
store, each silo's update under ``<job>/round-<r>/`` in that silo's own update datastore (see
model_store), and its prepared data under ``<job>/processed/`` in its data datastore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DATASTORE_URI = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?"
    r"datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
_JOB_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_GLOBAL_PATH = re.compile(r"^(?P<job>[^/]+)/global/round-(?P<round>\d+)/?$")


@dataclass(frozen=True)
class DatastoreRef:
    """A datastore URI split into the datastore name and the path inside it."""

    datastore: str
    path: str


def datastore_uri(datastore: str, path: str) -> str:
    """The ``azureml://datastores/<name>/paths/<path>`` form AML resolves in the workspace."""
    return f"azureml://datastores/{datastore}/paths/{path.strip('/')}/"


def parse_datastore_uri(uri: str) -> DatastoreRef | None:
    """Split a datastore URI; ``None`` for anything else (local paths, data assets, URLs)."""
    match = _DATASTORE_URI.match(uri.strip())
    if match is None:
        return None
    return DatastoreRef(datastore=match["datastore"], path=match["path"].strip("/"))


def check_job_prefix(job: str) -> str:
    """A job prefix must be one plain path segment, so that per-silo paths cannot overlap."""
    if not _JOB_PREFIX.match(job):
        raise ValueError(
            f"job name {job!r} must be 1-63 lowercase letters, digits or '-', starting with a "
            "letter or digit (it becomes a folder in the model store)"
        )
    return job


def global_model_path(job: str, round_index: int) -> str:
    """Global model after ``round_index`` rounds (0 = the initial model)."""
    return f"{job}/global/round-{round_index}"


def update_path(job: str, round_index: int) -> str:
    """A silo's update of round ``round_index``, inside that silo's own update datastore."""
    return f"{job}/round-{round_index}"


#: A silo's own store (DP secret, privacy ledger, budget) in its own datastore: one folder
#: for every job, since the ledger counts releases across jobs (fl_jobs.silo.silo_ledger).
SILO_STORE_PATH = "fl-sandbox/silo-store"


def processed_data_path(job: str) -> str:
    """Preprocessed silo data, kept inside the silo's own datastore."""
    return f"{job}/processed"


def is_global_model_path(path: str) -> bool:
    return _GLOBAL_PATH.match(path.strip("/")) is not None
