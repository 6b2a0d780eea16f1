"""One error format for every command line of the project (typer apps and argparse scripts).

- Bad input: ``error: <what> - <fix>`` on stderr, exit code 2, before anything is written.
- A runtime failure: one line naming the cause and a log file that holds the traceback, exit 1.
- Typer/click's own usage errors (``--silos many``) and argparse's use the same one line
  instead of a rich box or a usage block.

Import-light (no torch, no Azure SDK) so that any CLI can use it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

#: Help sent to a pipe or a log is laid out at least this wide: at the 80 columns rich assumes
#: there, it cut long option names (``--secure-aggregat…``). A terminal keeps its own width, and
#: ``TERMINAL_WIDTH`` decides if set.
MIN_HELP_WIDTH = 120


def _widen_help() -> None:
    import shutil

    from typer import rich_utils

    if os.environ.get("TERMINAL_WIDTH") or sys.stdout.isatty():
        return
    rich_utils.MAX_WIDTH = max(shutil.get_terminal_size((80, 24)).columns, MIN_HELP_WIDTH)


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def error_line(what: str, fix: str | None = None) -> str:
    """``error: <what> - <fix>`` on one line (newlines in ``what`` are folded)."""
    text = " ".join(str(what).split()).rstrip(".")
    return f"error: {text} - {fix}" if fix else f"error: {text}"


def print_error(what: str, fix: str | None = None) -> None:
    sys.stderr.write(error_line(what, fix) + "\n")
    sys.stderr.flush()


def bad_input(what: str, fix: str | None = None) -> NoReturn:
    """Print the bad-input line and exit with code 2."""
    print_error(what, fix)
    raise SystemExit(EXIT_BAD_INPUT)


def write_crash_log(exc: BaseException, folder: Path | None = None) -> Path:
    """Write ``exc``'s traceback to ``folder/logs/error-<time>.log`` (or a temp file when
    ``folder`` is unusable) and return the path, for the one line the user sees."""
    import tempfile

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    text = "".join(traceback.format_exception(exc))
    if folder is not None:
        try:
            logs = Path(folder) / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            path = logs / f"error-{stamp}.log"
            path.write_text(text)
            return path
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix=f"fl-sandbox-error-{stamp}-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(name)


def runtime_failure(
    exc: BaseException, folder: Path | None = None, *, context: str = "", fix: str | None = None
) -> NoReturn:
    """One line with the cause and the log holding the traceback; exit code 1."""
    log = write_crash_log(exc, folder)
    cause = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    where = f"{context}: " if context else ""
    tail = f"traceback in {log}" + (f"; {fix}" if fix else "")
    print_error(f"{where}{cause}", tail)
    raise SystemExit(EXIT_FAILED)


def invoked_as() -> str:
    """How the user started this program, to print commands they can paste back: an
    installed console script by its name, ``python -m <package>`` otherwise."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if argv0.name == "__main__.py":
        return f"python -m {argv0.parent.name}"
    return argv0.name


class OneLineErrorsGroup(TyperGroup):
    """A typer app whose parse errors print ``error: <what> - <fix>`` (exit 2) instead of
    typer's rich error box, in every mode (terminal, pipe, CliRunner)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _widen_help()  # at each call: COLUMNS may differ from the one at import
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _refuse_fractional_whole_numbers(self, list(sys.argv[1:] if args is None else args))
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            sys.stderr.write("aborted\n")
            raise SystemExit(EXIT_FAILED) from None
        except typer.TyperException as exc:  # typer's own parse and usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise SystemExit(EXIT_OK) from None  # the bare command: help is printed
            code = int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
            fix = None
            if code == EXIT_BAD_INPUT:
                ctx = getattr(exc, "ctx", None)
                command = ctx.command_path if ctx is not None else (prog_name or "")
                fix = f"see `{command} --help`"
            print_error(exc.format_message(), fix)
            raise SystemExit(code) from None
        raise SystemExit(result if isinstance(result, int) else EXIT_OK)


def _refuse_fractional_whole_numbers(group: TyperGroup, args: list[str]) -> None:
    """``--rounds 3.0``: typer reads it as 3, the job file refuses ``rounds: 3.0``; the
    command line refuses it too (exit 2), as the docs say."""
    command = group.commands.get(args[0]) if args else None
    if command is None:
        return
    whole = {
        opt: opt
        for param in command.params
        if getattr(getattr(param, "type_descriptor", None), "annotation", None) is int
        for opt in param.opts
    }
    for i, token in enumerate(args):
        name, sep, value = token.partition("=")
        if name not in whole:
            continue
        if not sep:
            value = args[i + 1] if i + 1 < len(args) else ""
        if "." not in value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        fix = f"write {name} {int(number)}" if number.is_integer() else "give a whole number"
        bad_input(f"{name} {value} is not a whole number", fix)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with the project's one-line ``error: <what> - <fix>`` (exit 2) for bad
    arguments, instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        bad_input(message, f"see `{self.prog} --help`")
