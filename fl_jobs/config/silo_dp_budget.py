"""Silo-level DP's parameters from a job's settings, without torch: the cohort, delta, and
the noise a target epsilon needs. The job config checks a silo-level DP setting with these
before anything runs; fl_jobs.silo.silo_dp adds the noise with the same numbers."""

from __future__ import annotations

import functools

from fl_jobs.config.federation import FederationSettings
from fl_jobs.config.privacy import PrivacySettings
from fl_jobs.strategies.client_fraction import silos_per_round

#: Fewest silos silo-level DP runs with: below this a mean of so few clipped updates is
#: swamped by the noise any useful epsilon needs, and "one silo" is a third of the data.
MIN_SILOS = 5
#: Default delta when ``target_delta`` is not given.
DEFAULT_DELTA = 1e-5


def cohort(federation: FederationSettings) -> int:
    """``m``: the silos selected each round, the fixed denominator of the mean."""
    return silos_per_round(federation.fraction, federation.silos)


def min_cohort(federation: FederationSettings) -> int:
    """``k``: the fewest silos a round may sum (the quorum), over which distributed noise is
    split."""
    return federation.min_silos or cohort(federation)


def sample_rate(federation: FederationSettings) -> float:
    return cohort(federation) / federation.silos


def delta(privacy: PrivacySettings) -> float:
    return DEFAULT_DELTA if privacy.target_delta is None else float(privacy.target_delta)


def noise_multiplier(privacy: PrivacySettings, federation: FederationSettings) -> float:
    """``sigma``: the given one, or the smallest (Opacus ``get_noise_multiplier``, RDP) whose
    ``rounds`` steps at the client fraction spend at most ``target_epsilon``."""
    if privacy.target_epsilon is None:
        return float(privacy.noise_multiplier if privacy.noise_multiplier is not None else 1.0)
    return noise_for_target(
        float(privacy.target_epsilon), delta(privacy), sample_rate(federation), federation.rounds
    )


@functools.lru_cache(maxsize=64)
def noise_for_target(target: float, delta_: float, rate: float, rounds: int) -> float:
    import warnings

    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha" on the way
        return float(
            get_noise_multiplier(
                target_epsilon=target,
                target_delta=delta_,
                sample_rate=rate,
                steps=rounds,
                accountant="rdp",
            )
        )
