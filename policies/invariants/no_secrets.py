"""Invariant 6: no secret appears in the stack outputs.

Stack outputs are readable by anyone who can read the stack (and end up in CI logs), so they
carry names and ids only. Secrets are recognised by key name (keys, passwords, connection
strings, SAS tokens, credentials, kubeconfigs) and by value (connection-string fragments, SAS
signatures, PEM blocks, kubeconfigs, long high-entropy base64 such as storage account keys).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from policies.violation import Violation

if TYPE_CHECKING:
    from policies.graph import ResourceGraph

NUMBER = 6
ID = "no-secret-outputs"
TITLE = "No secret (key, connection string, password, SAS) in stack outputs"

STACK_TYPE = "pulumi:pulumi:Stack"

_SECRET_KEY = re.compile(
    r"(password|passwd|pwd|secret|connection_?string|conn_?str|sas(_?token)?$|sas_?url|"
    r"access_?key|account_?key|primary_?key|secondary_?key|api_?key|private_?key|"
    r"shared_?key|credential|token$|signature|kube_?config)",
    re.IGNORECASE,
)
_SECRET_VALUE = (
    (re.compile(r"AccountKey=", re.IGNORECASE), "an account key (AccountKey=)"),
    (re.compile(r"SharedAccessKey=", re.IGNORECASE), "a shared access key"),
    (re.compile(r"SharedAccessSignature=", re.IGNORECASE), "a SAS connection string"),
    (re.compile(r"[?&]sig=", re.IGNORECASE), "a SAS signature (sig=)"),
    (re.compile(r"(^|;)\s*Password=", re.IGNORECASE), "a password in a connection string"),
    (re.compile(r"-----BEGIN [A-Z ]*-----"), "a PEM block"),
    (re.compile(r"DefaultEndpointsProtocol=", re.IGNORECASE), "a storage connection string"),
    (re.compile(r"(?m)^\s*kind:\s*Config\s*$|\"kind\":\s*\"Config\""), "a kubeconfig"),
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_like_key(text: str) -> bool:
    """A long base64 run with the character mix and entropy of generated key material."""
    for match in _BASE64_RUN.finditer(text):
        run = match.group(0)
        if run.startswith("/") or "//" in run:
            continue
        mixed = (
            any(c.isupper() for c in run)
            and any(c.islower() for c in run)
            and any(c.isdigit() for c in run)
        )
        if mixed and _entropy(run) >= 4.5:
            return True
    return False


def _walk(value: Any, path: str) -> Iterator[tuple[str, str | None, Any]]:
    """Yield (path, last key, leaf value) for every leaf."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}" if path else str(key))
            yield (f"{path}.{key}" if path else str(key)), str(key), _Marker
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")
    else:
        yield path, None, value


class _Marker:
    """Stands for 'a key exists here' while walking, so key names are checked once."""


def secret_key_name(key: str) -> bool:
    """Whether a property or output name says it holds a secret."""
    return bool(_SECRET_KEY.search(_snake(key)))


def secret_problem(key: str | None, value: Any) -> str | None:
    """Why an output leaf looks secret, or None."""
    if value is _Marker:
        if key is not None and _SECRET_KEY.search(_snake(key)):
            return f"its name {key!r} says it holds a secret"
        return None
    if not isinstance(value, str):
        return None
    for pattern, what in _SECRET_VALUE:
        if pattern.search(value):
            return f"its value contains {what}"
    if looks_like_key(value):
        return "its value looks like generated key material (long high-entropy base64)"
    return None


def check_no_secret_outputs(outputs: Mapping[str, Any]) -> list[Violation]:
    """Report every stack output (or nested field) that looks like a secret."""
    found: list[Violation] = []
    for path, key, value in _walk(outputs, ""):
        problem = secret_problem(key, value)
        if problem is None:
            continue
        found.append(
            Violation(
                check=ID,
                resource_type=STACK_TYPE,
                resource_name=f"outputs.{path}",
                arm_name=f"outputs.{path}",
                urn=None,
                problem=f"stack output '{path}' may be a secret: {problem}.",
                fix="Export names and ids only; let jobs get credentials from their identity.",
            )
        )
    return found


def check(graph: ResourceGraph) -> list[Violation]:
    """Invariant 6 over the graph's stack outputs."""
    return check_no_secret_outputs(graph.outputs)
