"""The version users quote in bug reports: the installed distribution's, else pyproject's."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "fl-sandbox"


def version_text() -> str:
    """``fl-sandbox X.Y.Z (python -m fl_jobs from <folder>)``: which copy answers matters when
    a source tree and an installed wheel both exist."""
    here = Path(__file__).resolve().parents[1]
    pyproject = here.parent / "pyproject.toml"
    found = None
    if pyproject.is_file():  # a source tree (or editable install): its own version
        match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        found = match.group(1) if match else None
    if found is None:
        try:
            found = metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            found = "unknown"
    return f"{DISTRIBUTION} {found} ({here})"
