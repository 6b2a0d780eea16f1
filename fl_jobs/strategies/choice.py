"""The job's ``strategy`` section: a strategy's name and its options, checked against the
registry (fl_jobs.strategies.registry) and recorded with every default filled in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from fl_jobs.strategies.registry import normalize


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


def _option_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"
