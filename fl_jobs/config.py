"""The job configuration: one validated object shared by the CLI, the local federation and the
Azure ML entry scripts.

A YAML file (``--config job.yaml``) and CLI options give the same settings; CLI options win.
Unknown keys are rejected so that a typo never silently falls back to a default, and no value
is silently taken for another: ``true`` is not a number, ``3.0`` is not a whole number (the
command line refuses both too), ``inf`` is not a setting, and a setting the chosen example
does not read is refused rather than ignored.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from fl_jobs.approval_spec import ApprovalSpec
from fl_jobs.errors import JobConfigError, PartitionError

Task = Literal["classification", "regression"]

#: A run name is a folder name under ``runs/``.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: MLflow store schemes accepted for ``tracking_uri``.
TRACKING_SCHEMES = (
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "http",
    "https",
    "databricks",
    "azureml",
)


class StrategyChoice(BaseModel):
    """The aggregation strategy and its options: ``strategy: fedadam`` or
    ``strategy: {name: fedadam, eta: 0.01}`` in YAML. Every option is checked and recorded
    with its value (defaults filled in), so a run's files say exactly what it ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "fedavg"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, value: Any) -> Any:
        if isinstance(value, StrategyChoice):
            return value
        if isinstance(value, str):
            return {"name": value, "options": {}}
        if isinstance(value, Mapping) and set(value) == {"name", "options"}:
            return dict(value)
        if isinstance(value, Mapping):
            data = dict(value)
            if "name" not in data:
                raise ValueError(
                    "the strategy section needs a 'name' - e.g. strategy: {name: fedprox, mu: 0.01}"
                )
            name = data.pop("name")
            if not isinstance(name, str):
                raise ValueError(f"strategy name must be text, got {name!r} - e.g. name: fedadam")
            return {"name": name, "options": data}
        raise ValueError(
            f"strategy must be a name or a mapping, got {value!r} - e.g. strategy: fedadam, or "
            "strategy: {name: fedprox, mu: 0.01}"
        )

    @model_validator(mode="after")
    def _check(self) -> StrategyChoice:
        from fl_jobs.strategies.registry import normalize

        object.__setattr__(self, "options", normalize(self.name, self.options))
        return self

    @model_serializer
    def _flat(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    def __str__(self) -> str:
        return self.name

    def describe(self) -> str:
        """``fedadam (eta=0.01, beta_1=0.9, ...)``."""
        if not self.options:
            return self.name
        values = ", ".join(f"{k}={_option_text(v)}" for k, v in self.options.items())
        return f"{self.name} ({values})"


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _option_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


class JobConfig(BaseModel):
    """Every setting of an FL job. ``None`` training settings take the example's defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    example: str = Field(default="digits", description="digits | mnist | turbofan | tabular")
    silos: int = Field(default=5, ge=1, description="number of silos")
    rounds: int = Field(default=20, ge=1, description="federated rounds")
    partition: str = Field(
        default="iid",
        description="iid | dirichlet:ALPHA | shards:K | quantity:ALPHA",
    )
    epochs: int | None = Field(default=None, ge=1, description="local epochs per round (E)")
    batch_size: int | None = Field(default=None, ge=1, description="local batch size (B)")
    lr: float | None = Field(default=None, gt=0, description="local SGD learning rate")
    momentum: float | None = Field(default=None, ge=0, lt=1, description="local SGD momentum")
    clip_norm: float | None = Field(
        default=None, gt=0, description="DP-SGD: per-example gradient norm bound (privacy on)"
    )
    noise_multiplier: float | None = Field(
        default=None, ge=0, description="DP-SGD: noise std as a multiple of clip_norm"
    )
    target_delta: float | None = Field(
        default=None, gt=0, lt=1, description="DP delta for epsilon (default: 0.1/n per silo)"
    )
    target_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="DP-SGD: each silo's noise spends this epsilon over the planned rounds",
    )
    dp_level: Literal["record", "silo"] = Field(
        default="record",
        description="DP adjacency: record (DP-SGD, --clip-norm) or silo (DP-FedAvg, "
        "--dp-silo-clip; fl_jobs.silo_dp)",
    )
    dp_silo_clip: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="silo-level DP: L2 norm each silo's update is clipped to",
    )
    dp_silo_noise: Literal["orchestrator", "distributed"] | None = Field(
        default=None,
        description="silo-level DP: noise added by the orchestrator (trusted) or split "
        "across silos under secure aggregation (default: orchestrator)",
    )
    fraction: float = Field(default=1.0, gt=0, le=1, description="client fraction C per round")
    seed: int = Field(
        default=0, ge=0, le=2**63 - 1, description="seed of partitioning, sampling and init"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="torch device each silo trains on: auto (CUDA if visible), cpu or cuda",
    )
    server_lr: float = Field(default=1.0, gt=0, description="server learning rate")
    server_momentum: float = Field(default=0.0, ge=0, lt=1, description="server momentum")
    strategy: StrategyChoice = Field(
        default=StrategyChoice(name="fedavg"), description="aggregation strategy and its options"
    )
    screen_norms: bool | None = Field(
        default=None,
        description="reject updates whose norm is far above the round's median (default: on "
        "for robust strategies)",
    )
    norm_limit: float = Field(
        default=10.0, gt=1, description="norm screening: reject above this x the median norm"
    )
    secure_aggregation: bool = Field(
        default=False, description="the orchestrator sees only the masked sum of the updates"
    )
    silo_metrics: Literal["clear", "dp", "none"] | None = Field(
        default=None,
        description="per-silo training metrics sent to the orchestrator: clear, dp (noised, "
        "counted in epsilon; needs clip_norm) or none "
        "(default: none with DP or secure aggregation, else clear)",
    )
    secure_aggregation_weights: Literal["samples", "equal"] = Field(
        default="samples",
        description="secure aggregation: weight each update by its silo's sample count "
        "(masked; the round's total is revealed, and totals of rounds with different cohorts "
        "give counts away by difference) or equally (no count leaves a silo)",
    )
    secure_aggregation_clip: float = Field(
        default=256.0,
        gt=0,
        allow_inf_nan=False,
        description="secure aggregation: the largest |weight| a silo may send (fixed-point range)",
    )
    model: str | None = Field(default=None, description="model variant (mnist: 2nn | cnn)")
    data_dir: Path | None = Field(default=None, description="folder holding the example's files")
    data: Path | None = Field(default=None, description="CSV file (tabular example)")
    target: str | None = Field(default=None, description="target column (tabular example)")
    task: Task | None = Field(default=None, description="classification | regression")
    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="held-out test share when no official split exists"
    )
    max_train_samples: int | None = Field(
        default=None, ge=1, description="use a seeded subset of the training data"
    )
    summary: Path | None = Field(default=None, description="write the JSON summary here")
    output_dir: Path | None = Field(
        default=None, description="run folder (default: runs/<name>/<date-time>/)"
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (default: sqlite store in output_dir)"
    )
    tracking: bool = Field(default=True, description="log params and metrics to MLflow")
    baselines: bool = Field(default=True, description="also train centralized and local-only")
    approval: ApprovalSpec | None = Field(
        default=None, description="approval hook asked before an Azure ML submission"
    )
    # Running safely: quorum, timeouts, checkpoints, output folders.
    name: str | None = Field(
        default=None, description="run name: runs go to runs/<name>/ (default: the example)"
    )
    min_silos: int | None = Field(
        default=None, ge=1, description="quorum: fewest answering silos a round needs (all)"
    )
    round_timeout: float | None = Field(
        default=None, gt=0, description="seconds a round waits for a silo (no limit)"
    )
    async_buffer: int | None = Field(
        default=None,
        ge=1,
        description="asynchronous rounds (FedBuff): silos train continuously and the "
        "orchestrator folds every M arriving updates, staleness-weighted; rounds then count "
        "folds (default: synchronous rounds)",
    )
    checkpoints: bool = Field(default=True, description="checkpoint every round (resumable)")
    collapse_rounds: int = Field(
        default=3,
        ge=0,
        description="stop a run whose model is no better than untrained (loss above the "
        "untrained model's, or accuracy at chance) for this many rounds in a row (0: never)",
    )
    overwrite: bool = Field(default=False, description="replace a run in output_dir")

    @field_validator("*", mode="before")
    @classmethod
    def _check_number_types(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse what pydantic would quietly convert: ``true`` to 1, ``3.0`` to 3, 1 to True."""
        field = cls.model_fields.get(info.field_name or "")
        kind = _number_kind(field.annotation) if field else None
        if kind is None or value is None:
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r} - write true or false")
        elif isinstance(value, bool):
            example = "3" if kind == "int" else "0.5"
            raise ValueError(
                f"expected a {'whole ' if kind == 'int' else ''}number, got {str(value).lower()} "
                f"(a boolean) - write a number, e.g. {example}"
            )
        elif kind == "int" and isinstance(value, float):
            fix = f"write {int(value)}" if value.is_integer() else "write a whole number"
            raise ValueError(f"expected a whole number, got {value!r} - {fix}")
        elif kind == "int" and isinstance(value, str) and "." in value:
            # the command line's "--rounds 3.0": pydantic would read it as 3
            number = _float_or_none(value)
            if number is not None:
                fix = f"write {int(number)}" if number.is_integer() else "write a whole number"
                raise ValueError(f"expected a whole number, got {value} - {fix}")
        return value

    @field_validator("partition")
    @classmethod
    def _check_partition(cls, value: str) -> str:
        from fl_jobs.partition import parse_partition

        try:
            parse_partition(value)
        except PartitionError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("tracking_uri")
    @classmethod
    def _check_tracking_uri(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split(":", 1)[0].split("+", 1)[0] if ":" in value else ""
        if scheme == "file":
            raise ValueError(
                f"tracking URI {value!r} is a file store, which MLflow 3 refuses (maintenance "
                "mode) - use a SQLite store, e.g. sqlite:///runs/mlflow.db"
            )
        if scheme not in TRACKING_SCHEMES:
            raise ValueError(
                f"tracking URI {value!r} must start with one of "
                f"{', '.join(s + ':' for s in TRACKING_SCHEMES)} - e.g. sqlite:///runs/mlflow.db"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not RUN_NAME.fullmatch(value):
            raise ValueError(
                f"run name {value!r} must be 1-64 letters, digits, '.', '_' or '-' "
                "(it names a folder), e.g. mnist-cnn"
            )
        return value

    def screens_norms(self) -> bool:
        """Whether updates with outlying norms are rejected (the strategy's default unless
        ``screen_norms`` says otherwise)."""
        from fl_jobs.strategies.registry import get_info

        if self.screen_norms is not None:
            return self.screen_norms
        return get_info(self.strategy.name).robust

    @model_validator(mode="after")
    def _check_strategy(self) -> JobConfig:
        from fl_jobs.strategies.client_fraction import silos_per_round
        from fl_jobs.strategies.registry import MEAN_FAMILY, get_info

        info = get_info(self.strategy.name)
        if not info.server_sgd and (self.server_lr != 1.0 or self.server_momentum != 0.0):
            users = ", ".join(n for n, i in _strategies().items() if i.server_sgd)
            raise ValueError(
                f"server_lr and server_momentum are options of {users}, not of "
                f"{info.name} - drop --server-lr and --server-momentum"
            )
        need = info.min_updates(self.strategy.options)
        per_round = silos_per_round(self.fraction, self.silos)
        if per_round < need:
            raise ValueError(
                f"strategy {self.strategy.describe()} needs at least {need} updates a round, "
                f"but {per_round} silos train each round ({self.silos} silos x fraction "
                f"{self.fraction}) - use more silos, or lower its options"
            )
        if self.secure_aggregation and info.name not in MEAN_FAMILY:
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
        if info.silo_state and self.screen_norms:
            raise ValueError(
                f"screen_norms cannot run with strategy {info.name}: its updates carry "
                "control-variate changes, whose norms screening does not know - drop "
                "--screen-norms"
            )
        if self.secure_aggregation:
            self._check_secure_aggregation(per_round)
        elif self.secure_aggregation_weights != "samples":
            raise ValueError(
                "secure_aggregation_weights applies to secure aggregation - add "
                "--secure-aggregation, or drop --secure-aggregation-weights"
            )
        if self.silo_metrics == "dp" and self.clip_norm is None:
            raise ValueError(
                "silo_metrics dp needs DP-SGD, whose accountant counts the noised metrics - "
                "set --clip-norm, or use --silo-metrics none"
            )
        return self

    def _check_secure_aggregation(self, per_round: int) -> None:
        """What secure aggregation cannot do: sum fewer than 2 updates (the sum would be one
        silo's update) or screen norms it cannot see."""
        if per_round < 2:
            raise ValueError(
                f"secure_aggregation needs at least 2 silos a round, but {per_round} trains "
                f"each round ({self.silos} silos x fraction {self.fraction}) - use more silos "
                "or a larger fraction"
            )
        if self.min_silos is not None and self.min_silos < 2:
            raise ValueError(
                f"min_silos {self.min_silos} would let a round finish with one silo, whose sum "
                "is its own update - set min_silos to 2 or more with secure_aggregation"
            )
        if self.screen_norms:
            raise ValueError(
                "screen_norms cannot run with secure_aggregation: the orchestrator never sees "
                "an update's norm - drop --screen-norms (silos still refuse non-finite "
                "weights and weights beyond --secure-aggregation-clip)"
            )

    @model_validator(mode="after")
    def _check_async(self) -> JobConfig:
        """What FedBuff's buffer cannot do (fl_jobs.async_engine): it folds single updates
        as they arrive, so it needs each one in clear and a mean strategy's server step."""
        from fl_jobs.strategies.registry import MEAN_FAMILY

        m = self.async_buffer
        if m is None:
            return self
        if m > self.silos:
            raise ValueError(
                f"async_buffer {m} is more than the {self.silos} silos, and each fold takes "
                f"at most one update per silo - set --async-buffer to {self.silos} or less"
            )
        if self.strategy.name not in MEAN_FAMILY:
            raise ValueError(
                f"async_buffer cannot run strategy {self.strategy.name}: a fold applies a mean "
                f"strategy's server step to the buffered updates - choose one of "
                f"{', '.join(MEAN_FAMILY)}, or drop --async-buffer"
            )
        clash = [
            flag
            for flag, on in (
                ("--secure-aggregation", self.secure_aggregation),
                ("--dp-level silo", self.dp_level == "silo"),
                ("--fraction", self.fraction != 1.0),
                ("--min-silos", self.min_silos is not None),
                ("--screen-norms", bool(self.screen_norms)),
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
        return self

    @model_validator(mode="after")
    def _check_silo_dp(self) -> JobConfig:
        from fl_jobs.silo_dp import check_config

        check_config(self)
        return self

    @model_validator(mode="after")
    def _check_quorum(self) -> JobConfig:
        from fl_jobs.strategies.client_fraction import silos_per_round

        per_round = silos_per_round(self.fraction, self.silos)
        if self.min_silos is not None and self.min_silos > per_round:
            raise ValueError(
                f"min_silos {self.min_silos} is more than the {per_round} silos that train "
                f"each round ({self.silos} silos x fraction {self.fraction}) - lower min_silos "
                f"to {per_round} or less"
            )
        return self

    @field_validator("example")
    @classmethod
    def _check_example(cls, value: str) -> str:
        from fl_jobs.examples.registry import EXAMPLE_NAMES

        if value not in EXAMPLE_NAMES:
            raise ValueError(
                f"unknown example {value!r} - choose one of {', '.join(EXAMPLE_NAMES)}"
            )
        return value

    @model_validator(mode="after")
    def _fill_example_defaults(self) -> JobConfig:
        from fl_jobs.examples.registry import get_example

        example = get_example(self.example)
        for key, value in example.defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if example.models and self.model not in example.models:
            raise ValueError(
                f"model {self.model!r} is not available for example {self.example!r} - "
                f"choose one of {', '.join(example.models)}"
            )
        if not example.models and self.model is not None:
            raise ValueError(f"example {self.example!r} has no model variants - drop 'model'")
        silo_dp = self.dp_level == "silo"  # silo-level DP-FedAvg: fl_jobs.silo_dp
        if self.noise_multiplier is not None and self.clip_norm is None and not silo_dp:
            raise ValueError(
                "noise_multiplier needs clip_norm (DP-SGD clips, then adds noise) - add "
                "--clip-norm, or drop noise_multiplier"
            )
        if self.target_epsilon is not None and self.clip_norm is None and not silo_dp:
            raise ValueError(
                "target_epsilon needs clip_norm (DP-SGD clips, then adds the noise that spends "
                "the target) - add --clip-norm, or drop target_epsilon"
            )
        if self.target_epsilon is not None and self.noise_multiplier is not None:
            raise ValueError(
                "give either noise_multiplier or target_epsilon, not both (the target decides "
                "the noise) - drop one of them"
            )
        no_noise = self.noise_multiplier is None and self.target_epsilon is None
        if self.clip_norm is not None and no_noise:
            self.noise_multiplier = 1.0
        if self.example == "tabular" and (self.data is None or self.target is None):
            raise ValueError(
                "the tabular example needs 'data' (a CSV path) and 'target' - pass --data PATH "
                "--target COLUMN"
            )
        return self

    @model_validator(mode="after")
    def _check_example_settings(self) -> JobConfig:
        """A setting the example does not read is an error, not ignored (e.g. ``--data`` with
        the default digits example would train on digits, not on the CSV)."""
        from fl_jobs.examples.base import EXAMPLE_SETTINGS
        from fl_jobs.examples.registry import EXAMPLES

        unused = [
            name
            for name in EXAMPLE_SETTINGS
            if name not in EXAMPLES[self.example].own_settings
            and getattr(self, name) != type(self).model_fields[name].default
        ]
        if not unused:
            return self
        readers: dict[str, list[str]] = {}
        for name in unused:
            users = [n for n, example in EXAMPLES.items() if name in example.own_settings]
            readers.setdefault(", ".join(users), []).append(name)
        parts = [f"{', '.join(names)} (read only by {users})" for users, names in readers.items()]
        them = "them" if len(unused) > 1 else "it"
        fix = f"drop {them}"
        if {"data", "target", "task"} & set(unused):
            fix = f"add --example tabular to train on your CSV, or drop {them}"
        raise ValueError(f"the {self.example} example does not read {'; '.join(parts)} - {fix}")


def _strategies() -> dict[str, Any]:
    from fl_jobs.strategies.registry import STRATEGIES

    return STRATEGIES


def _number_kind(annotation: Any) -> Literal["bool", "int", "float"] | None:
    """``bool``, ``int`` or ``float`` for a field of that type (optional or not), else None."""
    types = set(typing.get_args(annotation)) - {type(None)} or {annotation}
    for kind, python_type in (("bool", bool), ("int", int), ("float", float)):
        if types == {python_type}:
            return kind  # type: ignore[return-value]
    return None


def _describe(exc: ValidationError, source: Path | None, overrides: dict[str, Any]) -> str:
    """Every problem, each ending with its fix (``<what> - <fix>``); pydantic's own messages
    get where to change the value: the command-line option or the key in the job file."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting - check the spelling (see `python -m fl_jobs run --help`)"
        elif " - " not in msg and where:
            key = str(err["loc"][0])
            option = "--" + key.replace("_", "-")
            msg += f" - change {option}" if key in overrides else f" - change {where} in {source}"
        problems.append(f"{where}: {msg}" if where else msg)
    return "; ".join(problems)


def load_job_config(path: Path | None, overrides: dict[str, Any] | None = None) -> JobConfig:
    """Read an optional YAML job file, apply non-``None`` overrides, validate.

    Raises :class:`JobConfigError` with every problem in one line.
    """
    from fl_jobs.job_yaml import read_job_yaml

    data: dict[str, Any] = {}
    source = "options"
    if path is not None:
        source = str(path)
        data.update(read_job_yaml(Path(path)))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    from fl_jobs.implied_settings import imply_example
    from fl_jobs.strategies.aliases import expand_aliases

    expand_aliases(data, given)  # fedavgm: fedavg with server momentum
    imply_example(data, given)  # --data alone: the tabular example
    try:
        given = strategy_overrides(data, given)
    except ValueError as exc:
        raise JobConfigError(f"invalid job config ({source}): {exc}") from None
    data.update(given)
    try:
        return JobConfig.model_validate(data)
    except ValidationError as exc:
        problems = _describe(exc, path, given)
        raise JobConfigError(f"invalid job config ({source}): {problems}") from None


def strategy_overrides(data: Mapping[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (command-line options) with ``--strategy NAME`` and ``--strategy-option
    KEY=VALUE`` (``strategy_options``, a list) folded into one ``strategy`` section.

    ``--strategy`` replaces the job file's strategy with its defaults; ``--strategy-option``
    alone changes options of the file's (or the default) strategy.
    """
    from fl_jobs.strategies.registry import DEFAULT, parse_option_text

    given = dict(given)
    name = given.pop("strategy", None)
    texts = given.pop("strategy_options", None) or []
    if name is None and not texts:
        return given
    options = dict(parse_option_text(text) for text in texts)
    if isinstance(name, StrategyChoice):
        name = name.model_dump()
    if isinstance(name, Mapping):
        section: dict[str, Any] = dict(name)
    elif name is not None:
        section = {"name": name}
    else:
        current = data.get("strategy", DEFAULT)
        if isinstance(current, StrategyChoice):
            current = current.model_dump()
        section = dict(current) if isinstance(current, Mapping) else {"name": current}
    section.update(options)
    given["strategy"] = section
    return given
