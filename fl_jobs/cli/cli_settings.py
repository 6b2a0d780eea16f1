"""The ``run`` command's options, generated from the job config's settings
(fl_jobs.config.flat_keys): each setting's flag, type, help, default and help panel come from
its one declaration, so a new setting is written once. Options the config does not hold
(``--config``, ``--resume``, ``--strategy``, ``--strategy-option``) are declared by the
command itself and placed in a panel here."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import typer

from fl_jobs.config.flat_keys import EXAMPLE, SECTIONS, SETTINGS, Setting
from fl_jobs.examples.registry import EXAMPLES

#: The help panel of each section's options.
EXAMPLE_PANEL = "Example and data"
PANELS: dict[str, str] = {
    EXAMPLE: EXAMPLE_PANEL,
    **{name: str(getattr(model, "title", name)) for name, model in SECTIONS.items()},
}


def _cli_type(annotation: Any) -> type:
    """The command line's type of a setting: its own for numbers, flags and paths, text for
    choices (the config checks those, with its own messages)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is Literal:
        return str
    if annotation in (bool, int, float, Path, str):
        return annotation
    return str


def _help(setting: Setting) -> str:
    extra = setting.extra
    text = str(extra["help"])
    if setting.key == "example":
        text += ": " + " | ".join(EXAMPLES)
    default = extra.get("default_text") or f"(default: {setting.info.default})"
    return f"{text} {default}"


def _option(setting: Setting) -> inspect.Parameter:
    extra = setting.extra
    kind = _cli_type(setting.info.annotation)
    flag = setting.flag
    if kind is bool and extra.get("negatable", True):
        flag = f"{flag}/--no-{setting.key.replace('_', '-')}"
    decls = [flag, *([str(extra["short"])] if "short" in extra else [])]
    option = typer.Option(
        None,
        *decls,
        help=_help(setting),
        metavar=extra.get("metavar"),
        rich_help_panel=PANELS[setting.section],
    )
    return inspect.Parameter(
        setting.key, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind
    )


def _panel(parameter: inspect.Parameter) -> str | None:
    return getattr(parameter.default, "rich_help_panel", None)


def setting_options() -> list[inspect.Parameter]:
    """One option per setting the command line may give (not mappings such as approval)."""
    return [_option(s) for s in SETTINGS.values() if s.extra.get("cli", True)]


def with_setting_options(command: Callable[..., Any], panels: dict[str, str]) -> Callable[..., Any]:
    """``command`` with its own parameters (placed in ``panels``, by name) followed by one
    option per setting; it receives the settings as keyword arguments named by their keys."""
    own = list(inspect.signature(command).parameters.values())
    for parameter in own:
        info = parameter.default
        if parameter.name in panels and hasattr(info, "rich_help_panel"):
            info.rich_help_panel = panels[parameter.name]
    own = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
    settings = setting_options()
    params: list[inspect.Parameter] = []
    for panel in PANELS.values():  # each panel: the command's own options, then the settings
        params += [p for p in own if panels.get(p.name) == panel]
        params += [p for p in settings if _panel(p) == panel]
    params += [p for p in own if p.name not in panels]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
