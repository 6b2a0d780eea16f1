"""Where a federated pipeline reads and writes: datastore URIs and model-store paths.

One module owns the naming so that the pipeline builder (which writes the paths) and the
data-flow check (which reads them back) cannot drift apart. In the orchestrator's model store a
job owns the prefix ``<job>/``; global models live under ``<job>/global/round-<r>/`` and silo
updates under ``<job>/round-<r>/<silo>/``, so each silo writes exactly one path per round.
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
_UPDATE_PATH = re.compile(r"^(?P<job>[^/]+)/round-(?P<round>\d+)/(?P<silo>[^/]+)/?$")
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


def update_path(job: str, round_index: int, silo: str) -> str:
    """The one path silo ``silo`` may write in the model store during round ``round_index``."""
    return f"{job}/round-{round_index}/{silo}"


def processed_data_path(job: str) -> str:
    """Preprocessed silo data, kept inside the silo's own datastore."""
    return f"{job}/processed"


def update_path_owner(path: str) -> str | None:
    """The silo whose update path ``path`` is, or ``None`` when it is not an update path."""
    match = _UPDATE_PATH.match(path.strip("/"))
    return match["silo"] if match else None


def is_global_model_path(path: str) -> bool:
    return _GLOBAL_PATH.match(path.strip("/")) is not None
