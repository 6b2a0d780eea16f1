"""The code Azure ML runs: a clean copy of the ``fl_jobs`` package plus the job config.

Components upload their ``code`` folder as the working directory of every step. Pointing it at
the repository would upload virtualenvs and run outputs; pointing it at ``fl_jobs/`` would break
``import fl_jobs``. So a submission stages a snapshot (``<dir>/fl_jobs/**.py|yaml`` and
``<dir>/job.yaml``) and hashes it: the hash is what the approver sees, and it changes whenever
any code or setting that runs in the cloud changes.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from fl_jobs.config import JobConfig
from fl_jobs.run.manifest import FederationManifest

PACKAGE_DIR = Path(__file__).resolve().parent.parent
JOB_CONFIG_NAME = "job.yaml"
MANIFEST_NAME = "manifest.json"
_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".txt"}


@dataclass(frozen=True)
class CodeSnapshot:
    path: Path
    sha256: str


def directory_sha256(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def cloud_config(config: JobConfig, *, agents: bool = False) -> dict[str, object]:
    """The job settings the steps need, without what only matters on this machine (output
    folders, the local tracking store, the approval hook, the local federation's timeouts and
    checkpoints). ``min_silos`` stays: the aggregate step applies it to rejected updates.
    With ``agents`` the round deadline stays too: the orchestrator agent enforces it."""
    local_run = {"output_dir", "summary", "tracking_uri", "approval", "name", "checkpoints"}
    exclude: dict[str, set[str]] = {"run": local_run | {"overwrite"}}
    if not agents:
        exclude["federation"] = {"round_timeout"}
    data = config.model_dump(mode="json", exclude_none=True, exclude=exclude)
    data["run"]["baselines"] = False
    return data


def stage_code(
    dest: Path, config: JobConfig, manifest: FederationManifest | None = None
) -> CodeSnapshot:
    """Write the snapshot into ``dest`` (emptied first) and return it with its hash. With a
    ``manifest`` (the agents engine) it is staged too, as the agents' ``--manifest``, and the
    job file keeps the agents' settings; both are then covered by the hash."""
    dest = dest.resolve()
    if dest.exists():
        shutil.rmtree(dest)
    target = dest / "fl_jobs"
    for source in sorted(PACKAGE_DIR.rglob("*")):
        if not source.is_file() or source.suffix not in _SUFFIXES:
            continue
        if "__pycache__" in source.parts:
            continue
        out = target / source.relative_to(PACKAGE_DIR)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out)
    settings = cloud_config(config, agents=manifest is not None)
    (dest / JOB_CONFIG_NAME).write_text(yaml.safe_dump(settings, sort_keys=True))
    if manifest is not None:
        (dest / MANIFEST_NAME).write_text(manifest.to_json())
    return CodeSnapshot(path=dest, sha256=directory_sha256(dest))
