"""A round's book of who is left out and why, with the quorum applied as events come in."""

from __future__ import annotations

from collections.abc import Callable

from fl_jobs.errors import QuorumLostError
from fl_jobs.local.worker_pool import Dropped

Notify = Callable[[str], None]


class RoundLedger:
    """A round's silos left out (dropped: dead or silent; rejected: its update was refused)
    and each answering silo's metrics; stops the round (:class:`QuorumLostError`) as soon as
    fewer than the quorum can still contribute."""

    def __init__(
        self, rnd: int, selected: int, min_silos: int | None, notify: Notify | None
    ) -> None:
        self.rnd = rnd
        self.selected = selected
        self.quorum = min(min_silos or selected, selected)
        self.notify = notify
        self.unreachable: dict[str, Dropped] = {}
        self.dropped: dict[str, str] = {}
        self.rejected: dict[str, str] = {}
        self.silo_metrics: dict[str, dict[str, float]] = {}
        #: Dropped silos whose update still counts (secure aggregation rebuilt its mask).
        self.counted: set[str] = set()

    def drop(self, silo: str, reason: str, *, counted: bool = False) -> None:
        """``silo`` stopped answering; ``counted``: its update is in the sum all the same."""
        self.dropped[silo] = reason
        if counted:
            self.counted.add(silo)
        self.say(
            f"round {self.rnd}: {silo} left out ({reason})"
            + ("; its update still counts" if counted else "")
        )

    def reject(self, silo: str, reason: str) -> None:
        self.rejected[silo] = reason
        self.say(f"round {self.rnd}: {silo}'s update rejected ({reason})")

    @property
    def contributing(self) -> int:
        """How many selected silos can still contribute to the round."""
        lost = len(set(self.dropped) - self.counted) + len(self.rejected)
        return self.selected - lost

    def say(self, line: str) -> None:
        """Tell the user about an event, then stop the round if the quorum is lost."""
        if self.notify is not None:
            self.notify(line)
        left = self.contributing
        if left < self.quorum:
            reasons = [f"{silo}: {why}" for silo, why in self.dropped.items()]
            reasons += [f"{silo}: update rejected, {why}" for silo, why in self.rejected.items()]
            raise QuorumLostError(
                f"round {self.rnd} lost its quorum: at most {left} of {self.selected} "
                f"selected silos can contribute and min_silos is {self.quorum} "
                f"({'; '.join(reasons)})"
            )
