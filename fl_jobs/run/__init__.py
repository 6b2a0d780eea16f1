"""A run's lifecycle on the user's machine: the whole local job (``job``), its run folder and
output, stopping on signals and on a failing disk, the progress shown, the report and result
curves at the end, which setting to blame for a wrecked run, the maintenance outcome of the
turbofan example, and the federation manifest that ties a job to provisioned infrastructure.
It may import every layer below it (core, config, silo, rounds, tracking, the transports);
from the command line only the message helpers (``plurals``, ``cli_errors``).
"""
