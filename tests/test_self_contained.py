"""What a user of the repository needs lives in it: no code or doc points at notes or reviews
outside it, and every relative link between the docs resolves. (``../shared/data`` is only
the default data folder, overridable with ``$FL_SANDBOX_DATA`` or ``--data-dir``.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared/(?!data\b)[\w./-]*")


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in listed if not name.startswith("tests/test_self_contained")]


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in _tracked():
        if path.suffix not in {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ""}:
            continue
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_relative_links_between_docs_resolve() -> None:
    broken = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert not broken, "\n".join(broken)
