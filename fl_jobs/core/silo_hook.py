"""What a strategy runs at the silo: its per-round settings, terms added to the local
gradient, silo-held state, and tensors that travel with the model both ways.

In the way of Flower's client mods and NVIDIA FLARE's SCAFFOLD workflow, a strategy that
changes how silos train ships a :class:`SiloHook` (``Strategy.silo_hook``) instead of editing
the training core. Every engine's silo side (the local worker, the store's silo agent, the
Azure ML train step) trains through :class:`fl_jobs.silo.silo_round.SiloTrainer` or
:func:`fl_jobs.core.training.train_local`, which ask the hook:

- :meth:`SiloHook.check_settings`: the settings the strategy sends per silo and round
  (``{"proximal_mu": 0.01}``), refused if unknown or not numbers;
- :meth:`SiloHook.terms`: :class:`GradientTerm` s added to each step's gradient, in plain SGD
  and after DP-SGD's clipping and noise (a term must not read the data: it costs no privacy
  there);
- :meth:`SiloHook.reply`: tensors sent back with the update (their keys start with
  :data:`EXTRA`), computed once training is done.

Tensors the strategy sends to the silos (``Strategy.to_silos``) travel inside the global
model's file or blob under :data:`EXTRA` keys, and the silo's reply tensors inside its update:
the transports, the message checks (keys, shapes, finite values) and the model store's
layout stay as they are. State a silo keeps between rounds is written to the silo's own store
(:class:`HookState`), keyed by run and round, so that a round redone after a restart reads
the state the first attempt read.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import torch

#: The key prefix of a strategy's tensors in a model or update message (no module name
#: starts with it, so they never mix with the model's own keys).
EXTRA = "~"


class GradientTerm(Protocol):
    """Added to parameter ``index``'s gradient at every local step: returns the new gradient
    (a new tensor; ``param`` is the parameter's current value)."""

    def __call__(self, index: int, grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor: ...


def apply_terms(
    terms: Sequence[GradientTerm], index: int, grad: torch.Tensor, param: torch.Tensor
) -> torch.Tensor:
    for term in terms:
        grad = term(index, grad, param)
    return grad


def split_extras(
    weights: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the model's own tensors, the strategy's tensors without the prefix)."""
    model = {k: v for k, v in weights.items() if not k.startswith(EXTRA)}
    extras = {k[len(EXTRA) :]: v for k, v in weights.items() if k.startswith(EXTRA)}
    return model, extras


def with_extras(
    weights: Mapping[str, torch.Tensor], extras: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``weights`` plus the strategy's tensors under the prefix."""
    return {**weights, **{EXTRA + k: v for k, v in extras.items()}}


class StateStore(Protocol):
    """The calls :class:`HookState` makes on a silo's store (every
    :class:`fl_jobs.silo.silo_store.SiloStore` has them; the core does not import the silo
    side)."""

    def read(self, name: str) -> bytes | None: ...

    def create(self, name: str, data: bytes) -> bool: ...

    def append(self, name: str, line: bytes) -> None: ...


@dataclass
class HookState:
    """A silo's state for one run, in its own store: tensors saved after each round it
    trained, read back by the next (create-only: a redone round keeps the first bytes)."""

    store: StateStore
    run: str
    name: str

    def _prefix(self) -> str:
        digest = hashlib.sha256(self.run.encode()).hexdigest()[:16]
        return f"hook-{self.name}-{digest}"

    def latest_before(self, round: int) -> dict[str, torch.Tensor] | None:
        """The state saved by the last round before ``round`` this silo trained, if any."""
        from safetensors.torch import load

        index = self.store.read(f"{self._prefix()}-rounds") or b""
        rounds = [int(line) for line in index.split() if line.strip()]
        earlier = [r for r in rounds if r < round]
        if not earlier:
            return None
        data = self.store.read(f"{self._prefix()}-r{max(earlier):06d}.safetensors")
        if data is None:
            raise RuntimeError(f"{self.name} state of round {max(earlier)} is missing")
        return load(data)

    def save(self, round: int, tensors: Mapping[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        name = f"{self._prefix()}-r{round:06d}.safetensors"
        data = save({k: v.contiguous() for k, v in tensors.items()})
        if self.store.create(name, data):
            self.store.append(f"{self._prefix()}-rounds", str(round).encode())


@dataclass
class SiloRoundInputs:
    """What a hook sees of a round: the global model's trainable parameters (in
    ``model.parameters()`` order, with their state-dict names; ``start`` only for a hook that
    ``keeps_start``), what the strategy sent, the round's settings, and the silo's state."""

    round: int
    names: list[str]
    start: list[torch.Tensor]
    received: dict[str, torch.Tensor]
    settings: dict[str, float]
    state: HookState | None = None
    #: Local steps taken, counted by :class:`StepCounter` when the hook asks for one.
    steps: int = 0
    notes: dict[str, object] = field(default_factory=dict)


class StepCounter:
    """A term that changes nothing and counts the local steps (parameter 0's updates)."""

    def __init__(self, inputs: SiloRoundInputs) -> None:
        self.inputs = inputs

    def __call__(self, index: int, grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        if index == 0:
            self.inputs.steps += 1
        return grad


class SiloHook:
    """The silo side of a strategy that needs none: no settings, terms, state or tensors."""

    #: The per-round settings the strategy may send (``Strategy.silo_config``).
    settings_keys: ClassVar[frozenset[str]] = frozenset()
    #: The name of its state in the silo's store (None: the hook keeps none).
    state_name: ClassVar[str | None] = None
    #: Whether it needs the round's starting parameters (``SiloRoundInputs.start``): a copy
    #: of the model each round, made only for hooks that read it.
    keeps_start: ClassVar[bool] = False

    def check_settings(self, settings: Mapping[str, object]) -> dict[str, float]:
        """The round's settings as numbers; ValueError for an unknown key or a value that is
        not a finite number."""
        unknown = sorted(set(settings) - self.settings_keys)
        if unknown:
            known = ", ".join(sorted(self.settings_keys)) or "none"
            raise ValueError(f"unknown per-round silo setting {unknown[0]!r} (known: {known})")
        values: dict[str, float] = {}
        for key, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"per-round silo setting {key!r} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"per-round silo setting {key!r} must be finite, got {value!r}")
            values[key] = float(value)
        return values

    def check_received(
        self,
        received: Mapping[str, torch.Tensor],
        names: Sequence[str],
        start: Sequence[torch.Tensor],
    ) -> None:
        """Refuse tensors the strategy does not send (a model message with stray keys)."""
        if received:
            raise ValueError(f"unexpected strategy tensors {sorted(received)[:3]} in the model")

    def terms(self, inputs: SiloRoundInputs) -> list[GradientTerm]:
        return []

    def reply(
        self, inputs: SiloRoundInputs, trained: Sequence[torch.Tensor], lr: float
    ) -> dict[str, torch.Tensor]:
        """Tensors sent back with the update (without the prefix); ``trained`` are the
        trainable parameters after training, in ``inputs.names`` order."""
        return {}


def round_inputs(
    model: torch.nn.Module,
    received: dict[str, torch.Tensor],
    settings: dict[str, float],
    *,
    round: int,
    state: HookState | None,
    keep_start: bool = True,
) -> SiloRoundInputs:
    """The hook's view of a round, from the model loaded with the global weights (the
    starting parameters copied if ``keep_start``, else left empty)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return SiloRoundInputs(
        round=round,
        names=[n for n, _ in named],
        start=[p.detach().clone() for _, p in named] if keep_start else [],
        received=received,
        settings=settings,
        state=state,
    )
