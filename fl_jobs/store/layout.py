"""Where every message of a job lives in the model store (one place, so the agents, the tests
and the docs cannot disagree).

``global`` (the orchestrator writes, silos read)::

    <job>/lease                          orchestrator lock (a blob lease)
    <job>/head.json                      the round in progress and the last complete round
    <job>/models/r000003.safetensors     global model after round 3 (r000000: initial)
    <job>/checkpoints/r000003.pt         orchestrator state after round 3 (strategy, RNG, history)
    <job>/rounds/r000004/a01/task.json   round 4, attempt 1: who trains, seeds, settings

``silo-<S>`` (silo S writes, the orchestrator reads)::

    <job>/rounds/r000004/a01/update.safetensors   silo S's update for that attempt
    <job>/rounds/r000004/a01/secagg/s03.json      S's reply to secure-aggregation step 3
    <job>/heartbeat.json                          silo S's last sign of life

in ``global``, ``<job>/rounds/r000004/a01/secagg/s03/<S>.json`` is step 3's request to S, and
in ``signing-keys`` (each silo writes only its own blob), ``<S>.pub`` is S's Ed25519 public key.
"""

from __future__ import annotations

import re

GLOBAL_CONTAINER = "global"
"""Same name as components.vocabulary.conventions.GLOBAL_MODELS_CONTAINER (a test keeps them
equal)."""

_JOB = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_job_id(job: str) -> str:
    """A job id is a blob-path segment: lowercase letters, digits and '-' (at most 63)."""
    if not _JOB.match(job):
        raise ValueError(
            f"job id {job!r} must be 1-63 lowercase letters, digits or '-', starting with a "
            "letter or digit"
        )
    return job


def silo_container(silo: str) -> str:
    """The model-store container of ``silo`` (the rule of
    components.vocabulary.naming.silo_container)."""
    return f"silo-{silo}"


def lease_blob(job: str) -> str:
    return f"{job}/lease"


def head_blob(job: str) -> str:
    return f"{job}/head.json"


def model_blob(job: str, round: int) -> str:
    """The global model after ``round`` (0: the initial model)."""
    return f"{job}/models/r{round:06d}.safetensors"


def checkpoint_blob(job: str, round: int) -> str:
    return f"{job}/checkpoints/r{round:06d}.pt"


def round_prefix(job: str, round: int) -> str:
    return f"{job}/rounds/r{round:06d}/"


def task_blob(job: str, round: int, attempt: int) -> str:
    return f"{round_prefix(job, round)}a{attempt:02d}/task.json"


def update_blob(job: str, round: int, attempt: int) -> str:
    """In the silo's own container."""
    return f"{round_prefix(job, round)}a{attempt:02d}/update.safetensors"


def heartbeat_blob(job: str) -> str:
    """In the silo's own container."""
    return f"{job}/heartbeat.json"


def attempt_of(task_name: str) -> int | None:
    """The attempt number of a ``.../aNN/task.json`` blob name, else None."""
    match = re.search(r"/a(\d+)/task\.json$", task_name)
    return int(match.group(1)) if match else None


def secagg_prefix(job: str, round: int, attempt: int) -> str:
    """Where an attempt's secure-aggregation requests live, in ``global``."""
    return f"{round_prefix(job, round)}a{attempt:02d}/secagg/"


def secagg_request_blob(job: str, round: int, attempt: int, step: int, silo: str) -> str:
    """In ``global``: step ``step``'s request to ``silo``."""
    return f"{secagg_prefix(job, round, attempt)}s{step:02d}/{silo}.json"


def secagg_reply_blob(job: str, round: int, attempt: int, step: int) -> str:
    """In the silo's own container: its reply to step ``step``."""
    return f"{round_prefix(job, round)}a{attempt:02d}/secagg/s{step:02d}.json"


def step_of(request_name: str, silo: str) -> int | None:
    """The step number of a ``.../secagg/sNN/<silo>.json`` blob name, else None."""
    match = re.search(r"/secagg/s(\d+)/([^/]+)\.json$", request_name)
    return int(match.group(1)) if match and match.group(2) == silo else None


SIGNING_KEYS_CONTAINER = "signing-keys"
"""Same name as components.vocabulary.conventions.SIGNING_KEYS_CONTAINER (a test keeps them
equal)."""


def signing_key_blob(silo: str) -> str:
    """In ``signing-keys``: ``silo``'s Ed25519 public key (raw 32 bytes), which peers check
    its secure-aggregation signatures against; only ``silo`` may write it."""
    return f"{silo}.pub"
