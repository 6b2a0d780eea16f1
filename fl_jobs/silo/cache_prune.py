"""Pruning the silo data cache (fl_jobs.silo.silo_cache): entries no run folder links to any more
hold the only copy of their bytes, and are what a long afternoon of runs leaves behind.

An entry's files are hard-linked into each run's ``silos/``; a link count of 1 means no run
folder on this file system uses it, and deleting it frees its bytes. Entries still linked free
nothing when deleted (the runs keep their copies), so they are kept unless ``everything``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from fl_jobs.core.silo_data import ARRAYS_FILE
from fl_jobs.silo.silo_cache import cache_root

#: Scratch folders of an entry being built (``.<key>-xxxx``) older than this are leftovers.
SCRATCH_AGE_S = 3600.0


@dataclass
class PrunePlan:
    root: Path
    #: (entry, bytes freed by deleting it)
    remove: list[tuple[Path, int]] = field(default_factory=list)
    kept: int = 0
    kept_bytes: int = 0

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.remove)


def _unshared_bytes(entry: Path) -> int:
    """Bytes deleting ``entry`` frees: its files that no other path links to."""
    total = 0
    for path in entry.rglob("*"):
        if path.is_file():
            info = path.stat()
            if info.st_nlink <= 1:
                total += info.st_size
    return total


def _in_use(entry: Path) -> bool:
    try:
        return (entry / ARRAYS_FILE).stat().st_nlink > 1
    except OSError:
        return False


def plan_prune(*, everything: bool = False, root: Path | None = None) -> PrunePlan:
    root = root or cache_root()
    plan = PrunePlan(root)
    if not root.is_dir():
        return plan
    now = time.time()
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            continue
        scratch = entry.name.startswith(".")
        if scratch and now - entry.stat().st_mtime < SCRATCH_AGE_S:
            continue  # a run may be building it right now
        if everything or scratch or not _in_use(entry):
            plan.remove.append((entry, _unshared_bytes(entry)))
        else:
            plan.kept += 1
            plan.kept_bytes += sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
    return plan


def apply(plan: PrunePlan) -> None:
    for entry, _ in plan.remove:
        shutil.rmtree(entry, ignore_errors=True)


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
