"""Resuming a stopped run (``run --resume RUN_DIR``), checked before anything is written.

The run continues with the settings it started with (``job.yaml`` in its folder) from its
last checkpoint. A resume may change only what does not shape the weights of the finished
rounds (:data:`RESUMABLE`, e.g. more ``--rounds``); any other option must repeat the run's
value. The checkpoint records the weight-shaping settings and a fingerprint of the data and
its partition: if either changed, the resume is refused rather than silently diverging from
the run it continues.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from fl_jobs.cli.plurals import count
from fl_jobs.config import JobConfig, describe, overlay, strategy_overrides
from fl_jobs.errors import RunFolderError
from fl_jobs.local.federation import FederationState
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.rounds.checkpoint import CHECKPOINT_FILE, load_checkpoint
from fl_jobs.run.run_folder import JOB_FILE, RunPlan, check_summary_path, read_job_file
from fl_jobs.silo.cache_dir import check_cache_dir

#: Settings a resumed run may change: they do not shape the weights of finished rounds.
RESUMABLE = frozenset(
    {
        "rounds",
        "round_timeout",
        "min_silos",
        "summary",
        "baselines",
        "tracking",
        "checkpoints",
        "collapse_rounds",
    }
)
#: Settings a resumed run cannot take: it stays in its folder and its MLflow run.
NOT_ON_RESUME = frozenset({"output_dir", "tracking_uri", "name", "overwrite"})
#: Settings that never shape the weights (not compared with a checkpoint).
OPERATIONAL = RESUMABLE | NOT_ON_RESUME
DATA_KEY = "data_sha256"
FIX = "drop the option, or start a new run to change it"


@dataclass(frozen=True)
class ResumePlan:
    config: JobConfig
    plan: RunPlan
    #: The last checkpoint; None when the run stopped before its first round finished.
    state: FederationState | None
    settings: dict[str, Any]


def weight_settings(config: JobConfig) -> dict[str, Any]:
    """The settings that shape the weights (what a checkpoint records)."""
    data = config.flat()  # flat keys: checkpoints written before the sections compare equal
    return {k: v for k, v in data.items() if k not in OPERATIONAL and k != "approval"}


def data_fingerprint(prepared: PreparedJob) -> str:
    """sha256 over the training data, its partition and the test set."""
    digest = hashlib.sha256()
    ds = prepared.dataset
    for array in (ds.X, ds.y, ds.test_X, ds.test_y, *prepared.partitions):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.data.cast("B"))
    return digest.hexdigest()


def checkpoint_settings(config: JobConfig, prepared: PreparedJob) -> dict[str, Any]:
    return {**weight_settings(config), DATA_KEY: data_fingerprint(prepared)}


def resume_config(folder: Path, overrides: dict[str, Any]) -> JobConfig:
    """The run's own settings, with the ``overrides`` (CLI options) a resume may change."""
    stored = read_job_file(folder)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        given = strategy_overrides(stored, given)
    except ValueError as exc:
        raise RunFolderError(f"cannot resume {folder}: {exc}", FIX) from None
    for key in given:
        if key in NOT_ON_RESUME:
            raise RunFolderError(
                f"--{key.replace('_', '-')} cannot be used with --resume",
                f"a resumed run stays in {folder} with its own MLflow run; drop the option",
            )
    try:
        original = JobConfig.model_validate(stored)
        merged = JobConfig.model_validate(overlay(stored, {**given, "output_dir": str(folder)}))
    except ValidationError as exc:
        raise RunFolderError(
            f"cannot resume {folder}: {describe(exc, folder / JOB_FILE, given)}", FIX
        ) from None
    except ValueError as exc:  # a setting given twice, or one the run's example does not read
        raise RunFolderError(f"cannot resume {folder}: {exc}", FIX) from None
    now_flat, then_flat = merged.flat(), original.flat()
    for key in given:
        if key not in RESUMABLE and now_flat.get(key) != then_flat.get(key):
            now, then = given[key], then_flat.get(key)
            if key == "strategy":
                now, then = merged.strategy.describe(), original.strategy.describe()
            raise RunFolderError(
                f"--{key.replace('_', '-')} {now} differs from the run's setting "
                f"{then} ({folder / JOB_FILE})",
                f"a resumed run keeps the settings of its finished rounds; {FIX}",
            )
    if (
        merged.privacy.target_epsilon is not None
        and merged.federation.rounds != original.federation.rounds
    ):
        raise RunFolderError(
            f"--rounds {merged.federation.rounds} cannot change a run with target_epsilon "
            f"{original.privacy.target_epsilon:g}: each silo's noise was computed to spend it over "
            f"{count(original.federation.rounds, 'round')}",
            f"start a new run with --rounds {merged.federation.rounds}",
        )
    return merged


def _finished(config: JobConfig, folder: Path) -> bool:
    summary = Path(config.run.summary) if config.run.summary else folder / "summary.json"
    try:
        return json.loads(summary.read_text()).get("status") == "finished"
    except (OSError, ValueError, AttributeError):
        return False


def plan_resume(folder: Path, overrides: dict[str, Any]) -> ResumePlan:
    """Check that ``folder`` can be resumed with ``overrides``; nothing is written.

    A link (``runs/latest``) is followed first: the run is recorded under its own folder,
    not under a link that moves with the next run."""
    folder = Path(folder)
    if folder.is_symlink():
        target = folder.resolve()
        relative = os.path.relpath(target)
        folder = Path(relative) if not relative.startswith("..") else target
    config = resume_config(folder, overrides)
    check_summary_path(config.run.summary)
    check_cache_dir()
    state: FederationState | None = None
    settings: dict[str, Any] = {}
    if (folder / CHECKPOINT_FILE).exists():
        state, settings = load_checkpoint(folder / CHECKPOINT_FILE)
        expected = weight_settings(config)
        changed = sorted(
            k
            for k in set(expected) | (set(settings) - {DATA_KEY})
            if expected.get(k) != settings.get(k)
        )
        if changed:
            raise RunFolderError(
                f"{folder / JOB_FILE} no longer matches the run's checkpoint "
                f"({', '.join(changed)} changed)",
                "restore the file, or start a new run",
            )
        if state.round > config.federation.rounds:
            raise RunFolderError(
                f"--rounds {config.federation.rounds} is fewer than the "
                f"{count(state.round, 'round')} "
                f"{folder} already finished",
                f"pass --rounds {state.round} or more",
            )
        if state.round == config.federation.rounds and _finished(config, folder):
            raise RunFolderError(
                f"{folder} already finished all {count(state.round, 'round')}",
                f"pass --rounds N (more than {state.round}) with --resume to train further",
            )
    plan = RunPlan(folder, link_latest=False, overwrite=False, resume=True)
    return ResumePlan(config, plan, state, settings)


def check_same_data(plan: ResumePlan, prepared: PreparedJob) -> None:
    """Refuse to resume on data (or a partition) other than the run's."""
    recorded = plan.settings.get(DATA_KEY)
    if recorded is not None and recorded != data_fingerprint(prepared):
        raise RunFolderError(
            f"the data of {plan.plan.path} changed since the run started (its training "
            "rows, partition or test set differ)",
            "restore the data, or start a new run",
        )
