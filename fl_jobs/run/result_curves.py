"""Final and best value of a metric curve, and whether it jumped at the end.

A table of last-round values alone misleads when a curve spikes in its last rounds (the
turbofan pooled baseline once ended at RMSE 34 after reaching 17): every approach is reported
with its final value and its best value with the round, and a curve whose final value is worse
than its best of the last rounds by more than a threshold is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Rounds before the last one in which a jump is looked for.
JUMP_WINDOW = 5
#: A jump: accuracy falls by more than this many points, or another metric gets worse by more
#: than this fraction of its recent best (RMSE 17 -> above 18.7).
JUMP_POINTS = 0.02
JUMP_RELATIVE = 0.10


@dataclass(frozen=True)
class CurveSummary:
    final: float
    best: float
    #: 1-based round of the best value (the first one, on ties).
    best_round: int
    #: The final value is worse than the best of the preceding JUMP_WINDOW rounds by more than
    #: the threshold.
    jumped: bool
    #: That recent best, for the message.
    recent_best: float


def summarize(values: list[float], *, metric: str, higher_is_better: bool) -> CurveSummary:
    """``values[i]`` is the metric after round ``i + 1``; ``values`` is not empty."""
    pick = max if higher_is_better else min
    best = pick(values)
    best_round = values.index(best) + 1
    final = values[-1]
    recent = values[-1 - JUMP_WINDOW : -1]
    recent_best = pick(recent) if recent else final
    drop = recent_best - final if higher_is_better else final - recent_best
    limit = JUMP_POINTS if metric == "accuracy" else JUMP_RELATIVE * abs(recent_best)
    jumped = drop > limit
    return CurveSummary(float(final), float(best), best_round, bool(jumped), float(recent_best))
