"""The ``training`` section: how each silo trains in a round. Unset values take the
example's defaults (``Example.defaults``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from fl_jobs.examples.strict_model import StrictModel, setting

EXAMPLE_DEFAULT = "(default: the example's)"


class TrainingSettings(StrictModel):
    title: ClassVar[str] = "Local training"

    epochs: int | None = setting(
        None, ge=1, help="Local epochs per round, E", default_text=EXAMPLE_DEFAULT
    )
    batch_size: int | None = setting(
        None, ge=1, help="Local batch size, B", default_text=EXAMPLE_DEFAULT
    )
    lr: float | None = setting(
        None, gt=0, help="Local SGD learning rate", default_text=EXAMPLE_DEFAULT
    )
    momentum: float | None = setting(
        None, ge=0, lt=1, help="Local SGD momentum in [0, 1)", default_text=EXAMPLE_DEFAULT
    )
    device: Literal["auto", "cpu", "cuda"] = setting(
        "auto",
        help="auto | cpu | cuda: where each silo trains; auto takes a GPU when torch sees one",
    )
