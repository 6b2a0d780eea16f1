"""Reading a stack file strictly: a key written twice is an error, not a silent override.

YAML itself keeps the last of two equal keys, so a stack file that sets ``fl-sandbox:silos``
twice would deploy whichever came second without a word. This loader refuses it and names
both lines.
"""

from __future__ import annotations

from typing import Any

import yaml


class StackFileError(ValueError):
    """A stack file YAML cannot be trusted to mean one thing (a repeated key)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let the normal constructor report it
            continue
        if first is not None:
            raise StackFileError(
                f"key {key!r} appears twice (lines {first} and {line}); YAML would silently keep "
                "the second"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def load_unique_yaml(text: str) -> Any:
    """Parse ``text``; raise StackFileError on a repeated key, yaml.YAMLError on bad YAML."""
    return yaml.load(text, Loader=_UniqueKeyLoader)
