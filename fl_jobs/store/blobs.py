"""The model store as the agents use it: a few blob operations, each counted, retried through
outages and conditional where a write must never replace a finished result.

* :meth:`Store.create` writes only if the blob does not exist (``If-None-Match: *``); a
  retried create that finds its own bytes already there succeeds, anything else there raises
  :class:`AlreadyWritten` (a restarted agent never overwrites a finished result);
* :meth:`Store.replace` overwrites only the version it read (``If-Match: <etag>``);
* :meth:`Store.read` with the ETag of the last read costs one request and no body when
  nothing changed (``If-None-Match: <etag>``, answered 304);
* connection failures, timeouts and 408/429/5xx answers are retried with backoff for up to
  ``outage_s`` seconds (the endpoint stopped for a while), then raise :class:`StoreUnavailable`;
* :class:`Cost` counts requests and bytes each way, for the per-round cost.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient

log = logging.getLogger("fl_jobs.store")
T = TypeVar("T")

#: Answers worth retrying: timeout, throttling, server errors (Azure Storage's retry guidance,
#: https://learn.microsoft.com/azure/storage/blobs/storage-retry-policy).
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: How long the store may be unreachable before an operation gives up.
DEFAULT_OUTAGE_S = 120.0


class StoreUnavailable(RuntimeError):
    """The store did not answer for longer than the outage budget."""


class AlreadyWritten(RuntimeError):
    """A create-only blob already holds different bytes."""


class Conflict(RuntimeError):
    """A conditional replace lost: someone else changed the blob since it was read."""


NOT_MODIFIED = object()


@dataclass(frozen=True)
class TooLarge:
    """A blob larger than the reader allows (its size, as the store reported it)."""

    size: int


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str


@dataclass
class Cost:
    """Requests and bytes moved; :meth:`since` gives the cost of a stretch (e.g. a round)."""

    requests: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    retries: int = 0
    by_op: Counter[str] = field(default_factory=Counter)

    def copy(self) -> Cost:
        return Cost(
            self.requests, self.bytes_up, self.bytes_down, self.retries, Counter(self.by_op)
        )

    def since(self, start: Cost) -> dict[str, Any]:
        return {
            "requests": self.requests - start.requests,
            "bytes_up": self.bytes_up - start.bytes_up,
            "bytes_down": self.bytes_down - start.bytes_down,
            "retries": self.retries - start.retries,
            "by_op": dict(self.by_op - start.by_op),
        }


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STATUS


class Store:
    """Blob operations on named containers (clients built with the caller's credential)."""

    def __init__(
        self,
        containers: Mapping[str, ContainerClient],
        *,
        outage_s: float = DEFAULT_OUTAGE_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.containers = dict(containers)
        self.outage_s = outage_s
        self.cost = Cost()
        self._sleep = sleep

    @classmethod
    def connect(
        cls,
        account_url: str,
        credential: Any,
        names: list[str],
        *,
        outage_s: float = DEFAULT_OUTAGE_S,
        connection_verify: str | bool = True,
    ) -> Store:
        """Clients for ``names`` on ``account_url``. The SDK's own retries are off:
        this class retries, so that an outage is logged, counted and bounded in one place."""
        clients = {
            name: ContainerClient(
                account_url,
                name,
                credential=credential,
                connection_verify=connection_verify,
                retry_total=0,
                connection_timeout=5,
                read_timeout=60,
            )
            for name in names
        }
        return cls(clients, outage_s=outage_s)

    # -- operations -----------------------------------------------------------------------

    def read(
        self,
        container: str,
        name: str,
        *,
        etag: str | None = None,
        max_bytes: int | None = None,
    ) -> Blob | object | None:
        """The blob, None if it does not exist, NOT_MODIFIED if it still has ``etag``, a
        :class:`TooLarge` if it holds more than ``max_bytes`` (of which at most
        ``max_bytes + 1`` are downloaded: a hostile writer cannot make the reader fetch more)."""
        client = self.containers[container].get_blob_client(name)

        def op() -> Blob | object | None:
            try:
                kwargs: dict[str, Any] = {}
                if etag is not None:
                    from azure.core import MatchConditions

                    kwargs = {"etag": etag, "match_condition": MatchConditions.IfModified}
                try:
                    ranged: dict[str, Any] = (
                        {} if max_bytes is None else {"offset": 0, "length": max_bytes + 1}
                    )
                    downloader = client.download_blob(**kwargs, **ranged)
                except HttpResponseError as exc:
                    if exc.status_code != 416:  # a range on an empty blob: fetch it whole
                        raise
                    downloader = client.download_blob(**kwargs)
                if max_bytes is not None and downloader.size > max_bytes:
                    return TooLarge(downloader.size)
                data = downloader.readall()
            except ResourceNotFoundError:
                return None
            except (ResourceModifiedError, HttpResponseError) as exc:
                if getattr(exc, "status_code", None) == 304:
                    return NOT_MODIFIED
                raise
            self.cost.bytes_down += len(data)
            return Blob(data, downloader.properties.etag)

        return self._call("read", op)

    def create(self, container: str, name: str, data: bytes) -> str:
        """Write ``data`` only if ``name`` does not exist; its ETag. Finding the same bytes
        there (a retry of our own write) is success; other bytes raise AlreadyWritten."""
        client = self.containers[container].get_blob_client(name)

        def op() -> str:
            try:  # overwrite=False sends If-None-Match: *
                result = client.upload_blob(data, overwrite=False)
            except ResourceExistsError:
                return ""
            self.cost.bytes_up += len(data)
            return str(result["etag"])

        etag = self._call("create", op)
        if etag:
            return etag
        existing = self.read(container, name)
        if isinstance(existing, Blob) and existing.data == data:
            return existing.etag
        raise AlreadyWritten(f"{container}/{name} already holds another message")

    def replace(self, container: str, name: str, data: bytes, *, etag: str | None) -> str:
        """Overwrite ``name`` if it still has ``etag`` (None: only if it does not exist)."""
        from azure.core import MatchConditions

        client = self.containers[container].get_blob_client(name)

        def op() -> str:
            try:
                if etag is None:
                    result = client.upload_blob(data, overwrite=False)
                else:
                    result = client.upload_blob(
                        data,
                        overwrite=True,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError) as exc:
                raise Conflict(f"{container}/{name} changed since it was read") from exc
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):
                    raise Conflict(f"{container}/{name} changed since it was read") from exc
                raise
            self.cost.bytes_up += len(data)
            return str(result["etag"])

        return self._call("replace", op)

    def overwrite(self, container: str, name: str, data: bytes) -> None:
        """Unconditional write, for blobs that only say "latest" (heartbeats)."""
        client = self.containers[container].get_blob_client(name)

        def op() -> None:
            client.upload_blob(data, overwrite=True)
            self.cost.bytes_up += len(data)

        self._call("overwrite", op)

    def exists(self, container: str, name: str) -> bool:
        client = self.containers[container].get_blob_client(name)
        return bool(self._call("exists", client.exists))

    def list(self, container: str, prefix: str) -> list[str]:
        client = self.containers[container]
        return self._call(
            "list", lambda: [b.name for b in client.list_blobs(name_starts_with=prefix)]
        )

    def container_exists(self, container: str) -> bool:
        return bool(self._call("exists", self.containers[container].exists))

    # -- retries --------------------------------------------------------------------------

    def _call(self, kind: str, op: Callable[[], T]) -> T:
        """Run ``op``; retry transient failures with backoff (0.25 s doubling to 4 s) until
        the outage budget is spent."""
        started = time.monotonic()
        delay = 0.25
        while True:
            self.cost.requests += 1
            self.cost.by_op[kind] += 1
            try:
                return op()
            except Exception as exc:
                if not _transient(exc):
                    raise
                waited = time.monotonic() - started
                if waited >= self.outage_s:
                    raise StoreUnavailable(
                        f"the model store did not answer for {waited:.0f} s ({type(exc).__name__})"
                    ) from exc
                self.cost.retries += 1
                log.warning(
                    "store %s failed (%s); retrying in %.2f s", kind, type(exc).__name__, delay
                )
                self._sleep(delay)
                delay = min(delay * 2, 4.0)


class Backoff:
    """Polling intervals: start fast, double while nothing changes, reset on news."""

    def __init__(self, first: float = 0.1, most: float = 2.0) -> None:
        self.first, self.most = first, most
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        current = self.delay
        self.delay = min(self.delay * 2, self.most)
        return current
