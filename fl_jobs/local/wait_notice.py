"""The line a round prints while it waits for silos without a ``--round-timeout``: which
silos (and whether their process is stopped), in which phase, and how to stop waiting.

Every wait of a round gets it, the training replies as well as each exchange of secure
aggregation: a silo that stops after its training reply must not hang the job in silence.
The interval is :data:`fl_jobs.local.worker_pool.WAIT_NOTICE_S` (60 s, or
``$FL_SANDBOX_WAIT_NOTICE_S``).
"""

from __future__ import annotations

from fl_jobs.local.round_ledger import Notify
from fl_jobs.local.worker_pool import WaitNotice

FIX = "set --round-timeout SECONDS to leave unresponsive silos out"


def wait_notice(rnd: int | None, notify: Notify | None, phase: str | None = None) -> WaitNotice:
    """``round 3: still waiting for silo-1 after 60 s (...)``; with a phase,
    ``round 3, secure aggregation (key exchange): still waiting for ...``; without a round
    (asynchronous rounds), ``asynchronous rounds: still waiting for ...``."""
    where = ("asynchronous rounds" if rnd is None else f"round {rnd}") + (
        f", {phase}" if phase else ""
    )

    def on_wait(silos: list[str], seconds: float) -> None:
        if notify is not None:
            notify(f"{where}: still waiting for {', '.join(silos)} after {seconds:.0f} s ({FIX})")

    return on_wait
