"""Where examples look for their files: ``--data-dir``, else ``$FL_SANDBOX_DATA/<name>``, else
``../shared/data/<name>`` next to the repository. Nothing is ever downloaded here: a missing
folder names ``scripts/fetch_data.py``, the one command that downloads."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from fl_jobs.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO_ROOT / "scripts" / "fetch_data.py"


def default_data_root() -> Path:
    """``$FL_SANDBOX_DATA``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("FL_SANDBOX_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def fetch_command(dataset: str, folder: Path) -> str:
    """The command that downloads ``dataset`` into ``folder``, runnable from the current
    directory."""
    script = FETCH_SCRIPT
    with contextlib.suppress(ValueError):
        script = FETCH_SCRIPT.relative_to(Path.cwd())
    return f"python {script} {dataset} --to {folder}"


def resolve_data_dir(
    data_dir: Path | None, subdir: str, expected: list[str], *, dataset: str
) -> Path:
    """The folder holding ``expected`` files; DataError naming the files and the command that
    fetches them (``dataset`` is the name ``scripts/fetch_data.py`` knows them by)."""
    folder = Path(data_dir) if data_dir is not None else default_data_root() / subdir
    wanted = ", ".join(expected)
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} does not exist - download the data with "
            f"`{fetch_command(dataset, folder)}`, or pass --data-dir FOLDER holding {wanted} "
            "(gzipped or not)"
        )
    missing = [name for name in expected if find_file(folder, name) is None]
    if missing:
        raise DataError(
            f"data folder {folder} lacks {', '.join(missing)} (gzipped or not); expected "
            f"{wanted} - download them with `{fetch_command(dataset, folder)}`"
        )
    return folder


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_bytes(folder: Path, name: str, *, dataset: str) -> bytes:
    """The (decompressed) content of ``name`` or ``name.gz`` in ``folder`` (``dataset`` names
    the fetch command in errors)."""
    import gzip
    import zlib

    path = find_file(folder, name)
    if path is None:
        raise DataError(
            f"{folder} lacks {name} (or {name}.gz) - download it with "
            f"`{fetch_command(dataset, folder)}`"
        )
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"cannot read {path}: {exc} - the file is damaged or truncated: fetch a verified "
            f"copy with `{fetch_command(dataset, folder)}`"
        ) from None
