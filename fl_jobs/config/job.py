"""The job configuration: one validated object shared by the CLI, the local federation and
the Azure ML entry scripts, in sections (``example``, ``training``, ``federation``,
``strategy``, ``server``, ``privacy``, ``secure_aggregation``, ``run``).

A job file may use the sections or the flat keys of the command line (fl_jobs.config.flat_keys);
CLI options win over the file. Unknown keys are rejected so that a typo never silently falls
back to a default, no value is silently taken for another (fl_jobs.examples.strict_model), and a
setting the chosen example does not read is refused rather than ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, model_validator

from fl_jobs.config.cross_checks import check_sections
from fl_jobs.config.federation import FederationSettings
from fl_jobs.config.flat_keys import DEFAULT_EXAMPLE, flatten, nest, overlay
from fl_jobs.config.local_training import TrainingSettings
from fl_jobs.config.privacy import PrivacySettings
from fl_jobs.config.run import RunSettings
from fl_jobs.config.secure_aggregation import SecureAggregationSettings
from fl_jobs.config.server import ServerSettings
from fl_jobs.examples.registry import EXAMPLES
from fl_jobs.examples.settings import ExampleSettings
from fl_jobs.examples.strict_model import StrictModel
from fl_jobs.strategies.choice import StrategyChoice
from fl_jobs.strategies.registry import get_info


def _example_name(value: Any) -> str:
    if isinstance(value, ExampleSettings):
        return value.name
    if isinstance(value, dict):
        return str(value.get("name", DEFAULT_EXAMPLE))
    return DEFAULT_EXAMPLE


if TYPE_CHECKING:
    ExampleSection = ExampleSettings
else:
    #: The chosen example's own settings model, generated from the example registry.
    ExampleSection = Annotated[
        Union[tuple(Annotated[cls.settings, Tag(name)] for name, cls in EXAMPLES.items())],  # noqa: UP007
        Discriminator(_example_name),
    ]


class JobConfig(StrictModel):
    """Every setting of an FL job. ``None`` training settings take the example's defaults."""

    example: ExampleSection = Field(default_factory=lambda: EXAMPLES[DEFAULT_EXAMPLE].settings())
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    strategy: StrategyChoice = Field(default_factory=lambda: StrategyChoice(name="fedavg"))
    server: ServerSettings = Field(default_factory=ServerSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    secure_aggregation: SecureAggregationSettings = Field(default_factory=SecureAggregationSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, value: Any) -> Any:
        """Flat keys (older job files, checkpoints, ``JobConfig(rounds=3)``) into sections."""
        if isinstance(value, dict):
            return nest(value)
        return value

    @model_validator(mode="after")
    def _check_and_fill(self) -> JobConfig:
        example = EXAMPLES[self.example.name]
        for key, value in example.defaults.items():
            if getattr(self.training, key) is None:
                setattr(self.training, key, value)
        check_sections(
            self.federation, self.strategy, self.server, self.privacy, self.secure_aggregation
        )
        no_noise = self.privacy.noise_multiplier is None and self.privacy.target_epsilon is None
        if self.privacy.clip_norm is not None and no_noise:
            self.privacy.noise_multiplier = 1.0
        return self

    @classmethod
    def of(cls, **settings: Any) -> JobConfig:
        """A job from flat keys: ``JobConfig.of(example="mnist", rounds=3)``."""
        return cls.model_validate(settings)

    def with_settings(self, **settings: Any) -> JobConfig:
        """This job with some settings changed by flat key, validated again:
        ``job.with_settings(rounds=6)``."""
        return type(self).model_validate(overlay(self.model_dump(), settings))

    def screens_norms(self) -> bool:
        """Whether updates with outlying norms are rejected (the strategy's default unless
        ``screen_norms`` says otherwise)."""
        if self.server.screen_norms is not None:
            return self.server.screen_norms
        return get_info(self.strategy.name).robust

    def silo_metrics_policy(self) -> str:
        """Which of a silo's training metrics leave it (fl_jobs.core.silo_metrics): ``clear``,
        ``dp`` or ``none``: the job's setting, else ``none`` with DP or secure aggregation."""
        if self.privacy.silo_metrics is not None:
            return self.privacy.silo_metrics
        dp = self.privacy.clip_norm is not None or self.privacy.dp_level == "silo"
        private = dp or self.secure_aggregation.enabled
        return "none" if private else "clear"

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat key (fl_jobs.config.flat_keys), as JSON values."""
        return flatten(self.model_dump(mode="json"))
