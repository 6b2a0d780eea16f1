"""One secure-aggregation session: the public facts every party of a round attempt agrees on.

A session is a run, a round, an attempt number and the ordered list of silos, plus the
encoding and the Shamir threshold. Its digest goes into every key derivation, so two sessions
that differ in anything (a redo after a dropout is the next attempt) share no mask, key or
share. It holds nothing secret and is built the same way by the orchestrator and the silos.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation.encoding import FixedPointCodec

PROTOCOL = "fl-sandbox/secure-aggregation/1"


def encode_fields(*fields: str | bytes | int) -> bytes:
    """An unambiguous byte string of ``fields`` (each length-prefixed; ints as 8 bytes), for
    hashing and key derivation: no two field lists encode alike."""
    out = bytearray()
    for field in fields:
        if isinstance(field, bool):
            raise TypeError("booleans are not encoded; use an int")
        if isinstance(field, int):
            data = field.to_bytes(8, "big", signed=True)
        elif isinstance(field, str):
            data = field.encode("utf-8")
        else:
            data = bytes(field)
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def majority(n_silos: int) -> int:
    """The default and smallest Shamir threshold: more than half of the silos."""
    return n_silos // 2 + 1


def public_max_samples(codec: FixedPointCodec, n_silos: int) -> int:
    """The sample-count bound every session of ``n_silos`` uses: the largest the encoding
    holds without overflow. It depends on public settings only, so no silo's count is needed
    to set it (counts travel masked) and none can be probed through it."""
    return codec.max_samples_for(n_silos)


class SecureAggregationSession:
    """The public context of one round attempt (see the module docstring).

    ``silos`` are the silos whose updates are summed, in the order that fixes every mask's
    sign and Shamir coordinate; ``max_samples`` bounds any silo's sample count (the overflow
    check uses it); ``threshold`` silos must survive to unmask the sum (default and minimum:
    a majority, so that no two disjoint groups of silos can both answer unmasking requests);
    ``attempt`` counts redos of the round after dropouts.
    """

    def __init__(
        self,
        run_id: str,
        round: int,
        silos: Sequence[str],
        *,
        max_samples: int | None = None,
        threshold: int | None = None,
        attempt: int = 0,
        codec: FixedPointCodec | None = None,
    ) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise SecureAggregationError(
                f"run_id must be a non-empty string, got {run_id!r}", "pass the run's id"
            )
        for name, value, low in (("round", round, 1), ("attempt", attempt, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SecureAggregationError(
                    f"{name} must be a whole number >= {low}, got {value!r}",
                    f"pass the {name} number",
                )
        names = list(silos)
        if not all(isinstance(s, str) and s for s in names):
            raise SecureAggregationError(
                f"silo names must be non-empty strings, got {names!r}", "pass the silos' names"
            )
        repeated = sorted({s for s in names if names.count(s) > 1})
        if repeated:
            raise SecureAggregationError(
                f"silos {repeated} appear more than once", "list each silo once"
            )
        if len(names) < 2:
            raise SecureAggregationError(
                f"secure aggregation needs at least 2 silos, got {len(names)} ({names})",
                "with one silo the sum is that silo's update: select more silos or run "
                "without secure aggregation",
            )
        if max_samples is None:  # the public bound (public_max_samples), which silos accept
            max_samples = public_max_samples(codec or FixedPointCodec(), len(names))
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise SecureAggregationError(
                f"max_samples must be a whole number >= 1, got {max_samples!r}",
                "pass the largest sample count a silo may report",
            )
        k = len(names)
        t = majority(k) if threshold is None else threshold
        low = majority(k)
        if isinstance(t, bool) or not isinstance(t, int) or not low <= t <= k:
            raise SecureAggregationError(
                f"threshold must be a whole number in {low}..{k} (more than half of {k} "
                f"silos), got {threshold!r}",
                f"use the default ({low}) or a larger number up to {k}",
            )
        self.codec = codec or FixedPointCodec()
        self.codec.check_capacity(k, max_samples)
        self.run_id = run_id
        self.round = round
        self.attempt = attempt
        self.silos: tuple[str, ...] = tuple(names)
        self.max_samples = max_samples
        self.threshold = t
        self._index = {name: i for i, name in enumerate(names)}
        self.digest = hashlib.sha256(
            encode_fields(
                PROTOCOL,
                run_id,
                round,
                attempt,
                k,
                *names,
                t,
                max_samples,
                self.codec.scale_bits,
                repr(float(self.codec.clip)),
            )
        ).digest()

    def __repr__(self) -> str:
        return (
            f"SecureAggregationSession(run_id={self.run_id!r}, round={self.round}, "
            f"attempt={self.attempt}, silos={list(self.silos)}, threshold={self.threshold})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecureAggregationSession) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def label(self) -> str:
        """``round R attempt A`` for messages."""
        return f"round {self.round} attempt {self.attempt}"

    def index(self, silo: str) -> int:
        """The silo's position (0-based); its Shamir coordinate is ``index + 1``."""
        try:
            return self._index[silo]
        except (KeyError, TypeError):
            raise SecureAggregationError(
                f"silo {silo!r} is not in {self.label} (silos: {', '.join(self.silos)})",
                "use the session the round was started with",
            ) from None

    def check_partition(self, survivors: Iterable[str], dropped: Iterable[str]) -> None:
        """Refuse a split of the session's silos into survivors and dropped ones that is not
        a partition, or that leaves fewer survivors than the threshold."""
        alive, gone = list(survivors), list(dropped)
        for silo in (*alive, *gone):
            self.index(silo)
        both = sorted(set(alive) & set(gone))
        if both:
            raise SecureAggregationError(
                f"silos {both} are listed both as survivors and as dropped",
                "list each silo of the session once",
            )
        left = sorted(set(self.silos) - set(alive) - set(gone))
        if left or len(alive) + len(gone) != len(self.silos):
            raise SecureAggregationError(
                f"survivors and dropped must list every silo of {self.label} exactly once "
                f"(not listed: {left})",
                "pass the silos that sent a masked update as survivors, the others as dropped",
            )
        if len(alive) < self.threshold:
            raise SecureAggregationError(
                f"only {len(alive)} silos survive in {self.label} and unmasking needs "
                f"{self.threshold}",
                "redo the round without the dropped silos (session.without(dropped))",
            )

    def without(
        self, dropped: Iterable[str], *, threshold: int | None = None
    ) -> SecureAggregationSession:
        """The next attempt of this round over the silos not in ``dropped``: every silo
        starts over with new keys, new shares and new masks (nothing carries over)."""
        gone = set(dropped)
        for silo in gone:
            self.index(silo)
        return SecureAggregationSession(
            self.run_id,
            self.round,
            [s for s in self.silos if s not in gone],
            # A session on the public bound stays on it (for its new size): silos accept no other.
            max_samples=None
            if self.max_samples == public_max_samples(self.codec, len(self.silos))
            else self.max_samples,
            threshold=threshold,
            attempt=self.attempt + 1,
            codec=self.codec,
        )
