"""The job configuration in sections (fl_jobs.config.job), how it is read (loading) and how
its flat keys map to the sections (flat_keys)."""

from fl_jobs.config.flat_keys import overlay
from fl_jobs.config.job import JobConfig
from fl_jobs.config.loading import describe, load_job_config, strategy_overrides
from fl_jobs.config.run import RUN_NAME, TRACKING_SCHEMES
from fl_jobs.examples.base import Task
from fl_jobs.strategies.choice import StrategyChoice

__all__ = [
    "RUN_NAME",
    "TRACKING_SCHEMES",
    "JobConfig",
    "StrategyChoice",
    "Task",
    "describe",
    "load_job_config",
    "overlay",
    "strategy_overrides",
]
