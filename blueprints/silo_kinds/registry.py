"""The silo kinds, one line each; the discriminated union of their spec models, the model and
component look-ups, and the ``kind`` error's list are all generated from ``SILO_KINDS``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from blueprints.silo_kinds import aks, aml, arc
from blueprints.silo_kinds.base import SiloKind, SiloSpecBase

M = TypeVar("M", bound=BaseModel)

DEFAULT_KIND = "aml"
"""The kind of a silo whose settings name none."""

SILO_KINDS: dict[str, SiloKind] = {
    aml.KIND.name: aml.KIND,
    arc.KIND.name: arc.KIND,
    aks.KIND.name: aks.KIND,
}
"""Every silo kind by the ``kind`` value a stack file gives: add a kind here."""

SILO_MODELS: dict[str, type[SiloSpecBase]] = {}
"""Kind -> its spec model (kept in step with ``SILO_KINDS``)."""


def _sync_models() -> None:
    SILO_MODELS.clear()
    SILO_MODELS.update({name: kind.spec for name, kind in SILO_KINDS.items()})


_sync_models()


def kind_names() -> str:
    """The kinds a stack file may give, for error messages."""
    return f"{', '.join(SILO_KINDS)} ({DEFAULT_KIND} when unset)"


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", DEFAULT_KIND))
    return str(getattr(value, "kind", DEFAULT_KIND))


class _AnyKind:
    """pydantic's schema of one silo: a union of the registered kinds' models tagged by
    ``kind``, built from ``SILO_KINDS`` whenever a model holding silos is (re)built."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.tagged_union_schema(
            {name: handler.generate_schema(kind.spec) for name, kind in SILO_KINDS.items()},
            discriminator=_kind_of,
        )


SiloSpec = Annotated[SiloSpecBase, _AnyKind()]
"""One silo, of any registered kind (``kind`` picks the model; ``aml`` when unset)."""


_HOLDERS: list[type[BaseModel]] = []


def holds_silos(model: type[M]) -> type[M]:
    """Class decorator for a model with :data:`SiloSpec` fields (the stack's spec): it is
    rebuilt when a kind is registered, so that its union has exactly the registered kinds."""
    _HOLDERS.append(model)
    return model


def _rebuild_models() -> None:
    _sync_models()
    for model in _HOLDERS:
        model.model_rebuild(force=True)


@contextmanager
def registered(kind: SiloKind) -> Iterator[SiloKind]:
    """``kind`` registered while the block runs (a kind outside this package, a test's),
    removed afterwards."""
    if kind.name in SILO_KINDS:
        raise ValueError(f"silo kind {kind.name!r} is already registered")
    SILO_KINDS[kind.name] = kind
    _rebuild_models()
    try:
        yield kind
    finally:
        del SILO_KINDS[kind.name]
        _rebuild_models()
