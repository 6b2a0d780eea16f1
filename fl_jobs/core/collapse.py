"""A model that trains without diverging but ends up no better than the untrained one.

Divergence (a non-finite loss, or one 1000 times the untrained model's) stops a run at once.
A rate that merely wrecks the model does not reach that: with ``--lr 30`` on digits the loss
sits at 2.5 times the untrained model's and the accuracy at chance, round after round. Such a
run used to be reported as finished. It is collapsed when, for ``collapse_rounds`` rounds in
a row (3 by default; 0 turns the check off), the global model's test loss is above the
untrained model's, or (classification) its accuracy is at chance: at most 1.1 / the number
of classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

#: Accuracy at most this times 1 / classes counts as chance.
CHANCE_MARGIN = 1.1


class _Round(Protocol):
    round: int
    global_metrics: dict[str, float]


def collapse_reason(
    history: Sequence[_Round],
    initial: dict[str, float],
    *,
    rounds: int,
    n_classes: int | None,
) -> str | None:
    """Why the last ``rounds`` rounds are no better than the untrained model, or None."""
    if rounds <= 0 or len(history) < rounds:
        return None
    last = list(history)[-rounds:]
    span = f"rounds {last[0].round}-{last[-1].round}"
    untrained = initial.get("loss")
    losses = [r.global_metrics.get("loss") for r in last]
    if untrained is not None and all(x is not None and x > untrained for x in losses):
        shown = ", ".join(f"{x:.3g}" for x in losses if x is not None)
        return (
            f"the global model's test loss stayed above the untrained model's "
            f"({untrained:.3g}) in {span} ({shown})"
        )
    if n_classes and n_classes > 1:
        chance = 1.0 / n_classes
        accuracies = [r.global_metrics.get("accuracy") for r in last]
        if all(a is not None and a <= CHANCE_MARGIN * chance for a in accuracies):
            shown = ", ".join(f"{a:.1%}" for a in accuracies if a is not None)
            return (
                f"the global model's accuracy stayed at chance ({chance:.1%} for "
                f"{n_classes} classes) in {span} ({shown})"
            )
    return None
