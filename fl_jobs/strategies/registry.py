"""Every strategy by name, with its options, papers and constraints.

The job config names a strategy and its options (``strategy: {name: fedadam, eta: 0.01}``
in YAML, ``--strategy fedadam --strategy-option eta=0.01`` on the command line); this module
checks them (unknown names and options, values of the wrong kind or out of range are errors);
fl_jobs.strategies.build turns them into a strategy object. Import-light: no torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Value = float | int | bool


@dataclass(frozen=True)
class Option:
    """One strategy option: its kind, default, allowed range and meaning."""

    name: str
    kind: type[float] | type[int] | type[bool]
    default: Value
    help: str
    #: Allowed range as text (checked by :meth:`check`): ">= 0", "> 0", "[0, 1)", ">= 1".
    rule: str = ""

    def check(self, value: Value) -> str | None:
        """What is wrong with ``value`` (already of the right kind), or None."""
        if self.kind is bool:
            return None
        x = float(value)
        if not math.isfinite(x):
            return "must be a finite number"
        ok = {
            "": True,
            ">= 0": x >= 0,
            "> 0": x > 0,
            ">= 1": x >= 1,
            "[0, 1)": 0 <= x < 1,
            "[0, 0.5)": 0 <= x < 0.5,
        }[self.rule]
        if ok:
            return None
        return f"must be in {self.rule}" if self.rule.startswith("[") else f"must be {self.rule}"

    def describe(self) -> str:
        rule = f", {self.rule}" if self.rule else ""
        return f"{self.name} ({self.kind.__name__}{rule}, default {_text(self.default)})"


@dataclass(frozen=True)
class StrategyInfo:
    """A registered strategy: where its class lives and what a job may set."""

    name: str
    title: str
    module: str
    cls: str
    paper: str
    summary: str
    options: tuple[Option, ...] = ()
    #: Needs each silo's own update: no secure aggregation, norm screening on by default.
    robust: bool = False
    #: Takes the job's --server-lr and --server-momentum (FedAvgM).
    server_sgd: bool = False
    #: Keeps state between rounds (checkpointed, carried between Azure ML steps); FedAvg and
    #: FedProx only with server momentum.
    stateful: bool = False
    #: Keeps state at each silo and sends tensors both ways with the model (SCAFFOLD): needs
    #: each update in clear, every round's silos (no silo-level DP or async rounds) and the
    #: round engine (no unrolled pipeline).
    silo_state: bool = False

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def defaults(self) -> dict[str, Value]:
        return {o.name: o.default for o in self.options}

    def min_updates(self, options: Mapping[str, Value]) -> int:
        """The fewest updates a round needs (Krum: ``max(2f + 3, m)``)."""
        if self.name == "krum":
            return max(2 * int(options["f"]) + 3, int(options["m"]))
        return 1


_SERVER_OPT = (
    Option("eta", float, 0.01, "server learning rate", "> 0"),
    Option("beta_1", float, 0.9, "first-moment decay", "[0, 1)"),
    Option("beta_2", float, 0.99, "second-moment decay", "[0, 1)"),
    Option("tau", float, 1e-3, "adaptivity: added to sqrt(v)", "> 0"),
)
_REDDI = "Reddi et al., Adaptive Federated Optimization, ICLR 2021"
_YIN = "Yin et al., Byzantine-Robust Distributed Learning, ICML 2018"

STRATEGIES: dict[str, StrategyInfo] = {
    info.name: info
    for info in (
        StrategyInfo(
            "fedavg",
            "FedAvg",
            "fl_jobs.strategies.fedavg",
            "FedAvg",
            "McMahan et al., Communication-Efficient Learning of Deep Networks from "
            "Decentralized Data, AISTATS 2017; FedAvgM: Hsu et al., 2019",
            "sample-weighted mean; --server-lr / --server-momentum for FedAvgM",
            server_sgd=True,
            stateful=True,
        ),
        StrategyInfo(
            "fedprox",
            "FedProx",
            "fl_jobs.strategies.fedprox",
            "FedProx",
            "Li et al., Federated Optimization in Heterogeneous Networks, MLSys 2020",
            "FedAvg whose silos add mu/2 ||w - w_global||^2 to their loss",
            options=(Option("mu", float, 0.01, "weight of the proximal term", ">= 0"),),
            server_sgd=True,
            stateful=True,
        ),
        StrategyInfo(
            "fedadam",
            "FedAdam",
            "fl_jobs.strategies.fedadam",
            "FedAdam",
            _REDDI,
            "Adam on the server, on the mean's pseudo-gradient",
            options=(
                *_SERVER_OPT,
                Option("bias_correction", bool, False, "scale the step as Adam does"),
            ),
            stateful=True,
        ),
        StrategyInfo(
            "fedyogi",
            "FedYogi",
            "fl_jobs.strategies.fedyogi",
            "FedYogi",
            _REDDI,
            "Yogi on the server, on the mean's pseudo-gradient",
            options=_SERVER_OPT,
            stateful=True,
        ),
        StrategyInfo(
            "fedadagrad",
            "FedAdagrad",
            "fl_jobs.strategies.fedadagrad",
            "FedAdagrad",
            _REDDI,
            "Adagrad on the server, on the mean's pseudo-gradient",
            options=(
                Option("eta", float, 0.1, "server learning rate", "> 0"),
                Option("beta_1", float, 0.0, "first-moment decay", "[0, 1)"),
                Option("tau", float, 1e-3, "adaptivity: added to sqrt(v)", "> 0"),
            ),
            stateful=True,
        ),
        StrategyInfo(
            "scaffold",
            "SCAFFOLD",
            "fl_jobs.strategies.scaffold",
            "Scaffold",
            "Karimireddy et al., SCAFFOLD: Stochastic Controlled Averaging for Federated "
            "Learning, ICML 2020",
            "control variates correct each silo's local steps for its drift (label skew)",
            options=(Option("eta_g", float, 1.0, "server learning rate", "> 0"),),
            stateful=True,
            silo_state=True,
        ),
        StrategyInfo(
            "median",
            "median",
            "fl_jobs.strategies.median",
            "Median",
            _YIN,
            "coordinate-wise median of the updates",
            robust=True,
        ),
        StrategyInfo(
            "trimmed_mean",
            "trimmed mean",
            "fl_jobs.strategies.trimmed_mean",
            "TrimmedMean",
            _YIN,
            "coordinate-wise mean without the beta share of smallest and largest values",
            options=(
                Option("beta", float, 0.2, "share cut from each end per coordinate", "[0, 0.5)"),
            ),
            robust=True,
        ),
        StrategyInfo(
            "krum",
            "Krum",
            "fl_jobs.strategies.krum",
            "Krum",
            "Blanchard et al., Machine Learning with Adversaries: Byzantine Tolerant Gradient "
            "Descent, NeurIPS 2017",
            "the update(s) closest to their neighbours; m > 1 averages m of them (Multi-Krum)",
            options=(
                Option("f", int, 1, "silos assumed Byzantine", ">= 0"),
                Option("m", int, 1, "updates averaged: 1 is Krum, more is Multi-Krum", ">= 1"),
            ),
            robust=True,
        ),
    )
}
DEFAULT = "fedavg"
NAMES = tuple(STRATEGIES)
#: Strategies whose aggregation is a mean and a server step, which secure aggregation,
#: silo-level DP and asynchronous rounds can drive.
MEAN_FAMILY = tuple(
    name for name, info in STRATEGIES.items() if not info.robust and not info.silo_state
)
ROBUST = tuple(name for name, info in STRATEGIES.items() if info.robust)


def _text(value: Value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def get_info(name: str) -> StrategyInfo:
    info = STRATEGIES.get(name)
    if info is None:
        raise ValueError(f"unknown strategy {name!r} - choose one of {', '.join(NAMES)}")
    return info


def _coerce(info: StrategyInfo, option: Option, value: Any) -> Value:
    """``value`` (typed from YAML, or text from the command line) as the option's kind."""
    where = f"option {option.name} of {info.name}"
    example = f"e.g. {option.name}={_text(option.default)}"
    if isinstance(value, str):
        text = value.strip()
        try:
            if option.kind is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError
                value = text.lower() == "true"
            elif option.kind is int:
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            kind = {bool: "true or false", int: "a whole number", float: "a number"}[option.kind]
            raise ValueError(f"{where}: expected {kind}, got {value!r} - {example}") from None
    elif option.kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r} - {example}")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r} - {example}")
    elif option.kind is int and not isinstance(value, int):
        raise ValueError(f"{where}: expected a whole number, got {value!r} - {example}")
    problem = option.check(value)
    if problem:
        raise ValueError(f"{where}: {problem}, got {_text(value)} - {example}")
    return option.kind(value)


def normalize(name: str, options: Mapping[str, Any]) -> dict[str, Value]:
    """Every option of strategy ``name``, checked, with defaults filled in (the form a job
    records); ValueError ``<what> - <fix>`` for anything unknown or out of range."""
    info = get_info(name)
    unknown = sorted(set(options) - {o.name for o in info.options})
    if unknown:
        known = ", ".join(o.name for o in info.options)
        fix = f"its options are {known}" if known else "it has no options"
        raise ValueError(f"{name} has no option {unknown[0]!r} - {fix}")
    values = info.defaults()
    for key, value in options.items():
        values[key] = _coerce(info, info.option(key), value)  # type: ignore[arg-type]
    return values


def parse_option_text(text: str) -> tuple[str, str]:
    """``("eta", "0.01")`` from ``--strategy-option eta=0.01``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(
            f"--strategy-option {text!r} is not KEY=VALUE - e.g. --strategy-option mu=0.01"
        )
    return key.strip(), value.strip()


def strategy_title(name: str, options: Mapping[str, Value]) -> str:
    """How tables and plots name a strategy: its title, Multi-Krum for Krum with m > 1."""
    if name == "krum" and int(options.get("m", 1)) > 1:
        return "Multi-Krum"
    return get_info(name).title


def options_help() -> str:
    """Every strategy's options, for ``--help``."""
    parts = []
    for info in STRATEGIES.values():
        if info.options:
            parts.append(f"{info.name}: " + ", ".join(o.describe() for o in info.options))
    return "; ".join(parts)
