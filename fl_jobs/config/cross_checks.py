"""Every check that reads more than one section, in one place: what a strategy, secure
aggregation, asynchronous rounds, DP and the quorum cannot do together. Each raises
``ValueError("<what> - <fix>")`` before anything runs."""

from __future__ import annotations

from fl_jobs.config.federation import FederationSettings
from fl_jobs.config.privacy import PrivacySettings
from fl_jobs.config.secure_aggregation import SecureAggregationSettings
from fl_jobs.config.server import ServerSettings
from fl_jobs.config.silo_dp_budget import MIN_SILOS, cohort, delta, noise_multiplier
from fl_jobs.strategies.choice import StrategyChoice
from fl_jobs.strategies.client_fraction import silos_per_round
from fl_jobs.strategies.registry import MEAN_FAMILY, STRATEGIES, get_info


def check_sections(
    federation: FederationSettings,
    strategy: StrategyChoice,
    server: ServerSettings,
    privacy: PrivacySettings,
    secure: SecureAggregationSettings,
) -> None:
    """Every cross-section rule, in the order a user meets them."""
    check_dp_modes(privacy)
    check_strategy(federation, strategy, server, privacy, secure)
    check_async(federation, strategy, server, privacy, secure)
    check_silo_dp(federation, strategy, server, privacy, secure)
    check_quorum(federation)


def check_dp_modes(privacy: PrivacySettings) -> None:
    """DP-SGD's noise needs its clipping; a target and a noise multiplier exclude each other."""
    silo_dp = privacy.dp_level == "silo"  # silo-level DP-FedAvg: fl_jobs.silo.silo_dp
    if privacy.noise_multiplier is not None and privacy.clip_norm is None and not silo_dp:
        raise ValueError(
            "noise_multiplier needs clip_norm (DP-SGD clips, then adds noise) - add "
            "--clip-norm, or drop noise_multiplier"
        )
    if privacy.target_epsilon is not None and privacy.clip_norm is None and not silo_dp:
        raise ValueError(
            "target_epsilon needs clip_norm (DP-SGD clips, then adds the noise that spends "
            "the target) - add --clip-norm, or drop target_epsilon"
        )
    if privacy.target_epsilon is not None and privacy.noise_multiplier is not None:
        raise ValueError(
            "give either noise_multiplier or target_epsilon, not both (the target decides "
            "the noise) - drop one of them"
        )


def check_strategy(
    federation: FederationSettings,
    strategy: StrategyChoice,
    server: ServerSettings,
    privacy: PrivacySettings,
    secure: SecureAggregationSettings,
) -> None:
    info = get_info(strategy.name)
    if not info.server_sgd and (server.lr != 1.0 or server.momentum != 0.0):
        users = ", ".join(n for n, i in STRATEGIES.items() if i.server_sgd)
        raise ValueError(
            f"server_lr and server_momentum are options of {users}, not of "
            f"{info.name} - drop --server-lr and --server-momentum"
        )
    need = info.min_updates(strategy.options)
    per_round = silos_per_round(federation.fraction, federation.silos)
    if per_round < need:
        raise ValueError(
            f"strategy {strategy.describe()} needs at least {need} updates a round, "
            f"but {per_round} silos train each round ({federation.silos} silos x fraction "
            f"{federation.fraction}) - use more silos, or lower its options"
        )
    if secure.enabled and info.name not in MEAN_FAMILY:
        needs = (
            "a robust aggregator needs each silo's own update"
            if info.robust
            else "it sums each silo's control-variate change apart from the model's mean"
        )
        raise ValueError(
            f"secure_aggregation cannot be combined with strategy {info.name}: {needs}, "
            f"which secure aggregation hides from the orchestrator - choose one of "
            f"{', '.join(MEAN_FAMILY)}, or drop secure_aggregation"
        )
    if info.silo_state and server.screen_norms:
        raise ValueError(
            f"screen_norms cannot run with strategy {info.name}: its updates carry "
            "control-variate changes, whose norms screening does not know - drop "
            "--screen-norms"
        )
    if secure.enabled:
        check_secure_aggregation(federation, server, per_round)
    elif secure.weights != "samples":
        raise ValueError(
            "secure_aggregation_weights applies to secure aggregation - add "
            "--secure-aggregation, or drop --secure-aggregation-weights"
        )
    if privacy.silo_metrics == "dp" and privacy.clip_norm is None:
        raise ValueError(
            "silo_metrics dp needs DP-SGD, whose accountant counts the noised metrics - "
            "set --clip-norm, or use --silo-metrics none"
        )


def check_secure_aggregation(
    federation: FederationSettings, server: ServerSettings, per_round: int
) -> None:
    """What secure aggregation cannot do: sum fewer than 2 updates (the sum would be one
    silo's update) or screen norms it cannot see."""
    if per_round < 2:
        raise ValueError(
            f"secure_aggregation needs at least 2 silos a round, but {per_round} trains "
            f"each round ({federation.silos} silos x fraction {federation.fraction}) - use "
            "more silos or a larger fraction"
        )
    if federation.min_silos is not None and federation.min_silos < 2:
        raise ValueError(
            f"min_silos {federation.min_silos} would let a round finish with one silo, whose "
            "sum is its own update - set min_silos to 2 or more with secure_aggregation"
        )
    if server.screen_norms:
        raise ValueError(
            "screen_norms cannot run with secure_aggregation: the orchestrator never sees "
            "an update's norm - drop --screen-norms (silos still refuse non-finite "
            "weights and weights beyond --secure-aggregation-clip)"
        )


def check_async(
    federation: FederationSettings,
    strategy: StrategyChoice,
    server: ServerSettings,
    privacy: PrivacySettings,
    secure: SecureAggregationSettings,
) -> None:
    """What FedBuff's buffer cannot do (fl_jobs.rounds.async_engine): it folds single updates as
    they arrive, so it needs each one in clear and a mean strategy's server step."""
    m = federation.async_buffer
    if m is None:
        return
    if m > federation.silos:
        raise ValueError(
            f"async_buffer {m} is more than the {federation.silos} silos, and each fold takes "
            f"at most one update per silo - set --async-buffer to {federation.silos} or less"
        )
    if strategy.name not in MEAN_FAMILY:
        raise ValueError(
            f"async_buffer cannot run strategy {strategy.name}: a fold applies a mean "
            f"strategy's server step to the buffered updates - choose one of "
            f"{', '.join(MEAN_FAMILY)}, or drop --async-buffer"
        )
    clash = [
        flag
        for flag, on in (
            ("--secure-aggregation", secure.enabled),
            ("--dp-level silo", privacy.dp_level == "silo"),
            ("--fraction", federation.fraction != 1.0),
            ("--min-silos", federation.min_silos is not None),
            ("--screen-norms", bool(server.screen_norms)),
        )
        if on
    ]
    if clash:
        raise ValueError(
            f"async_buffer cannot be combined with {', '.join(clash)}: secure aggregation "
            "and silo-level DP need a fixed cohort per round, and every silo trains "
            "continuously (no client fraction, no quorum) - drop "
            f"{' and '.join(clash)}, or drop --async-buffer"
        )


def check_silo_dp(
    federation: FederationSettings,
    strategy: StrategyChoice,
    server: ServerSettings,
    privacy: PrivacySettings,
    secure: SecureAggregationSettings,
) -> None:
    """A silo-level DP setting that cannot hold (fl_jobs.silo.silo_dp)."""
    if privacy.dp_level != "silo":
        if privacy.dp_silo_clip is not None or privacy.dp_silo_noise is not None:
            raise ValueError(
                "dp_silo_clip and dp_silo_noise are settings of silo-level DP - add "
                "--dp-level silo, or drop them"
            )
        return
    if privacy.dp_silo_clip is None:
        raise ValueError(
            "silo-level DP needs dp_silo_clip, the L2 norm each silo's update is clipped to "
            "- add --dp-silo-clip C (e.g. 1.0)"
        )
    if privacy.clip_norm is not None:
        raise ValueError(
            "clip_norm is record-level DP-SGD and dp_level silo is silo-level DP-FedAvg: "
            "one mode at a time - drop --clip-norm or --dp-level silo"
        )
    silos = federation.silos
    if silos < MIN_SILOS:
        raise ValueError(
            f"silo-level DP with {silos} silos: one silo is too large a share for "
            f"noise that hides it to leave a useful mean - use at least {MIN_SILOS} silos, "
            "or record-level DP (--clip-norm)"
        )
    if cohort(federation) < 2:
        raise ValueError(
            f"silo-level DP needs at least 2 silos a round, but {cohort(federation)} trains - "
            "raise --fraction"
        )
    if strategy.name not in MEAN_FAMILY:
        raise ValueError(
            f"silo-level DP cannot use strategy {strategy.name}: its sensitivity "
            f"bound is for a mean of model updates - choose one of {', '.join(MEAN_FAMILY)}"
        )
    if server.screen_norms:
        raise ValueError(
            "screen_norms cannot run with silo-level DP: rejecting an update by its norm "
            "depends on the other silos' data - drop --screen-norms (updates are clipped)"
        )
    site = privacy.dp_silo_noise or "orchestrator"
    if site == "distributed" and not secure.enabled:
        raise ValueError(
            "dp_silo_noise distributed splits the noise across silos and needs the "
            "orchestrator to see only their sum - add --secure-aggregation, or use "
            "--dp-silo-noise orchestrator"
        )
    if delta(privacy) * silos >= 1:
        raise ValueError(
            f"target_delta {delta(privacy):g} is >= 1/{silos} silos (leaking one silo "
            f"at random would meet it) - use --target-delta {0.1 / silos:.2g} or less"
        )
    if privacy.target_epsilon is not None:
        try:
            noise_multiplier(privacy, federation)
        except ValueError as exc:
            raise ValueError(
                f"target_epsilon {privacy.target_epsilon:g} cannot be met ({exc}) - raise "
                "--target-epsilon or train fewer --rounds"
            ) from None


def check_quorum(federation: FederationSettings) -> None:
    per_round = silos_per_round(federation.fraction, federation.silos)
    if federation.min_silos is not None and federation.min_silos > per_round:
        raise ValueError(
            f"min_silos {federation.min_silos} is more than the {per_round} silos that train "
            f"each round ({federation.silos} silos x fraction {federation.fraction}) - lower "
            f"min_silos to {per_round} or less"
        )
