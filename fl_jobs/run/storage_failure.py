"""A run folder that stops taking writes (a full disk, a quota, an I/O error, a file system
turned read-only) ends the job as a stop, not a crash: the finished rounds are kept, the
half-written files are removed, and one line names the path, the space needed and how to
resume.

torch reports a full disk in its own words ("unexpected pos 1152 vs 1046", "file write
failed") as a RuntimeError: such an error counts as a full disk when the folder's file system
has less free space than the run needs to write a checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: The job's status and exit code when its folder stopped taking writes.
STORAGE_STATUS = "storage_failed"
EXIT_STORAGE = 5
#: errno -> how the line names it.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EIO: "an I/O error",
    errno.EROFS: "the file system became read-only",
}
#: What torch says when a write of its zip container fails (a full disk, usually).
TORCH_WRITE_FAILURES = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")
#: Half-written files a stopped run leaves in its folder, and its per-round scratch folders.
LEFTOVERS = (".checkpoint.pt.tmp", ".summary.json.tmp", ".global_model.pt.tmp")
#: Space held in the run folder while the job runs, given back when the disk fills up: room
#: for the summary and the plot of a run stopped by a full disk.
RESERVE_FILE = ".space-reserve"
RESERVE_BYTES = 2_000_000
SCRATCH = ("models", "updates")


@dataclass(frozen=True)
class StorageFailure:
    what: str
    fix: str
    errno: int


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def storage_failure(exc: BaseException, folder: Path, needed: int) -> StorageFailure | None:
    """What ``exc`` says about ``folder``'s storage, or None if it is about something else.
    ``needed``: bytes the run writes per round (its checkpoint), for the fix."""
    folder = Path(folder)
    code: int | None = None
    path: str | None = None
    for error in _chain(exc):
        text = str(error)
        if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
            code, path = error.errno, error.filename
        else:  # a worker's OSError passed on as text, or torch's words for a full disk
            torch_full = any(s in text for s in TORCH_WRITE_FAILURES)
            if "[Errno 28]" in text or (torch_full and free_bytes(folder) < needed):
                code = errno.ENOSPC
        if code is not None:
            break
    if code is None:
        return None
    where = Path(path) if path else folder
    free = free_bytes(folder)
    if code in (errno.ENOSPC, errno.EDQUOT):
        need_mb = max(needed * 3 / 1e6, 1.0)
        return StorageFailure(
            f"{STORAGE_ERRNOS[code]} writing {where} ({free / 1e6:.1f} MB free on "
            f"{mount_point(folder)})",
            f"free at least {need_mb:.0f} MB there (a checkpoint is {needed / 1e6:.1f} MB)",
            code,
        )
    return StorageFailure(
        f"{STORAGE_ERRNOS[code]} writing {where}",
        f"check the disk of {mount_point(folder)}",
        code,
    )


def free_bytes(folder: Path) -> int:
    for candidate in [Path(folder), *Path(folder).parents]:
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 0


def mount_point(folder: Path) -> Path:
    """The mount point holding ``folder`` (what ``df`` names)."""
    path = Path(folder).resolve()
    while not path.is_mount() and path != path.parent:
        path = path.parent
    return path


def remove_leftovers(folder: Path) -> None:
    """Half-written files and per-round scratch: nothing in them is needed to resume, and on
    a full disk deleting them is what makes room for the summary."""
    folder = Path(folder)
    for name in (*LEFTOVERS, RESERVE_FILE):
        (folder / name).unlink(missing_ok=True)
    for stale in folder.glob(".mlflow.db.creating-*"):
        stale.unlink(missing_ok=True)
    for name in SCRATCH:
        shutil.rmtree(folder / name, ignore_errors=True)


def reserve_space(folder: Path) -> None:
    """Hold :data:`RESERVE_BYTES` in ``folder``: OSError if the disk is full (or failing);
    a file system that cannot reserve space (no ``fallocate``) just goes without."""
    path = Path(folder) / RESERVE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def release_space(folder: Path) -> None:
    (Path(folder) / RESERVE_FILE).unlink(missing_ok=True)
