"""YAML where a key written twice is an error, not a silent override.

Plain YAML loaders keep the last of two equal keys, so a job file or a stack file that sets a
value twice would run with whichever came second without a word. Shared by the job config and
the stack files.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping that names the same key twice (``problem`` names the key and both lines)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a repeated key in any mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        # Merge keys (``<<: *defaults``, YAML 1.1) bring in values that the mapping's own keys
        # may override: only the keys written in the mapping itself must be unique.
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        if len(own) != len(node.value):
            self.flatten_mapping(node)
        for key_node, _ in own:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first_line
            except TypeError:  # an unhashable key: the base loader reports it
                break
            if seen:
                raise DuplicateKeyError(
                    problem=f"{key!r} is given twice (lines {first_line[key]} and "
                    f"{key_node.start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_unique_keys(text: str) -> Any:
    """Parse ``text``; DuplicateKeyError on a repeated key, yaml.YAMLError on bad YAML."""
    return yaml.load(text, Loader=UniqueKeyLoader)
