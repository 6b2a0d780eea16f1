"""The ``federation`` section: who trains, how often, and what a round waits for."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator

from fl_jobs.core.partition import parse_partition
from fl_jobs.errors import PartitionError
from fl_jobs.examples.strict_model import StrictModel, setting


class FederationSettings(StrictModel):
    title: ClassVar[str] = "Federation"

    silos: int = setting(5, ge=1, help="Number of silos (worker processes)")
    rounds: int = setting(20, ge=1, help="Federated rounds, >= 1")
    partition: str = setting(
        "iid",
        help="How data is split: iid | dirichlet:ALPHA (label skew) | shards:K (K label-sorted "
        "shards per silo) | quantity:ALPHA (size skew)",
    )
    fraction: float = setting(
        1.0, gt=0, le=1, help="Client fraction C in (0, 1]: share of silos per round"
    )
    seed: int = setting(0, ge=0, le=2**63 - 1, help="Seed of split, sampling and init")
    min_silos: int | None = setting(
        None,
        ge=1,
        help="Quorum: a round completes if at least this many selected silos answer; silos "
        "left out rejoin next round",
        default_text="(default: all selected)",
    )
    round_timeout: float | None = setting(
        None,
        gt=0,
        help="Seconds a round waits for a silo before leaving it out",
        default_text="(default: no limit)",
    )
    async_buffer: int | None = setting(
        None,
        ge=1,
        metavar="M",
        help="Asynchronous rounds (FedBuff): every silo trains continuously and the "
        "orchestrator folds every M arriving updates into the model, weighted by staleness; "
        "--rounds then counts folds",
        default_text="(default: synchronous rounds)",
    )

    @field_validator("partition")
    @classmethod
    def _check_partition(cls, value: str) -> str:
        try:
            parse_partition(value)
        except PartitionError as exc:
            raise ValueError(str(exc)) from None
        return value
