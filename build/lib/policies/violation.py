"""A broken check (an invariant, an Azure rule, a job-path step), named precisely enough to
find and fix the resource."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from policies.graph import Node


@dataclass(frozen=True)
class Violation:
    """One resource breaking one check: what is wrong and what to change."""

    check: str
    resource_type: str
    resource_name: str
    arm_name: str
    urn: str | None
    problem: str
    fix: str

    @classmethod
    def at(cls, check: str, node: Node, problem: str, fix: str) -> Violation:
        return cls(check, node.type, node.name, node.arm_name, node.urn, problem, fix)

    def __str__(self) -> str:
        short = self.resource_type.rsplit(":", 1)[-1]
        named = f"{short} '{self.resource_name}'"
        if self.arm_name != self.resource_name:
            named += f" ({self.arm_name})"
        return f"[{self.check}] {named}: {self.problem} Fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": str(self)}
