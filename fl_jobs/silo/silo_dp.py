"""Silo-level differential privacy: DP-FedAvg (McMahan, Ramage, Talwar, Zhang, "Learning
Differentially Private Recurrent Language Models", ICLR 2018), beside record-level DP-SGD
(fl_jobs.core.privacy).

Adjacency: one whole silo added or removed. Each silo clips its model update (its trained
weights minus the round's global weights) to L2 norm ``C`` (``dp_silo_clip``), so one silo
moves the *sum* of the round's deltas by at most ``C``. The sum gets Gaussian noise of
standard deviation ``sigma * C`` and is divided by the round's planned cohort ``m`` (the
paper's fixed-denominator estimator with uniform weights: a silo's sample count neither
weights nor leaves it). The noise is added either

* ``orchestrator`` (trusted aggregator): by the orchestrator, drawn from a generator seeded
  with HMAC-SHA256 of a 256-bit run secret (``silo_dp.key`` in the run folder, from
  :func:`secrets.token_bytes`), the round and a label; the orchestrator sees every clipped
  update, so it is trusted with them; the secret stays in the run folder and keeps a resumed
  run bit-identical;
* ``distributed`` (under secure aggregation): each silo adds ``N(0, sigma^2 C^2 / k)`` from
  its own secret (fl_jobs.silo.silo_secret) before masking, with ``k`` the round's minimum cohort
  (``min_silos``, else every selected silo). A round is summed over ``k`` or more silos or
  refused, so the unmasked sum carries at least the full variance ``sigma^2 C^2``; the
  orchestrator never sees a single noisy update, only the masked sum.

Accounting: the sampled Gaussian mechanism with sample rate ``q = m / K`` (the client
fraction), noise multiplier ``sigma`` and one step per round, through Opacus's RDP
accountant (:func:`epsilon` equals ``RDPAccountant``). The selection draws exactly ``m``
silos without replacement, while the RDP bound is for Poisson sampling at rate ``q`` (as in
the paper's analysis): with ``q = 1`` (every silo every round) the two coincide exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from fl_jobs.config import silo_dp_budget as budget
from fl_jobs.config.silo_dp_budget import DEFAULT_DELTA

if TYPE_CHECKING:
    from fl_jobs.config import JobConfig
    from fl_jobs.core.training import LocalUpdate
    from fl_jobs.silo.silo_store import SiloStore
    from fl_jobs.strategies.base import WeightedMean

NoiseSite = Literal["orchestrator", "distributed"]

#: What every reported silo-level epsilon is for (summary.json and docs/fl-jobs.md).
ADJACENCY = "add/remove one silo"
#: Run-folder file holding the orchestrator's noise secret (trusted-aggregator mode).
ORCHESTRATOR_SECRET = "silo_dp.key"
_SECRET_BYTES = 32


def silo_dp_on(config: JobConfig) -> bool:
    return config.privacy.dp_level == "silo"


def cohort(config: JobConfig) -> int:
    """``m``: the silos selected each round, the fixed denominator of the mean."""
    return budget.cohort(config.federation)


def min_cohort(config: JobConfig) -> int:
    """``k``: the fewest silos a round may sum, over which distributed noise is split."""
    return budget.min_cohort(config.federation)


def sample_rate(config: JobConfig) -> float:
    return budget.sample_rate(config.federation)


def delta(config: JobConfig) -> float:
    return budget.delta(config.privacy)


def noise_multiplier(config: JobConfig) -> float:
    """``sigma`` (fl_jobs.config.silo_dp_budget)."""
    return budget.noise_multiplier(config.privacy, config.federation)


def epsilon(sigma: float, rate: float, rounds: int, delta_: float) -> float:
    """Epsilon at ``delta_`` after ``rounds`` rounds: Opacus's RDP accountant for the sampled
    Gaussian mechanism (add/remove adjacency, here of one silo)."""
    from fl_jobs.core.privacy import add_remove_spent

    return add_remove_spent([(sigma, rate, rounds)], delta_)


def _seed(secret: bytes, label: bytes, context: int, round_: int) -> int:
    message = label + struct.pack(">QQ", context & (2**64 - 1), round_)
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big") >> 1


def _float_keys(weights: Mapping[str, torch.Tensor]) -> list[str]:
    return [k for k, v in weights.items() if torch.is_floating_point(v)]


def delta_norm(weights: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> float:
    """L2 norm of ``weights - base`` over the floating-point tensors (float64)."""
    total = 0.0
    for k in _float_keys(base):
        diff = weights[k].double() - base[k].double()
        total += float((diff * diff).sum())
    return math.sqrt(total)


def gaussian(
    like: Mapping[str, torch.Tensor], std: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """``N(0, std^2)`` noise shaped like the floating tensors of ``like``, drawn in the
    order of their names: the same draws whatever order a transport delivered them in (a
    safetensors load does not keep the state dict's)."""
    return {
        k: torch.normal(0.0, std, like[k].shape, generator=generator, dtype=torch.float64)
        for k in sorted(_float_keys(like))
    }


@dataclass(frozen=True)
class SiloRelease:
    """A silo's side: clip the update's delta to ``clip`` and, in distributed mode, add its
    share of the noise, seeded from the silo's secret and what is trained."""

    clip: float
    noise_std: float
    secret: bytes | None
    #: The mechanism as the silo's ledger records it: sigma, the sampling rate, delta.
    sigma: float = 0.0
    rate: float = 1.0
    delta: float = DEFAULT_DELTA

    @classmethod
    def for_worker(cls, config: JobConfig, store: SiloStore) -> SiloRelease | None:
        """The silo's release settings; in distributed mode its noise comes from the secret
        in ``store``, the silo's own store (the one its agent was given)."""
        if not silo_dp_on(config):
            return None
        assert config.privacy.dp_silo_clip is not None
        clip = float(config.privacy.dp_silo_clip)
        sigma, rate, delta_ = noise_multiplier(config), sample_rate(config), delta(config)
        if (config.privacy.dp_silo_noise or "orchestrator") != "distributed":
            return cls(clip, 0.0, None, sigma, rate, delta_)
        from fl_jobs.silo.silo_secret import silo_secret

        std = sigma * clip / math.sqrt(min_cohort(config))
        return cls(clip, std, silo_secret(store), sigma, rate, delta_)

    def release(self, run: str, round_: int) -> dict[str, Any]:
        """This round's entry in the silo's privacy ledger (fl_jobs.silo.silo_ledger), appended
        before the update leaves: one step of the sampled Gaussian mechanism at ``sigma`` and
        the client fraction. A record's influence is bounded by its silo's, so the entry
        composes with the record-level DP-SGD ones. Who adds the noise is part of it: in
        ``distributed`` mode the silo adds its share and relies on the round's other ``k - 1``
        shares; with the noise at the ``orchestrator``, the figure holds against everyone but
        the orchestrator, which sees the clipped update."""
        return {
            "run": run,
            "round": round_,
            "mechanism": "dp-fedavg-"
            + ("distributed" if self.secret is not None else "orchestrator"),
            "noise_multiplier": self.sigma,
            "sample_rate": self.rate,
            "steps": 1,
            "delta": self.delta,
        }

    def apply(
        self, update: LocalUpdate, base: Mapping[str, torch.Tensor], context: int, round_: int
    ) -> LocalUpdate:
        """The update as it leaves the silo: ``base`` + clipped delta (+ noise share), with a
        uniform weight of 1 (its sample count does not leave the silo)."""
        from dataclasses import replace

        out = dict(clip_update(update.weights, base, self.clip))
        if self.secret is not None and self.noise_std > 0:
            generator = torch.Generator().manual_seed(
                _seed(self.secret, b"fl-sandbox/dp-silo-noise/v1", context, round_)
            )
            for k, noise in gaussian(base, self.noise_std, generator).items():
                out[k] = (out[k].double() + noise).to(out[k].dtype)
        return replace(update, weights=out, n_samples=1)


def clip_update(
    weights: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor], clip: float
) -> dict[str, torch.Tensor]:
    """``base + delta * min(1, clip / |delta|)`` on floating tensors; others from ``base``.

    The scale is computed in float64 and shrunk by a relative 1e-6 so that the float32
    result's delta stays within ``clip`` (the orchestrator checks it)."""
    norm = delta_norm(weights, base)
    scale = 1.0 if norm <= clip else clip / norm * (1 - 1e-6)
    out: dict[str, torch.Tensor] = {}
    for k, w in weights.items():
        if not torch.is_floating_point(base[k]):
            out[k] = base[k].clone()
            continue
        diff = (w.double() - base[k].double()) * scale
        out[k] = (base[k].double() + diff).to(base[k].dtype)
    return out


def orchestrator_secret(run_dir: Path) -> bytes:
    """The run's noise secret, created on first use, kept for resuming (owner-only file)."""
    path = Path(run_dir) / ORCHESTRATOR_SECRET
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(secrets.token_bytes(_SECRET_BYTES))
        tmp.chmod(0o600)
        tmp.replace(path)
    value = path.read_bytes()
    if len(value) != _SECRET_BYTES:
        raise ValueError(f"{path} is damaged (expected {_SECRET_BYTES} bytes)")
    return value


class SiloDPAggregator:
    """The orchestrator's side: sum the clipped deltas (orchestrator mode: add the noise),
    divide by the planned cohort ``m``, and account."""

    def __init__(self, config: JobConfig, run_dir: Path) -> None:
        assert config.privacy.dp_silo_clip is not None
        self.clip = float(config.privacy.dp_silo_clip)
        self.site: NoiseSite = config.privacy.dp_silo_noise or "orchestrator"
        self.sigma = noise_multiplier(config)
        self.m = cohort(config)
        self.k = min_cohort(config)
        self.rate = sample_rate(config)
        self.delta = delta(config)
        self.secret = orchestrator_secret(run_dir) if self.site == "orchestrator" else None

    def _noisy_mean(
        self, rnd: int, base: Mapping[str, torch.Tensor], total: dict[str, torch.Tensor], n: int
    ) -> WeightedMean:
        from fl_jobs.errors import QuorumLostError
        from fl_jobs.strategies.base import WeightedMean

        if n < self.k:
            raise QuorumLostError(
                f"round {rnd}: silo-level DP needs the updates of at least {self.k} silos "
                f"(its noise is split over that many), and only {n} arrived",
                "keep more silos answering (see --round-timeout), or lower --min-silos",
            )
        if self.secret is not None:
            generator = torch.Generator().manual_seed(
                _seed(self.secret, b"fl-sandbox/dp-silo-central/v1", 0, rnd)
            )
            for k, noise in gaussian(base, self.sigma * self.clip, generator).items():
                total[k] = total[k] + noise
        mean = {
            k: (base[k].double() + total[k] / self.m).to(base[k].dtype)
            if k in total
            else base[k].clone()
            for k in base
        }
        return WeightedMean(mean, float(n), n)

    def mean_of_updates(
        self,
        rnd: int,
        base: Mapping[str, torch.Tensor],
        updates: Iterable[LocalUpdate],
        reject: Callable[[str, str], None],
    ) -> WeightedMean:
        """Trusted-aggregator mode: each update's delta checked against the clip (an update
        beyond it is rejected, as it would break the sensitivity bound), summed, noised."""
        total = {k: torch.zeros(base[k].shape, dtype=torch.float64) for k in _float_keys(base)}
        n = 0
        for update in updates:
            norm = delta_norm(update.weights, base)
            if norm > self.clip * (1 + 1e-5):
                reject(str(update.silo), f"its update's norm {norm:.6g} exceeds --dp-silo-clip")
                continue
            for k in total:
                total[k] += update.weights[k].double() - base[k].double()
            n += 1
        return self._noisy_mean(rnd, base, total, n)

    def mean_of_secure(
        self, rnd: int, base: Mapping[str, torch.Tensor], mean: WeightedMean
    ) -> WeightedMean:
        """Distributed mode: the unmasked uniform mean of ``count`` noisy clipped updates
        back to their sum, over the fixed cohort ``m`` (the noise is already in)."""
        n = mean.count
        total = {k: (mean.weights[k].double() - base[k].double()) * n for k in _float_keys(base)}
        return self._noisy_mean(rnd, base, total, n)

    def record(self, rounds_done: int) -> dict[str, Any]:
        """What a round record keeps: the mode and epsilon spent after ``rounds_done``."""
        return {
            "mode": self.site,
            "epsilon": epsilon(self.sigma, self.rate, rounds_done, self.delta),
        }


def summary(config: JobConfig, rounds_done: int) -> dict[str, Any]:
    """summary.json's ``silo_dp`` block."""
    sigma = noise_multiplier(config)
    return {
        "level": "silo",
        "mode": config.privacy.dp_silo_noise or "orchestrator",
        "adjacency": ADJACENCY,
        "clip": config.privacy.dp_silo_clip,
        "noise_multiplier": sigma,
        "target_epsilon": config.privacy.target_epsilon,
        "delta": delta(config),
        "sample_rate": sample_rate(config),
        "cohort": cohort(config),
        "min_cohort": min_cohort(config),
        "rounds": rounds_done,
        "epsilon": epsilon(sigma, sample_rate(config), rounds_done, delta(config)),
    }
