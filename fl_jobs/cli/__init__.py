"""The command line: the ``fl-sandbox`` typer app (``app``; ``python -m fl_jobs`` runs it),
the options generated from the job config, the cache and privacy commands, the version, and
the one error format and plural wording that every command line of the project shares
(``cli_errors``, ``plurals``: the only part of it other layers import). The commands may
import any layer; ``fl_jobs.__main__`` and the ``fl-sandbox`` entry point run ``app``.
"""
