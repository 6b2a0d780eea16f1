"""The per-round checkpoint of a local run: ``checkpoint.pt`` in the run folder.

It holds what :class:`~fl_jobs.local.federation.FederationState` holds (global weights, the
strategy's name and state dict, the client-selection RNG state, the round history, the
untrained model's metrics) plus the job settings that shape the weights, so that a resumed run
ends with bit-identical weights and refuses to continue under different settings. Written to a
temporary file, flushed to disk and renamed over the previous one: a run killed at any instant
leaves either the previous checkpoint or the new one, never half of one. Read back with
``torch.load(weights_only=True)``: tensors and plain values only, no pickled code.

:class:`CheckpointWriter` writes them on a background thread, so that flushing to disk (about
8 ms here) overlaps the next round's training instead of adding to it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fl_jobs.errors import RunFolderError
from fl_jobs.local.federation import FederationState, RoundRecord

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "fl-sandbox/checkpoint/1"


def save_checkpoint(path: Path, state: FederationState, *, settings: dict[str, Any]) -> None:
    """Write ``state`` atomically and durably to ``path``."""
    payload = {
        "format": FORMAT,
        "round": state.round,
        "global_weights": {k: v.detach().contiguous() for k, v in state.global_weights.items()},
        "strategy": {"name": state.strategy, "state": state.strategy_state},
        "rng_state": state.rng_state,
        "history": [record.to_plain() for record in state.history],
        "initial_metrics": dict(state.initial_metrics),
        "settings": settings,
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> tuple[FederationState, dict[str, Any]]:
    """The state and the settings stored in ``path``; RunFolderError if it is unreadable."""
    path = Path(path)
    fix = "start a new run (the run folder's other files are untouched)"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise RunFolderError(
            f"checkpoint {path} is unreadable ({type(exc).__name__})", fix
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RunFolderError(f"{path} is not a {FORMAT} checkpoint", fix)
    try:
        strategy = payload["strategy"]
        state = FederationState(
            round=int(payload["round"]),
            global_weights=dict(payload["global_weights"]),
            strategy=str(strategy["name"]),
            strategy_state=dict(strategy["state"]),
            rng_state=dict(payload["rng_state"]),
            history=[RoundRecord.from_plain(r) for r in payload["history"]],
            initial_metrics=dict(payload["initial_metrics"]),
        )
        settings = dict(payload["settings"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"checkpoint {path} is incomplete ({exc!r})", fix) from None
    return state, settings


_WRITERS: weakref.WeakSet[CheckpointWriter] = weakref.WeakSet()


def _let_writers_finish() -> None:
    """Before this process forks (a silo worker being restarted), let every writer finish
    its current write: a child must not inherit a lock held mid-write by another thread."""
    for writer in list(_WRITERS):
        writer.wait_idle(timeout=30)


os.register_at_fork(before=_let_writers_finish)


class CheckpointWriter:
    """Writes each round's state to ``path`` on a background thread, the newest first.

    A state is immutable once a round produced it, so writing it while the next round
    trains is safe. If rounds finish faster than the disk, intermediate states are skipped:
    only the newest one matters. :meth:`flush` waits until the newest state is on disk and
    raises what the writer hit (a full disk, say) in the caller's thread. ``settings`` is
    called once, on the writer thread, before the first write (it may hash the data).
    """

    def __init__(self, path: Path, settings: Callable[[], dict[str, Any]]) -> None:
        self.path = Path(path)
        self._settings_of = settings
        self._settings: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._pending: FederationState | None = None
        self._submitted = -1
        self._written = -1
        self._error: BaseException | None = None
        self._busy = False
        self._thread = threading.Thread(target=self._serve, name="checkpoint", daemon=True)
        self._thread.start()
        _WRITERS.add(self)

    def submit(self, state: FederationState) -> None:
        with self._cond:
            self._raise_error()
            self._pending = state
            self._submitted = state.round
            self._cond.notify_all()

    def flush(self) -> None:
        """Block until the newest submitted state is written."""
        with self._cond:
            while self._written < self._submitted and self._error is None:
                self._cond.wait()
            self._raise_error()

    def wait_idle(self, timeout: float) -> None:
        """Block until no write is in progress (pending states may remain)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy, timeout=timeout)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                f"the checkpoint {self.path} could not be written: {self._error}"
            ) from self._error

    def _serve(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                state, self._pending = self._pending, None
                self._busy = True
            try:
                if self._settings is None:
                    self._settings = self._settings_of()
                save_checkpoint(self.path, state, settings=self._settings)
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                return
            with self._cond:
                self._written = state.round
                self._busy = False
                self._cond.notify_all()
