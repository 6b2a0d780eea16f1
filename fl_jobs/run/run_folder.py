"""Where a local run writes, decided and checked before anything is written.

- Without ``--output-dir`` every run gets its own folder, ``runs/<name>/<date-time>/`` under
  the current directory, and ``runs/latest`` is a symbolic link to the newest one.
- An explicit ``--output-dir`` that already holds a run is refused, unless the run is resumed
  (``--resume DIR``) or replaced (``--overwrite``: the old run's files are deleted first, so
  nothing of it mixes with the new run). A non-empty folder that holds no run is refused.
- A lock (``.lock``, ``flock``) keeps two processes out of one run folder; the kernel drops it
  when the process ends, however it ends.
- ``--output-dir`` that is a file, or ``--summary`` that is a folder, are errors up front.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from fl_jobs.config import JobConfig
from fl_jobs.errors import RunFolderError
from fl_jobs.silo.cache_dir import check_cache_dir

RUNS_ROOT = Path("runs")
LATEST = "latest"
JOB_FILE = "job.yaml"
LOCK_FILE = ".lock"
#: Everything a run writes in its folder: what --overwrite deletes, what marks a run.
RUN_ENTRIES = (
    JOB_FILE,
    "checkpoint.pt",
    ".checkpoint.pt.tmp",
    ".space-reserve",
    "summary.json",
    "metric_per_round.png",
    "global_model.pt",
    "mlflow.db",
    "mlflow-artifacts",
    "tracking.json",
    "silos",
    "models",
    "updates",
    "logs",
)
_HELD_LOCKS: list[int] = []


def _close_locks_in_child() -> None:
    """Forked workers must not keep a run's lock alive after the orchestrator is gone."""
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_locks_in_child)


@dataclass(frozen=True)
class RunPlan:
    """A checked run folder: where, and how to take it."""

    path: Path
    #: ``runs/latest`` should point here (runs in the default layout).
    link_latest: bool
    overwrite: bool
    resume: bool


def holds_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in RUN_ENTRIES)


def _check_writable_location(path: Path, what: str) -> None:
    """``path`` may not exist yet; its first existing ancestor must be a writable folder."""
    for ancestor in [path, *path.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise RunFolderError(
                    f"{what} {path} is inside {ancestor}, which is a file",
                    f"choose a {what} that is not under a file",
                )
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise RunFolderError(
                    f"{what} {path} cannot be created: {ancestor} is not writable",
                    f"choose a {what} in a folder you can write to",
                )
            return


def check_summary_path(summary: Path | None) -> None:
    if summary is None:
        return
    summary = Path(summary)
    if summary.is_dir():
        raise RunFolderError(
            f"--summary {summary} is a folder", f"give a file path, e.g. {summary / 'summary.json'}"
        )
    _check_writable_location(summary.parent, "summary folder")


def plan_new_run(config: JobConfig) -> RunPlan:
    """Check where a new run of ``config`` goes (nothing is written)."""
    check_summary_path(config.run.summary)
    check_cache_dir()
    if config.run.tracking and config.run.tracking_uri is None:
        from fl_jobs.tracking.mlflow_run import env_tracking_uri

        env_tracking_uri()  # a bad $MLFLOW_TRACKING_URI is bad input, before anything is made
    if config.run.output_dir is None:
        root = RUNS_ROOT / (config.run.name or config.example.name)
        _check_writable_location(root, "runs folder")
        return RunPlan(_fresh_folder(root), link_latest=True, overwrite=False, resume=False)
    out = Path(config.run.output_dir)
    if out.exists() and not out.is_dir():
        raise RunFolderError(
            f"--output-dir {out} is a file", "give a folder path (it is created if missing)"
        )
    _check_writable_location(out, "--output-dir")
    if holds_run(out) and not config.run.overwrite:
        raise RunFolderError(
            f"--output-dir {out} already holds a run",
            f"continue it with --resume {out}, replace it with --overwrite, or choose "
            "another folder",
        )
    if out.is_dir() and not holds_run(out) and any(out.iterdir()):
        raise RunFolderError(
            f"--output-dir {out} is not empty and holds no fl-sandbox run",
            "choose an empty or new folder (nothing in it was touched)",
        )
    return RunPlan(out, link_latest=False, overwrite=config.run.overwrite, resume=False)


def _fresh_folder(root: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = root / stamp, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = root / f"{stamp}-{n}"
    return candidate


def _claim_fresh(path: Path) -> Path:
    """Create ``path``, or the next free ``<stamp>-2``, ``-3``... beside it: ``mkdir`` fails
    when the folder exists, so runs started in the same second (a ``&`` sweep) each get
    their own folder instead of sharing one and being refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    match = re.fullmatch(r"(.*?)(?:-(\d{1,4}))?", path.name)
    assert match is not None
    stamp, n = match.group(1), int(match.group(2) or 1)
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = path.parent / f"{stamp}-{n}"


def read_job_file(folder: Path) -> dict[str, Any]:
    """The settings a run started with (``job.yaml`` in its folder)."""
    path = Path(folder) / JOB_FILE
    if not Path(folder).is_dir():
        raise RunFolderError(
            f"--resume {folder} does not exist",
            "pass the folder of an earlier run (e.g. runs/latest)",
        )
    if not path.is_file():
        raise RunFolderError(
            f"--resume {folder} holds no run to resume (no {JOB_FILE})",
            "pass the folder of an earlier run (e.g. runs/latest)",
        )
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RunFolderError(f"{path} is unreadable ({exc})", "start a new run") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is not a mapping of settings", "start a new run")
    return data


@dataclass
class OpenRun:
    """A run folder this process holds the lock of."""

    path: Path
    lock_fd: int
    #: Things worth one line to the user (e.g. runs/latest could not be updated).
    notes: list[str]

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)
        with contextlib.suppress(ValueError):
            _HELD_LOCKS.remove(self.lock_fd)


def open_run(plan: RunPlan, config: JobConfig) -> OpenRun:
    """Create and lock the folder, clear an overwritten run, record the settings, point
    ``runs/latest`` at it."""
    path = plan.path
    while True:
        if plan.link_latest:
            path = _claim_fresh(path)  # a folder of our own: no other run can share it
        else:
            path.mkdir(parents=True, exist_ok=True)
        fd = _lock(path)
        if plan.resume or plan.overwrite or not holds_run(path):
            break
        os.close(fd)  # another run took this folder since it was checked
        if not plan.link_latest:
            raise RunFolderError(
                f"--output-dir {path} already holds a run (started since this one was checked)",
                "choose another folder",
            )
        path = _fresh_folder(path.parent)
    try:
        if plan.overwrite:
            for name in RUN_ENTRIES:
                _remove(path / name)
            for stale in path.glob(".mlflow.db*"):
                _remove(stale)
        if not plan.resume:
            # Not where it ran nor --overwrite: `run --config <run>/job.yaml` must start a new
            # run, never delete this one (--resume puts a resumed run back in its folder).
            job = config.model_dump(
                mode="json", exclude={"run": {"approval", "output_dir", "overwrite"}}
            )
            (path / JOB_FILE).write_text(yaml.safe_dump(job, sort_keys=False))
    except BaseException:
        os.close(fd)
        raise
    _HELD_LOCKS.append(fd)
    run = OpenRun(path, fd, [])
    if plan.link_latest:
        note = update_latest(path)
        if note:
            run.notes.append(note)
    return run


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _lock(path: Path) -> int:
    lock_path = path / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(
            f"{path} is in use by another run (pid {holder})",
            "wait for it to finish, or choose another folder",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def update_latest(run: Path) -> str | None:
    """Point ``runs/latest`` at ``run`` (atomically); a note when it cannot."""
    latest = RUNS_ROOT / LATEST
    if latest.exists() and not latest.is_symlink():
        return (
            f"{latest} is a folder from an earlier version and was left as it is; the new run "
            f"is {run}"
        )
    target = os.path.relpath(run, RUNS_ROOT)
    tmp = RUNS_ROOT / f".{LATEST}-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, latest)
    return None
