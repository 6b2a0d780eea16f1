"""Error types of the FL jobs.

Every bad input raises a subclass of :class:`FLJobError` with a message naming what is wrong and
how to fix it; the CLI turns any of them into one line on stderr and exit code 2.

A job that stops while running raises a :class:`JobStopped` subclass: a failure we can name
(a lost quorum, diverging training), printed as one line, never a traceback.
"""

from __future__ import annotations


class FLJobError(ValueError):
    """Base class: an input the job cannot use (config, data, partition, model update).

    ``FLJobError(what, fix)`` reads ``<what> - <fix>``; a single argument is the whole line.
    """

    def __init__(self, what: str, fix: str | None = None) -> None:
        super().__init__(f"{what} - {fix}" if fix else what)
        self.what = what
        self.fix = fix


class JobConfigError(FLJobError):
    """A job configuration (YAML file or CLI option) that does not validate."""


class DataError(FLJobError):
    """Missing or malformed data files, or data that does not fit the requested job."""


class PartitionError(FLJobError):
    """A partition spec that cannot be parsed or cannot give every silo a sample."""


class SiloDataError(FLJobError):
    """A silo data folder that is missing, incomplete or inconsistent."""


class ModelUpdateError(FLJobError):
    """A model update that does not match the global model (keys, shapes, dtypes, values)."""


class RunFolderError(FLJobError):
    """An output folder, summary path or run to resume that the job cannot use."""


class SecureAggregationError(FLJobError):
    """A secure-aggregation message or setting that breaks the protocol (wrong session,
    missing peer, overflow risk, too few silos left to unmask)."""


class TrainingDivergedError(FloatingPointError):
    """Local training produced a non-finite loss (raised inside a silo, one batch in)."""

    def __init__(self, loss: float, step: int) -> None:
        super().__init__(f"training loss became {loss} at step {step}")
        self.loss = loss
        self.step = step


class JobStopped(RuntimeError):
    """A running job stopped for a reason we can name; the finished rounds are kept."""

    exit_code = 1

    def __init__(self, what: str, fix: str | None = None, *, resumable: bool = True) -> None:
        super().__init__(f"{what} - {fix}" if fix else what)
        self.what = what
        self.fix = fix
        #: Whether ``--resume`` can get past it (not when the run's own settings cause it).
        self.resumable = resumable


class QuorumLostError(JobStopped):
    """Fewer silos than ``min_silos`` answered in a round."""

    exit_code = 3


class DivergenceError(JobStopped):
    """Training diverged (non-finite or exploding loss); the message names round and silo."""


class CollapseError(JobStopped):
    """The global model stayed no better than the untrained one for several rounds (see
    fl_jobs.core.collapse); the rounds are kept, but resuming with the same settings would not
    help."""

    exit_code = 4
