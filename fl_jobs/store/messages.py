"""The messages agents exchange through the store, and the checks every one of them passes.

Two formats, both safe to read from an untrusted writer (no pickle anywhere):

* JSON documents (head, task, heartbeat): UTF-8 JSON objects;
* tensors (global models, updates): safetensors, whose ``__metadata__`` holds the same JSON
  header under the key ``fl-sandbox``.

Every message carries ``schema``, ``kind``, ``job``, ``round``, ``attempt`` and ``writer``; a
reader states what it expects and :func:`check_header` refuses anything else with the reason
(:class:`MessageRejected`), which the orchestrator logs before going on without that message.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from fl_jobs.core.model_io import validate_update
from fl_jobs.errors import ModelUpdateError

SCHEMA = "fl-sandbox/store/1"
#: The safetensors metadata key holding a tensor message's JSON header.
META_KEY = "fl-sandbox"
#: Largest JSON document read (a task for thousands of silos stays far below).
MAX_JSON_BYTES = 4 * 1024 * 1024
#: A tensor message may exceed the global model's raw size by this much (header, alignment).
TENSOR_OVERHEAD_BYTES = 64 * 1024


class MessageRejected(ValueError):
    """A message the reader refuses; ``str()`` is the reason, for the log."""


@dataclass(frozen=True)
class Expect:
    """What a reader expects of a message: anything else is rejected."""

    kind: str
    job: str
    round: int
    attempt: int
    writer: str


def header(kind: str, job: str, round: int, attempt: int, writer: str, **body: Any) -> dict:
    """A message header: the envelope fields, then ``body``."""
    return {
        "schema": SCHEMA,
        "kind": kind,
        "job": job,
        "round": round,
        "attempt": attempt,
        "writer": writer,
        **body,
    }


def check_header(data: Mapping[str, Any], expect: Expect) -> None:
    """Raise MessageRejected naming the first envelope field that is not what was expected."""
    if data.get("schema") != SCHEMA:
        raise MessageRejected(f"schema {data.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("kind", "job", "writer"):
        if data.get(key) != getattr(expect, key):
            raise MessageRejected(
                f"{key} {data.get(key)!r}, expected {getattr(expect, key)!r}"
                + (" (written for another silo)" if key == "writer" else "")
            )
    for key in ("round", "attempt"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MessageRejected(f"{key} {value!r} is not an integer")
        if value != getattr(expect, key):
            stale = " (stale)" if value < getattr(expect, key) else ""
            raise MessageRejected(f"{key} {value}{stale}, expected {getattr(expect, key)}")


# -- JSON documents ---------------------------------------------------------------------------


def encode_json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, allow_nan=False).encode()


def decode_json(raw: bytes, *, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A JSON object from ``raw``; MessageRejected if too large, undecodable or not an object."""
    if len(raw) > limit:
        raise MessageRejected(f"{len(raw)} bytes, more than the {limit} allowed")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise MessageRejected(f"not a JSON document ({exc})") from None
    if not isinstance(data, dict):
        raise MessageRejected(f"a JSON {type(data).__name__}, expected an object")
    return data


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


# -- tensor messages --------------------------------------------------------------------------


def encode_tensors(weights: Mapping[str, torch.Tensor], head: Mapping[str, Any]) -> bytes:
    """``weights`` as safetensors bytes with ``head`` as its JSON header."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().clone() for k, v in weights.items()}
    return save(tensors, metadata={META_KEY: json.dumps(head, sort_keys=True, allow_nan=False)})


def tensor_limit(template: Mapping[str, torch.Tensor]) -> int:
    """The largest tensor message that can hold weights shaped like ``template``."""
    raw = sum(t.numel() * t.element_size() for t in template.values())
    return raw + TENSOR_OVERHEAD_BYTES + 256 * len(template)


def decode_tensors(raw: bytes, *, limit: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON header of a tensor message; MessageRejected if too large or broken."""
    if len(raw) > limit:
        raise MessageRejected(
            f"{len(raw)} bytes, more than the {limit} a model of this shape needs"
        )
    if len(raw) < 8:
        raise MessageRejected(f"{len(raw)} bytes, not a safetensors message")
    (size,) = struct.unpack("<Q", raw[:8])
    if size > len(raw) - 8:
        raise MessageRejected("not a safetensors message (its header runs past the end)")
    try:
        meta = json.loads(raw[8 : 8 + size].decode("utf-8")).get("__metadata__") or {}
        head = json.loads(meta[META_KEY], parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MessageRejected(
            f"not a safetensors message with a {META_KEY} header ({exc})"
        ) from None
    if not isinstance(head, dict):
        raise MessageRejected(f"its {META_KEY} header is not a JSON object")
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        weights = load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise MessageRejected(f"undecodable tensors ({exc})") from None
    return weights, head


@dataclass(frozen=True)
class Update:
    """A silo's validated update: what the strategy aggregates."""

    weights: dict[str, torch.Tensor]
    n_samples: int
    metrics: dict[str, float]


def read_update(raw: bytes, expect: Expect, template: Mapping[str, torch.Tensor]) -> Update:
    """A silo's update message, checked end to end: size, format, envelope, sample count,
    metrics, and the tensors against the global model (keys, shapes, dtypes, finite)."""
    weights, head = decode_tensors(raw, limit=tensor_limit(template))
    check_header(head, expect)
    n = head.get("n_samples")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise MessageRejected(f"n_samples must be a positive integer, got {n!r}")
    metrics = read_metrics(head)
    try:
        validate_update(weights, template, source="update")
    except ModelUpdateError as exc:
        raise MessageRejected(str(exc).removeprefix("update: ")) from None
    return Update(weights, n, metrics)


def read_metrics(head: Mapping[str, Any]) -> dict[str, float]:
    """A reply's ``metrics``: names to finite numbers, or MessageRejected."""
    metrics = head.get("metrics")
    if not isinstance(metrics, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in metrics.items()
    ):
        raise MessageRejected("metrics must map names to numbers")
    if not all(math.isfinite(float(v)) for v in metrics.values()):
        raise MessageRejected("metrics hold a non-finite value")
    return {k: float(v) for k, v in metrics.items()}
