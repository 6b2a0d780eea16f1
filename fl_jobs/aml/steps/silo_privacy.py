"""The Azure ML train step's silo-held DP randomness and ledger, as the local worker's.

The secret, the ledger and the budget live in the silo's own store folder (``--silo-store``,
mounted from the silo's datastore), so the orchestrator, which knows the job seed, can
neither replay the silo's noise nor subtract it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fl_jobs.core.silo_metrics import metric_release, noised_loss
from fl_jobs.silo.silo_ledger import check_budget
from fl_jobs.silo.silo_ledger import record as record_release
from fl_jobs.silo.silo_secret import metric_seed, private_seeds, silo_secret
from fl_jobs.silo.silo_store import LocalSiloStore

if TYPE_CHECKING:
    import torch

    from fl_jobs.core.silo_data import SiloArrays
    from fl_jobs.core.train_params import TrainParams
    from fl_jobs.examples.base import Example


@dataclass
class SiloPrivacy:
    """One round's DP state of a silo: its secret-derived seeds and pending releases."""

    silo: str
    store: LocalSiloStore
    secret: bytes
    context: int
    round: int
    releases: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, silo: str, folder: Path, model: torch.nn.Module, round_: int) -> SiloPrivacy:
        """The silo's store at ``folder`` (its secret made on first use); the seeds are keyed
        by the global model, as the local worker's."""
        from fl_jobs.secure_aggregation.silo_guard import update_digest

        folder.mkdir(parents=True, exist_ok=True)
        store = LocalSiloStore(folder)
        digest = int(update_digest(model.state_dict(), round_)[:16], 16)
        return cls(silo, store, silo_secret(store), digest, round_)

    @property
    def seeds(self) -> tuple[int, int]:
        return private_seeds(self.secret, self.context, self.round)

    def check(self, params: TrainParams, n_samples: int, run: Path, metric: bool) -> None:
        """The round's releases, checked against the silo's budget before training."""
        from fl_jobs.core.privacy import dp_schedule, silo_delta, silo_noise

        rate, per_epoch = dp_schedule(n_samples, params.batch_size)
        delta = silo_delta(params.target_delta, n_samples)
        base = {"run": str(run), "round": self.round}
        self.releases = [
            {
                **base,
                "noise_multiplier": silo_noise(params, n_samples),
                "sample_rate": rate,
                "steps": per_epoch * params.epochs,
                "delta": delta,
            }
        ]
        if metric:
            self.releases.append({**base, **metric_release(delta)})
        check_budget(self.silo, self.store, *self.releases)

    def record(
        self,
        metrics: dict[str, float],
        model: torch.nn.Module,
        data: SiloArrays,
        example: Example,
        policy: str,
    ) -> dict[str, float]:
        """Append the releases to the ledger; returns the noised metrics under ``dp``."""
        from fl_jobs.core.training import tensors

        extra: dict[str, float] = {}
        if policy == "dp":
            X, y = tensors(data)
            seed = metric_seed(self.secret, self.context, self.round)
            extra = noised_loss(model, X, y, example, seed)
        self.releases[0] = {**self.releases[0], "steps": metrics["dp_steps"]}
        for entry in self.releases:
            record_release(self.store, entry)
        return extra
