"""What a role can be granted on: symbolic targets, resolved to Azure scopes by the builder.

Targets are how the permissions table (and users, in ``extraRoleAssignments``) name scopes
before any resource exists. Each target knows which silos' storage it covers, which is what the
isolation checks need: a grant at subscription scope covers every silo's storage account.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from components.vocabulary.conventions import (
    GLOBAL_MODELS_CONTAINER,
    SIGNING_KEYS_CONTAINER,
    WORKSPACE_LOGS_CONTAINER,
)
from components.vocabulary.naming import silo_container

TargetKind = Literal[
    "subscription",
    "orchestrator-resource-group",
    "orchestrator-storage",
    "orchestrator-storage-container",
    "models-storage",
    "models-container",
    "workspace",
    "key-vault",
    "container-registry",
    "app-insights",
    "silo-resource-group",
    "silo-storage",
    "silo-data-container",
    "compute-subnet",
    "kubernetes-cluster",
    "cluster-resource-group",
]

_FIXED: tuple[TargetKind, ...] = (
    "subscription",
    "orchestrator-resource-group",
    "orchestrator-storage",
    "models-storage",
    "workspace",
    "key-vault",
    "container-registry",
    "app-insights",
)

TARGET_FORMS = (
    *_FIXED,
    "models-container:<container> (global, signing-keys or silo-<silo>)",
    f"orchestrator-storage-container:{WORKSPACE_LOGS_CONTAINER}",
    "silo:<silo>-storage",
    "silo:<silo>-resource-group",
)
"""Every accepted spelling, for error messages and docs."""


@dataclass(frozen=True)
class Target:
    """A symbolic scope. ``silo`` is set for silo targets, ``container`` for container ones.

    Frozen and hashable: the builder maps targets (not their spellings) to ARM scopes."""

    kind: TargetKind
    silo: str | None = None
    container: str | None = None

    def __str__(self) -> str:
        if self.kind in ("models-container", "orchestrator-storage-container"):
            return f"{self.kind}:{self.container}"
        if self.kind == "silo-storage":
            return f"silo:{self.silo}-storage"
        if self.kind == "silo-resource-group":
            return f"silo:{self.silo}-resource-group"
        if self.kind == "silo-data-container":
            return f"silo:{self.silo}-data-container"
        if self.kind == "kubernetes-cluster":
            return f"cluster:{self.silo or 'orchestrator'}"
        if self.kind == "cluster-resource-group":
            return f"cluster:{self.silo or 'orchestrator'}-resource-group"
        if self.kind == "compute-subnet":
            return f"compute-subnet:{self.silo or 'hub'}"
        return self.kind

    def silo_storage_covered(self, silos: Collection[str]) -> set[str]:
        """Silos whose data storage account lies within this scope."""
        if self.kind == "subscription":
            return set(silos)
        silo_kinds = ("silo-storage", "silo-data-container", "silo-resource-group")
        if self.kind in silo_kinds and self.silo is not None:
            return {self.silo}
        return set()

    def silo_resources_covered(self, silos: Collection[str]) -> set[str]:
        """Silos any of whose resources (storage, model-store container) lie in this scope."""
        covered = self.silo_storage_covered(silos)
        if self.kind == "models-storage":
            covered |= set(silos)  # every silo's update container
        if self.kind == "models-container":
            covered |= {s for s in silos if self.container == silo_container(s)}
        return covered


def parse_target(text: str, silos: Collection[str]) -> Target:
    """Parse a target as written in the stack file; ValueError says what is accepted."""
    if text in _FIXED:
        return Target(kind=text)
    if text.startswith("models-container:"):
        container = text.removeprefix("models-container:")
        known = [
            GLOBAL_MODELS_CONTAINER,
            SIGNING_KEYS_CONTAINER,
            *(silo_container(s) for s in silos),
        ]
        if container not in known:
            raise ValueError(f"the model store has no container {container!r}; known: {known}")
        return Target(kind="models-container", container=container)
    if text.startswith("orchestrator-storage-container:"):
        container = text.removeprefix("orchestrator-storage-container:")
        if container != WORKSPACE_LOGS_CONTAINER:
            raise ValueError(
                f"the workspace storage has no declared container {container!r}; known: "
                f"{[WORKSPACE_LOGS_CONTAINER]}"
            )
        return Target(kind="orchestrator-storage-container", container=container)
    if text.startswith("silo:"):
        rest = text.removeprefix("silo:")
        for suffix, kind in (
            ("-storage", "silo-storage"),
            ("-resource-group", "silo-resource-group"),
        ):
            if rest.endswith(suffix):
                silo = rest.removesuffix(suffix)
                if silo not in silos:
                    raise ValueError(f"no silo named {silo!r}; known silos: {sorted(silos)}")
                return Target(kind=kind, silo=silo)  # type: ignore[arg-type]
    raise ValueError(f"unknown target; use one of: {', '.join(TARGET_FORMS)}")
