"""One round's data movements, declared once: who reads or writes which store, and how.

The agents pipeline (``fl_jobs.aml.agents_pipeline``) mounts exactly the movements that go
through a pipeline port, and the job path (``policies.job_path``) checks every movement here
over the sandbox's resource graph (a role that allows it, a network route). Both read this one
list, so a port nobody checked, or a checked movement no step performs, cannot be written.

Silo agents poll ``global`` (round announcements, secure-aggregation requests, global models)
and write their update, heartbeat and secure-aggregation replies to their own container of the
model store (``fl_jobs.store.layout``); the orchestrator agent does the converse. Seeding puts
each silo's data and the test set in place before the first round, as the ``dataUploaders``
of the stack, from wherever each of them is listed to upload from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal

from fl_jobs.aml.layout import SILO_STORE_PATH

ActorKind = Literal["silo", "orchestrator", "uploader"]

SILO_AGENT = "silo agent"
ORCHESTRATOR_AGENT = "orchestrator agent"
SEEDING = "seeding"
"""The steps that perform movements: the two agents' pipeline steps, and the uploads before
the first round (``fl_jobs.silo.data_upload``, run by each uploader)."""


class Store(Enum):
    """Where the data lives (the manifest names the datastore behind each)."""

    SILO_DATA = "silo data"
    """A silo's data datastore: its raw data and its silo store."""
    SILO_UPDATES = "silo updates"
    """A silo's own container in the model store (``update_datastore``)."""
    GLOBAL_MODELS = "global models"
    """The model store's ``global`` container (the orchestrator's datastore)."""
    SIGNING_KEYS = "signing keys"
    """The model store's ``signing-keys`` container, beside ``global``; no datastore."""
    TEST_SET = "test set"
    """The test-set paths of ``global``."""


class Access(Enum):
    READ = "read"
    WRITE = "write"
    READ_WRITE = "read+write"

    @property
    def writes(self) -> bool:
        return self is not Access.READ


@dataclass(frozen=True)
class PortPaths:
    """What a port's path depends on: the job's folder in the model store, the data prefix
    and the silo (None for the orchestrator)."""

    job: str
    prefix: str
    silo: str | None


@dataclass(frozen=True)
class Port:
    """A pipeline port of the step, on the datastore of the movement's store."""

    name: str
    direction: Literal["input", "output"]
    path: Callable[[PortPaths], str]
    type: str = "uri_folder"
    mode: str | None = None
    """None: Azure ML's default (a read-only mount for an input)."""
    volume_instead: bool = False
    """A silo with its own volume (``data_mount``, Kubernetes) reads the data there instead."""

    def ref(self) -> str:
        """How the step's command names the port."""
        return f"${{{{{self.direction}s.{self.name}}}}}"


@dataclass(frozen=True)
class BlobSdk:
    """Through the blob SDK, as the step's managed identity (``fl_jobs.store``)."""

    blobs: str
    """Which blobs (``fl_jobs.store.layout``), to say what goes over the wire."""


@dataclass(frozen=True)
class DataMovement:
    """One movement: ``actor`` does ``access`` on ``store``, through ``how``, in ``step``."""

    actor: ActorKind
    store: Store
    access: Access
    what: str
    """The sentence reports print; ``{silo}`` is the silo of a per-silo movement."""
    how: Port | BlobSdk
    step: str
    per_silo: bool = False
    """Once for each silo (of someone else's store: the orchestrator's, an uploader's)."""
    silo: str | None = None
    """Whose store, for a per-silo movement once expanded; None: the actor's own silo."""

    @property
    def port(self) -> Port | None:
        return self.how if isinstance(self.how, Port) else None


def _silo_data(paths: PortPaths) -> str:
    return f"{paths.prefix}/{paths.silo}"


def _silo_store(paths: PortPaths) -> str:
    return SILO_STORE_PATH


def orchestrator_out_path(job: str) -> str:
    """The orchestrator agent's run folder (lease id, per-round records, final model)."""
    return f"{job}/orchestrator"


def _run_folder(paths: PortPaths) -> str:
    return orchestrator_out_path(paths.job)


SILO_DATA_PORT = "silo_data"
SILO_STORE_PORT = "silo_store"
RUN_PORT = "run"

SILO_MOVEMENTS: tuple[DataMovement, ...] = (
    DataMovement(
        "silo",
        Store.SILO_DATA,
        Access.READ,
        "read its data",
        Port(SILO_DATA_PORT, "input", _silo_data, volume_instead=True),
        SILO_AGENT,
    ),
    DataMovement(
        "silo",
        Store.SILO_DATA,
        Access.READ_WRITE,
        "keep its silo store (DP secret and ledger, signing key, session memory)",
        Port(SILO_STORE_PORT, "output", _silo_store, mode="rw_mount"),
        SILO_AGENT,
    ),
    DataMovement(
        "silo",
        Store.GLOBAL_MODELS,
        Access.READ,
        "read the global model",
        BlobSdk("<job>/models/rNNNNNN.safetensors"),
        SILO_AGENT,
    ),
    DataMovement(
        "silo",
        Store.GLOBAL_MODELS,
        Access.READ,
        "poll the round announcements and secure-aggregation requests",
        BlobSdk("<job>/head.json, <job>/rounds/.../task.json, .../secagg/sNN/<silo>.json"),
        SILO_AGENT,
    ),
    DataMovement(
        "silo",
        Store.SILO_UPDATES,
        Access.WRITE,
        "write its model update",
        BlobSdk("<job>/rounds/.../update.safetensors"),
        SILO_AGENT,
    ),
    DataMovement(
        "silo",
        Store.SILO_UPDATES,
        Access.WRITE,
        "write its heartbeat and secure-aggregation replies",
        BlobSdk("<job>/heartbeat.json, <job>/rounds/.../secagg/sNN.json"),
        SILO_AGENT,
    ),
    DataMovement(
        "silo",
        Store.SIGNING_KEYS,
        Access.READ_WRITE,
        "publish its signing key, read its peers' (secure aggregation)",
        BlobSdk("<silo>.pub"),
        SILO_AGENT,
    ),
)
"""What each silo's agent moves, on its own stores and the shared ones."""

ORCHESTRATOR_MOVEMENTS: tuple[DataMovement, ...] = (
    DataMovement(
        "orchestrator",
        Store.GLOBAL_MODELS,
        Access.READ_WRITE,
        "keep its run folder (lease id, round records, final model)",
        Port(RUN_PORT, "output", _run_folder, mode="rw_mount"),
        ORCHESTRATOR_AGENT,
    ),
    DataMovement(
        "orchestrator",
        Store.SILO_UPDATES,
        Access.READ,
        "read silo {silo}'s update",
        BlobSdk("<job>/rounds/.../update.safetensors"),
        ORCHESTRATOR_AGENT,
        per_silo=True,
    ),
    DataMovement(
        "orchestrator",
        Store.SILO_UPDATES,
        Access.READ,
        "read silo {silo}'s heartbeat and secure-aggregation replies",
        BlobSdk("<job>/heartbeat.json, <job>/rounds/.../secagg/sNN.json"),
        ORCHESTRATOR_AGENT,
        per_silo=True,
    ),
    DataMovement(
        "orchestrator",
        Store.TEST_SET,
        Access.READ,
        "read the test set",
        BlobSdk("fl-sandbox/<example>/test/..."),
        ORCHESTRATOR_AGENT,
    ),
    DataMovement(
        "orchestrator",
        Store.GLOBAL_MODELS,
        Access.WRITE,
        "write the global model",
        BlobSdk("<job>/models/..., <job>/checkpoints/..."),
        ORCHESTRATOR_AGENT,
    ),
    DataMovement(
        "orchestrator",
        Store.GLOBAL_MODELS,
        Access.WRITE,
        "announce the rounds and send secure-aggregation requests",
        BlobSdk("<job>/lease, <job>/head.json, <job>/rounds/.../task.json, .../secagg/..."),
        ORCHESTRATOR_AGENT,
    ),
)
"""What the orchestrator's agent moves; ``per_silo`` ones once for each silo."""

SEEDING_MOVEMENTS: tuple[DataMovement, ...] = (
    DataMovement(
        "uploader",
        Store.SILO_DATA,
        Access.WRITE,
        "upload silo {silo}'s data",
        BlobSdk("<prefix>/<silo>/..."),
        SEEDING,
        per_silo=True,
    ),
    DataMovement(
        "uploader",
        Store.TEST_SET,
        Access.WRITE,
        "upload the test set",
        BlobSdk("fl-sandbox/<example>/test/..."),
        SEEDING,
    ),
)
"""Before the first round: each silo's uploaders (``dataUploaders.<silo>``) write its data,
the test-set uploaders (``dataUploaders.global``) the test set, each from its listed network."""


def _expand(declared: Iterable[DataMovement], silos: Iterable[str]) -> list[DataMovement]:
    names = list(silos)
    found: list[DataMovement] = []
    for movement in declared:
        if not movement.per_silo:
            found.append(movement)
            continue
        found += [replace(movement, silo=s, what=movement.what.format(silo=s)) for s in names]
    return found


def silo_movements() -> list[DataMovement]:
    """The movements of one silo's agent (each on the silo's own stores or the shared ones)."""
    return list(SILO_MOVEMENTS)


def orchestrator_movements(silos: Iterable[str]) -> list[DataMovement]:
    """The movements of the orchestrator's agent in a federation of ``silos``."""
    return _expand(ORCHESTRATOR_MOVEMENTS, silos)


def seeding_movements(silos: Iterable[str]) -> list[DataMovement]:
    """The uploads before the first round in a federation of ``silos``."""
    return _expand(SEEDING_MOVEMENTS, silos)
