"""Try each expected storage movement with the actor's own credential and compare.

A read lists the container (what a data role's read allows, and what a job's input mount
does first); a write uploads a small probe blob under ``_fl-sandbox-doctor/`` and then deletes
it (best effort; a probe left behind is reported). Storage answering 403 is *denied*; no route
at all (network rules, no private endpoint, DNS) is *denied* too, with the reason, since for an
isolation negative either way holds; anything else is an *error* and always a difference.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fl_jobs.doctor.expectations import Expectation
from fl_jobs.silo.data_upload import Destination

Observed = Literal["allowed", "denied", "error"]
PROBE_FOLDER = "_fl-sandbox-doctor"


@dataclass(frozen=True)
class Result:
    """An expectation and what storage did."""

    expectation: Expectation
    target: str
    observed: Observed
    detail: str

    @property
    def ok(self) -> bool:
        if self.observed == "error":
            return False
        return (self.observed == "allowed") == self.expectation.allowed

    def line(self) -> str:
        e = self.expectation
        want = "allowed" if e.allowed else "denied"
        return (
            f"{e.actor}: {e.movement} ({e.operation} {self.target}): expected {want}, "
            f"observed {self.observed} ({self.detail})"
        )


def _error_code(exc: Exception) -> str | None:
    """The storage error code (``AuthorizationFailure``...): azure-storage sets it at run time."""
    return getattr(exc, "error_code", None)


def _attempt(client: Any, operation: str, actor: str) -> tuple[Observed, str]:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    try:
        if operation == "read":
            pages = client.list_blobs(results_per_page=1).by_page()
            next(iter(pages), None)
            return "allowed", "listed"
        name = f"{PROBE_FOLDER}/{actor.replace(':', '-')}-{uuid.uuid4().hex[:8]}.txt"
        client.upload_blob(name, b"fl-sandbox doctor probe", overwrite=True)
        try:
            client.delete_blob(name)
            return "allowed", "wrote and removed a probe blob"
        except HttpResponseError:
            return "allowed", f"wrote {name} (could not remove it)"
    except ClientAuthenticationError as exc:
        return "denied", f"{exc.status_code or 401}: {exc.reason or 'authentication refused'}"
    except HttpResponseError as exc:
        if exc.status_code == 403:
            return "denied", f"403: {_error_code(exc) or exc.reason}"
        return "error", f"{exc.status_code}: {_error_code(exc) or exc.reason}"
    except ServiceRequestError as exc:
        return "denied", f"no route: {type(exc).__name__}"


def probe(
    wanted: Iterable[Expectation],
    destinations: dict[str, Destination],
    container_client: Callable[[Destination], Any],
) -> list[Result]:
    """Try every expectation; a datastore missing from ``destinations`` is an error."""
    results: list[Result] = []
    for e in wanted:
        where = destinations.get(e.datastore)
        if where is None:
            results.append(Result(e, e.datastore, "error", "datastore not in the stack outputs"))
            continue
        target = f"datastore '{e.datastore}' (container '{where.container}')"
        observed, detail = _attempt(container_client(where), e.operation, e.actor)
        results.append(Result(e, target, observed, detail))
    return results


def differences(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if not r.ok]
