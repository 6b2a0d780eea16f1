"""Silo-side state: what a silo keeps for itself and never hands to the orchestrator.

A silo's randomness secret (:mod:`fl_jobs.silo.silo_secret`) lives here; so will its privacy
ledger and its secure-aggregation memory. The interface is three calls on named records so
that a cloud silo can keep the same records in its own blob container (where only its
identity can write); the local implementation is one folder per silo in the machine's
fl-sandbox cache, ``silo-store/<silo>/``. Unlike the rest of that cache this folder is
not rebuildable: deleting it gives the silo a new secret (a resumed run is then no longer
bit-identical to an uninterrupted one) and forgets what it released.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from fl_jobs.silo.cache_dir import cache_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SiloStore(Protocol):
    """Named records of one silo, written by that silo only."""

    def read(self, name: str) -> bytes | None:
        """The record's bytes, None when it was never written."""
        ...

    def create(self, name: str, data: bytes) -> bool:
        """Write the record unless it exists (atomically, first writer wins); True if
        this call wrote it."""
        ...

    def append(self, name: str, line: bytes) -> None:
        """Append one line to the record and make it durable before returning."""
        ...


class LocalSiloStore:
    """A silo store in a folder (readable and writable by the silo's user only)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"bad silo store record name {name!r}")
        return self.root / name

    def read(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, name: str, data: bytes) -> bool:
        target = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, scratch = tempfile.mkstemp(prefix=f".{name}-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(scratch, target)  # fails if another writer got there first
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(scratch)

    def append(self, name: str, line: bytes) -> None:
        target = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.rstrip(b"\n") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)


def silo_store_root() -> Path:
    """Where local silos keep their stores on this machine: ``$FL_SANDBOX_SILO_STORE``, else
    ``silo-store/`` in the fl-sandbox cache."""
    explicit = os.environ.get("FL_SANDBOX_SILO_STORE")
    return Path(explicit) if explicit else cache_dir() / "silo-store"


def local_silo_store(silo: str, root: Path | None = None) -> LocalSiloStore:
    """The store of the local silo named ``silo``."""
    if not _NAME.match(silo):
        raise ValueError(f"bad silo name {silo!r}")
    return LocalSiloStore((root or silo_store_root()) / silo)
