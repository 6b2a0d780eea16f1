"""Content-addressed cache of silo data folders, so that runs over the same data and partition
do not write the same bytes again (a full MNIST split is about 190 MB).

Each silo's files are written once into ``<cache>/<sha256 of the content>/`` and hard-linked
into the run's ``silos/<silo>/`` folder (copied when the cache is on another file system).
An entry stores the digest of its ``arrays.npz`` and is checked before reuse, so an entry
damaged through a hard link elsewhere is rebuilt rather than trusted. The cache is
``silo-data/`` in the machine's fl-sandbox cache (fl_jobs.silo.cache_dir); deleting it at any time
is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fl_jobs.core.silo_data import ARRAYS_FILE, META_FILE, SiloArrays, write_silo_data
from fl_jobs.silo.cache_dir import cache_dir

DIGEST_FILE = "arrays.sha256"
_CHUNK = 1 << 20


def cache_root() -> Path:
    """Where silo data is cached on this machine."""
    return cache_dir() / "silo-data"


def content_key(arrays: SiloArrays) -> str:
    """sha256 over the arrays as they are stored (dtype, shape, bytes), the task and meta."""
    digest = hashlib.sha256()
    y_dtype = np.int64 if arrays.task == "classification" else np.float32
    for array in (
        np.ascontiguousarray(arrays.X, dtype=np.float32),
        np.ascontiguousarray(arrays.y, dtype=y_dtype),
    ):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data.cast("B"))
    digest.update(json.dumps({"task": arrays.task, **arrays.meta}, sort_keys=True).encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_is_sound(entry: Path) -> bool:
    try:
        expected = (entry / DIGEST_FILE).read_text().strip()
        return (entry / META_FILE).is_file() and file_sha256(entry / ARRAYS_FILE) == expected
    except OSError:
        return False


def _build_entry(root: Path, key: str, arrays: SiloArrays) -> Path:
    """Write the entry beside its final name and rename it into place (atomic)."""
    entry = root / key
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=root))
    try:
        write_silo_data(scratch, arrays)
        (scratch / DIGEST_FILE).write_text(file_sha256(scratch / ARRAYS_FILE) + "\n")
        if entry.exists():  # damaged: replace it
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(scratch, entry)
        except OSError:
            if not _entry_is_sound(entry):  # another process built it meanwhile, or not
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return entry


def _link_or_copy(source: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.path.samefile(source, target):
            return
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy is still correct
        shutil.copyfile(source, target)


def materialize_silo_folder(folder: Path, arrays: SiloArrays, *, cache: Path | None) -> bool:
    """Make ``folder`` hold ``arrays`` in the silo layout; return True when the bytes came
    from the cache (nothing new written). ``cache=None`` writes the folder directly."""
    if cache is None:
        write_silo_data(folder, arrays)
        return False
    key = content_key(arrays)
    entry = cache / key
    reused = _entry_is_sound(entry)
    if not reused:
        entry = _build_entry(cache, key, arrays)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (ARRAYS_FILE, META_FILE):
        _link_or_copy(entry / name, folder / name)
    return reused
