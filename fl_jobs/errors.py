"""Error types of the FL jobs.

Every bad input raises a subclass of :class:`FLJobError` with a message naming what is wrong and
how to fix it; the CLI turns any of them into one line on stderr and exit code 2.
"""

from __future__ import annotations


class FLJobError(ValueError):
    """Base class: an input the job cannot use (config, data, partition, model update)."""


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
