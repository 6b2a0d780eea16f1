"""The fl-sandbox Pulumi program: stack config -> validated spec -> blueprint -> exports.

The whole ``fl-sandbox:`` namespace of the stack file is read once and validated before a
single resource is declared, so a bad setting stops ``pulumi preview``/``up`` with one clear
message and nothing half-created.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from blueprints.builder import build_sandbox
from blueprints.spec import NAMESPACE, parse_spec


def stack_settings() -> dict[str, Any]:
    """Every ``fl-sandbox:`` setting of the running stack, keys without the prefix.

    Pulumi hands structured values (lists, maps) to the program as JSON text; scalars stay
    text and pydantic converts them where a number is expected.
    """
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    settings: dict[str, Any] = {}
    for key, value in merged.items():
        if not key.startswith(f"{NAMESPACE}:"):
            continue
        if isinstance(value, str) and value[:1] in "[{":
            # Unparsable text is left as is; validation will say what is wrong with it.
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        settings[key.removeprefix(f"{NAMESPACE}:")] = value
    return settings


def program() -> dict[str, Any]:
    """Parse first (raises ConfigError before any resource exists), then build."""
    spec = parse_spec(stack_settings(), source=f"stacks/Pulumi.{pulumi.get_stack()}.yaml")
    return build_sandbox(spec)


if __name__ == "__main__":
    for _name, _value in program().items():
        pulumi.export(_name, _value)
