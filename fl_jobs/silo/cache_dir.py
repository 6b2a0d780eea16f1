"""Where fl-sandbox keeps its caches on this machine: ``$FL_SANDBOX_CACHE``, else
``$XDG_CACHE_HOME/fl-sandbox``, else ``~/.cache/fl-sandbox``. Everything in it can be rebuilt,
so deleting it at any time is safe."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    explicit = os.environ.get("FL_SANDBOX_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fl-sandbox"


def check_cache_dir() -> None:
    """Bad input (exit 2, before anything is written) when the cache cannot be a folder:
    ``$FL_SANDBOX_CACHE`` (or the default) is a file, or lies under one."""
    from fl_jobs.errors import JobConfigError

    folder = cache_dir()
    source = "FL_SANDBOX_CACHE" if os.environ.get("FL_SANDBOX_CACHE") else "the cache folder"
    for ancestor in [folder, *folder.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                where = "is a file" if ancestor == folder else f"is inside {ancestor}, a file"
                raise JobConfigError(
                    f"{source} {folder} {where}",
                    "point FL_SANDBOX_CACHE at a folder (it is created if missing), or unset it",
                )
            return
