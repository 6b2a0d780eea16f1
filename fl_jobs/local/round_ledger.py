"""A round's book of who is left out and why, with the quorum applied as events come in."""

from __future__ import annotations

from collections.abc import Callable

from fl_jobs.errors import QuorumLostError
from fl_jobs.local.worker_pool import Dropped

Notify = Callable[[str], None]
#: How an update beyond the secure-aggregation clip is described (fl_jobs.secure_aggregation).
CLIP_EXCEEDED = "beyond the secure-aggregation clip"
#: A silo's guard refusing to reveal, over fewer silos, what it revealed before
#: (fl_jobs.secure_aggregation.silo_guard.REASONS).
ALREADY_UNMASKED = ("update-already-unmasked", "round-already-unmasked")


class RoundLedger:
    """A round's silos left out (dropped: dead or silent; rejected: its update was refused)
    and each answering silo's metrics; stops the round (:class:`QuorumLostError`) as soon as
    fewer than the quorum can still contribute."""

    def __init__(
        self,
        rnd: int,
        selected: int,
        min_silos: int | None,
        notify: Notify | None,
        *,
        floor: int = 1,
        strategy: str = "",
        secure_floor: int = 0,
    ) -> None:
        self.rnd = rnd
        self.selected = selected
        self.min_silos = min(min_silos or selected, selected)
        #: The strategy's own floor (Krum: 2f + 3 updates), checked against the updates
        #: that can still arrive, not only the silos planned for the round.
        self.floor = floor
        self.strategy = strategy
        #: Secure aggregation's own floor (a majority of the planned cohort, which the silos
        #: enforce): below it no --min-silos lets the round go on.
        self.secure_floor = secure_floor
        self.quorum = max(self.min_silos, floor, secure_floor)
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
        """``silo``'s update is not in the round, for ``reason`` (a silo's fixed refusal code,
        or what its message failed)."""
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
            clipped = [s for s, why in self.rejected.items() if CLIP_EXCEEDED in why]
            if clipped:  # the run's own clip: a resume keeps it and fails the same way
                raise QuorumLostError(
                    f"round {self.rnd} lost its quorum: at most {left} of {self.selected} "
                    f"selected silos can contribute; {', '.join(clipped)} sent weights "
                    f"{CLIP_EXCEEDED} ({self.rejected[clipped[0]].split(' - ', 1)[0]})",
                    "start a new run with a larger --secure-aggregation-clip (a resumed run "
                    "keeps its clip)",
                    resumable=False,
                )
            unmasked = [s for s, why in self.rejected.items() if why in ALREADY_UNMASKED]
            if unmasked:  # the silos' guard: never a smaller set for what they revealed
                raise QuorumLostError(
                    f"round {self.rnd} lost its quorum: at most {left} of {self.selected} "
                    f"selected silos can contribute; {', '.join(unmasked)} unmasked this "
                    "round's update before over more silos and will not reveal it over fewer "
                    f"({'; '.join(reasons)})",
                    "bring the missing silos back and resume; or, if an earlier run with the "
                    "same --seed trained the same updates, start this one with another --seed",
                )
            if left < self.floor and self.floor > self.min_silos:
                raise QuorumLostError(
                    f"round {self.rnd} lost its quorum: at most {left} of {self.selected} "
                    f"selected silos can contribute and strategy {self.strategy} needs "
                    f"{self.floor} updates a round ({'; '.join(reasons)})",
                    "or start a new run with options that need fewer updates",
                )
            if left < self.secure_floor and self.secure_floor > self.min_silos:
                raise QuorumLostError(
                    f"round {self.rnd} lost its quorum: at most {left} of {self.selected} "
                    f"selected silos can contribute and secure aggregation needs at least "
                    f"{self.secure_floor} silos (a majority of the round's cohort) "
                    f"({'; '.join(reasons)})",
                    "once enough silos answer again; a lower --min-silos cannot help, since "
                    "the silos refuse a smaller secure-aggregation cohort",
                )
            lower = max(self.floor, self.secure_floor, 1)
            raise QuorumLostError(
                f"round {self.rnd} lost its quorum: at most {left} of {self.selected} "
                f"selected silos can contribute and min_silos is {self.quorum} "
                f"({'; '.join(reasons)})",
                f"or lower --min-silos to at most {left}"
                if left >= lower
                else "once enough silos answer again",
            )
