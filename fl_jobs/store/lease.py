"""One orchestrator per job: a renewed blob lease on ``global/<job>/lease``.

Azure grants a blob lease to one holder at a time, for 15-60 s or for ever
(https://learn.microsoft.com/rest/api/storageservices/lease-blob). A finite lease renewed
while the orchestrator lives means a killed orchestrator frees the job within
``LEASE_SECONDS`` by itself; its lease id is kept in its own run folder, so the same
orchestrator restarted at once renews the lease instead of waiting for it to expire. Any other
orchestrator is refused (:class:`JobLocked`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobLeaseClient

from fl_jobs.errors import FLJobError, JobStopped
from fl_jobs.store import layout
from fl_jobs.store.blobs import Store

log = logging.getLogger("fl_jobs.store")

#: Lease length (Azure allows 15 to 60 s); renewed every third of it.
LEASE_SECONDS = 30


class JobLocked(FLJobError):
    """Another orchestrator holds the job's lease."""


class LeaseLost(JobStopped):
    """The store refused to renew this orchestrator's lease: it must not write on."""


class JobLease:
    """Acquire on enter, renew in the background, release on exit."""

    def __init__(
        self, store: Store, job: str, id_file: Path, *, seconds: int = LEASE_SECONDS
    ) -> None:
        if not 15 <= seconds <= 60:
            raise ValueError(f"a blob lease lasts 15 to 60 s (Azure's range), not {seconds}")
        self.store, self.job, self.id_file = store, job, id_file
        self.seconds = seconds
        self.name = layout.lease_blob(job)
        self.client: BlobLeaseClient | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        blob = self.store.containers[layout.GLOBAL_CONTAINER].get_blob_client(self.name)
        try:
            self.store.create(layout.GLOBAL_CONTAINER, self.name, b"")
        except Exception as exc:  # AlreadyWritten: it exists with content; any lease blob is fine
            log.debug("lease blob: %s", exc)
        known = self.id_file.read_text().strip() if self.id_file.is_file() else None
        if known:
            client = BlobLeaseClient(blob, lease_id=known)
            try:
                self.store._call("lease", lambda: client.renew())
                self.client = client
            except HttpResponseError:
                pass  # expired and taken, or never ours: acquire afresh below
        if self.client is None:
            client = BlobLeaseClient(blob, lease_id=str(uuid.uuid4()))
            try:
                self.store._call("lease", lambda: client.acquire(lease_duration=self.seconds))
            except (ResourceExistsError, HttpResponseError) as exc:
                if getattr(exc, "status_code", None) != 409:
                    raise
                raise JobLocked(
                    f"job {self.job} is already driven by another orchestrator (the lease on "
                    f"global/{self.name} is held)",
                    "stop that orchestrator first; if it died, start again after "
                    f"{self.seconds} s, when its lease has expired",
                ) from None
            self.client = client
        self.id_file.parent.mkdir(parents=True, exist_ok=True)
        self.id_file.write_text(self.client.id + "\n")
        self._thread = threading.Thread(target=self._renew, name="job-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        assert self.client is not None
        while not self._stop.wait(self.seconds / 3):
            try:
                self.store._call("lease", self.client.renew)
            except Exception as exc:
                log.error("lost the lease on job %s: %s", self.job, exc)
                self.lost.set()
                return

    def check(self) -> None:
        """Raise LeaseLost if the lease was lost (the store refused a renewal)."""
        if self.lost.is_set():
            raise LeaseLost(
                f"the lease on job {self.job} was lost",
                "make sure no other orchestrator drives this job, then resume it",
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.client is not None and not self.lost.is_set():
            try:
                self.store._call("lease", self.client.release)
            except Exception as exc:  # best effort: it expires by itself
                log.warning("could not release the lease on job %s: %s", self.job, exc)
        self.id_file.unlink(missing_ok=True)
