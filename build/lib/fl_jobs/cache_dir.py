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
