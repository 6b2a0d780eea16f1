"""The one entry every Azure ML step script goes through; a step module holds only its body.

``@step(description, arguments)`` turns ``body(args)`` into the module's ``main(argv) -> int``,
which owns what every step shares:

- its argument parser: ``--config`` plus the step's own options, and a bad argument as one
  ``error: <what> - see ... --help`` line (exit 2) instead of argparse's usage block;
- logging: warnings and errors on stderr (the step's log in Azure ML), one line each;
- the failures we can name, each as one ``error:`` line on stderr and its exit code: bad input
  (:class:`~fl_jobs.errors.FLJobError`: a config, a manifest, a model update, a bad argument
  found while running) exits 2; a job stopped for a named reason
  (:class:`~fl_jobs.errors.JobStopped`: a lost quorum) exits with its own code (3 for a lost
  quorum); training that diverged exits 1. Anything else keeps its traceback for the log.

The command lines are those of the components in ``fl_jobs/aml/components/``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from fl_jobs.errors import FLJobError, JobStopped, TrainingDivergedError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

Body = Callable[[argparse.Namespace], None]
Arguments = Callable[[argparse.ArgumentParser], None]


class StepArgumentError(FLJobError):
    """A command-line argument the step cannot use (exit 2), found by the parser or the body."""


class _StepParser(argparse.ArgumentParser):
    """argparse whose errors are raised (and printed by the entry as one line), not printed
    as a usage block: the entry decides the output and the exit code."""

    def error(self, message: str) -> NoReturn:
        raise StepArgumentError(message, f"see `{self.prog} --help`")


def configure_logging() -> None:
    """Warnings and errors on stderr, one line each; a handler already there (a test's, a
    host's) is kept."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _error(exc: BaseException) -> None:
    """``error: <message>`` as one line on stderr."""
    print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)


@dataclass(frozen=True)
class StepEntry:
    """A step script's ``main``: parse, run the body, map named failures to exit codes."""

    module: str
    description: str
    arguments: Arguments
    body: Body

    def parser(self) -> argparse.ArgumentParser:
        parser = _StepParser(prog=f"python -m {self.module}", description=self.description)
        parser.add_argument(
            "--config", type=Path, required=True, help="job YAML staged with the code (job.yaml)"
        )
        self.arguments(parser)
        return parser

    def __call__(self, argv: list[str] | None = None) -> int:
        configure_logging()
        try:
            self.body(self.parser().parse_args(argv))
        except JobStopped as exc:  # a lost quorum: 3
            _error(exc)
            return exc.exit_code
        except FLJobError as exc:
            _error(exc)
            return EXIT_BAD_INPUT
        except TrainingDivergedError as exc:
            _error(exc)
            return EXIT_FAILED
        return EXIT_OK


def step(description: str, arguments: Arguments) -> Callable[[Body], StepEntry]:
    """Decorate a step's body (which receives the parsed arguments) into its ``main``."""

    def wrap(body: Body) -> StepEntry:
        # Run as ``python -m fl_jobs.aml.steps.<name>``, the module is ``__main__``; its spec
        # keeps the name the command line used.
        spec = getattr(sys.modules.get(body.__module__), "__spec__", None)
        return StepEntry(spec.name if spec else body.__module__, description, arguments, body)

    return wrap
