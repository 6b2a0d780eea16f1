"""Where examples look for their files: ``--data-dir``, else ``$FL_SANDBOX_DATA/<name>``, else
``../shared/data/<name>`` next to the repository. Nothing is ever downloaded."""

from __future__ import annotations

import os
from pathlib import Path

from fl_jobs.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_data_dir(data_dir: Path | None, subdir: str, expected: list[str]) -> Path:
    """The folder holding ``expected`` files; DataError naming the files if absent."""
    if data_dir is not None:
        candidates = [Path(data_dir)]
    else:
        env = os.environ.get("FL_SANDBOX_DATA")
        root = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
        candidates = [root / subdir]
    folder = candidates[0]
    wanted = ", ".join(expected)
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} does not exist; put {wanted} (gzipped or not) there or pass "
            "--data-dir FOLDER (files are never downloaded)"
        )
    missing = [name for name in expected if find_file(folder, name) is None]
    if missing:
        raise DataError(
            f"data folder {folder} lacks {', '.join(missing)} (gzipped or not); expected {wanted}"
        )
    return folder


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_bytes(folder: Path, name: str) -> bytes:
    """The (decompressed) content of ``name`` or ``name.gz`` in ``folder``."""
    import gzip

    path = find_file(folder, name)
    if path is None:
        raise DataError(f"{folder} lacks {name} (or {name}.gz)")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
