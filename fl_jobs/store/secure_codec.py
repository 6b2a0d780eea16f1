"""The secure-aggregation messages (:mod:`fl_jobs.local.secure_messages`) as JSON documents
for the model store, read back safely from an untrusted writer.

Decoding is driven by each message class's own type hints, never by type names in the
document: a reader states the classes it expects, and every field must be present, of its
declared type (``bytes`` as base64, the masked vector as base64 little-endian uint64), with no
field the class does not have. Sessions are rebuilt through their constructor, which checks
them again. Anything else is :class:`~fl_jobs.store.messages.MessageRejected` with the reason.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

from fl_jobs.errors import FLJobError
from fl_jobs.local.secure_messages import SECURE_REPLIES, SECURE_REQUESTS
from fl_jobs.secure_aggregation import FixedPointCodec, SecureAggregationSession
from fl_jobs.store import messages as msg

#: Every class that may travel, by the name its document's ``kind`` carries.
KINDS: dict[str, type] = {
    f"secagg-{cls.__name__}": cls for cls in (*SECURE_REQUESTS, *SECURE_REPLIES)
}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def encode(message: object) -> dict[str, Any]:
    """``message`` (a secure request or reply) as a JSON-ready body."""
    return _plain(message)


def decode(kind: object, body: object, expected: tuple[type, ...]) -> object:
    """The message of ``kind`` built from ``body``; MessageRejected unless ``kind`` names one
    of the ``expected`` classes and ``body`` is exactly such a message."""
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None or cls not in expected:
        names = ", ".join(KIND_OF[c] for c in expected)
        raise msg.MessageRejected(f"kind {kind!r}, expected one of {names}")
    try:
        return _build(body, cls, "message")
    except (FLJobError, ValueError, TypeError) as exc:
        raise msg.MessageRejected(f"{KIND_OF[cls]}: {exc}") from None


def _plain(value: object) -> Any:
    if isinstance(value, SecureAggregationSession):
        return {
            "run_id": value.run_id,
            "round": value.round,
            "silos": list(value.silos),
            "max_samples": value.max_samples,
            "threshold": value.threshold,
            "attempt": value.attempt,
            "codec": _plain(value.codec),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, np.ndarray):
        return base64.b64encode(value.astype("<u8", copy=False).tobytes()).decode()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _build(data: object, hint: Any, where: str) -> Any:
    """``data`` as a value of type ``hint``; TypeError/ValueError naming ``where``."""
    if hint is SecureAggregationSession:
        fields = _fields(data, where, SESSION_FIELDS)
        return SecureAggregationSession(
            _build(fields["run_id"], str, f"{where}.run_id"),
            _build(fields["round"], int, f"{where}.round"),
            _build(fields["silos"], tuple[str, ...], f"{where}.silos"),
            max_samples=_build(fields["max_samples"], int, f"{where}.max_samples"),
            threshold=_build(fields["threshold"], int, f"{where}.threshold"),
            attempt=_build(fields["attempt"], int, f"{where}.attempt"),
            codec=_build(fields["codec"], FixedPointCodec, f"{where}.codec"),
        )
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        names = [f.name for f in dataclasses.fields(hint)]
        fields = _fields(data, where, names)
        return hint(**{n: _build(fields[n], hints[n], f"{where}.{n}") for n in names})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(data, list):
            raise TypeError(f"{where} must be a list")
        return tuple(_build(v, args[0], f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise TypeError(f"{where} must be an object")
        return {k: _build(v, args[1], f"{where}.{k}") for k, v in data.items()}
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{where}: unions do not travel")
    return _scalar(data, hint, where)


SESSION_FIELDS = ["run_id", "round", "silos", "max_samples", "threshold", "attempt", "codec"]


def _fields(data: object, where: str, names: list[str]) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be an object")
    missing = [n for n in names if n not in data]
    extra = sorted(set(data) - set(names))
    if missing or extra:
        raise ValueError(f"{where}: missing {missing}, unknown {extra}")
    return data


def _scalar(data: object, hint: Any, where: str) -> Any:
    if hint is str:
        if not isinstance(data, str):
            raise TypeError(f"{where} must be a string")
        return data
    if hint is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise TypeError(f"{where} must be an integer")
        return data
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            raise TypeError(f"{where} must be a finite number")
        return float(data)
    if hint is bytes or hint is np.ndarray:
        if not isinstance(data, str):
            raise TypeError(f"{where} must be a base64 string")
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error:
            raise ValueError(f"{where} is not base64") from None
        if hint is bytes:
            return raw
        if len(raw) % 8:
            raise ValueError(f"{where} is not a whole number of uint64 elements")
        return np.frombuffer(raw, dtype="<u8").astype(np.uint64)
    raise TypeError(f"{where}: {hint!r} does not travel")
