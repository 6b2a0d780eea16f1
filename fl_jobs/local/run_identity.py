"""Which run a local job's secure-aggregation sessions belong to.

A silo joins a session once and reveals one survivor set per round of a run, so the run's
identity must be new for every new run, even one started again in a deleted (or reused)
folder, and the same across resumes of one run. It is the resolved run folder plus a nonce
that a fresh start writes into the folder (``run-id.json``) and a resume reads back. Each
start also counts itself, so that a resumed run numbers its sessions after the ones the
interrupted start may have offered (a silo never sees one session twice).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

RUN_ID_FILE = "run-id.json"


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    #: Starts of this run so far, this one included (1 for a fresh run).
    starts: int


def start_run(out: Path, *, resume: bool) -> RunIdentity:
    """Record this start of the run in ``out`` and return its identity: a new nonce for a
    fresh run, the recorded one (and the next start number) for a resume."""
    path = out / RUN_ID_FILE
    recorded = _read(path) if resume else None
    nonce = recorded["nonce"] if recorded else secrets.token_hex(8)
    starts = recorded["starts"] + 1 if recorded else 1
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"nonce": nonce, "starts": starts}))
    tmp.replace(path)
    return RunIdentity(_run_id(out, nonce), starts)


def recorded_run_id(out: Path) -> str | None:
    """The identity the run in ``out`` recorded at its start (None before any start)."""
    recorded = _read(out / RUN_ID_FILE)
    return None if recorded is None else _run_id(out, recorded["nonce"])


def _run_id(out: Path, nonce: str) -> str:
    return f"{out.resolve()}#{nonce}"


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("nonce"), str)
        and isinstance(data.get("starts"), int)
    ):
        return None
    return data
