"""A silo's side of the model-store transport: it reads ``global`` and writes only its own
container.

It polls ``head.json`` (a conditional GET: one request, no body, while nothing changes) with
backoff; when the head names a round and attempt it has not handled, it reads that attempt's
task, and trains if it is selected and has not already replied (a restarted agent never trains
a round twice nor replaces a reply). The global model is checked against the task's digest
and envelope before it is loaded. A heartbeat thread writes ``heartbeat.json`` every few
seconds with what the agent is doing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping

import torch

from fl_jobs.store import layout
from fl_jobs.store import messages as msg
from fl_jobs.store.blobs import NOT_MODIFIED, AlreadyWritten, Backoff, Blob, Store
from fl_jobs.store.server import ORCHESTRATOR
from fl_jobs.store.transport import TrainTask

log = logging.getLogger("fl_jobs.store")

HEARTBEAT_S = 5.0
#: Largest global model a silo downloads (the orchestrator is trusted, the wire is not).
MAX_MODEL_BYTES = 4 * 1024**3


class StoreSilo:
    """:class:`~fl_jobs.store.transport.SiloTransport` over the model store."""

    def __init__(self, store: Store, job: str, silo: str, *, poll_max_s: float = 2.0) -> None:
        self.store, self.job, self.silo = store, job, silo
        self.container = layout.silo_container(silo)
        self.poll_max_s = poll_max_s
        self.handled: set[tuple[int, int]] = set()
        self.state = "starting"
        self.round = 0
        self._head_etag: str | None = None
        self._head: dict | None = None
        self._tasks: dict[tuple[int, int], dict] = {}
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._write_heartbeat()
        self._beat.start()

    def stop(self) -> None:
        """Stop the heartbeats and say so (best effort: the agent may be stopping because
        the store is unreachable)."""
        self._stop.set()
        self.state = "stopped"
        try:
            self._write_heartbeat()
        except Exception as exc:
            log.warning("%s: last heartbeat not written: %s", self.silo, exc)

    # -- requests -----------------------------------------------------------------------------

    def next_task(self) -> TrainTask | None:
        backoff = Backoff(most=self.poll_max_s)
        self.state = "waiting"
        while True:
            head = self._read_head()
            if head is not None:
                key = _open_task(head, self.silo)
                if head.get("state") != "running":
                    return None
                if key is not None and key not in self.handled:
                    task = self._task_for(*key)
                    self.handled.add(key)
                    if task is not None:
                        return task
                    backoff.reset()
            time.sleep(backoff.next())

    def _read_head(self) -> dict | None:
        blob = self.store.read(
            layout.GLOBAL_CONTAINER,
            layout.head_blob(self.job),
            etag=self._head_etag,
            max_bytes=msg.MAX_JSON_BYTES,
        )
        if blob is NOT_MODIFIED:
            return self._head
        if not isinstance(blob, Blob):
            return None  # the orchestrator has not started yet
        try:
            head = msg.decode_json(blob.data)
            msg.check_header(
                head,
                msg.Expect(
                    "head", self.job, _int(head, "round"), _int(head, "attempt"), ORCHESTRATOR
                ),
            )
        except msg.MessageRejected as exc:
            log.warning("%s: ignored global/%s: %s", self.silo, layout.head_blob(self.job), exc)
            return None
        self._head_etag, self._head = blob.etag, head
        return head

    def _task_for(self, round: int, attempt: int) -> TrainTask | None:
        """This silo's task in that attempt; None if it is not selected or already replied."""
        name = layout.task_blob(self.job, round, attempt)
        blob = self.store.read(layout.GLOBAL_CONTAINER, name, max_bytes=msg.MAX_JSON_BYTES)
        if not isinstance(blob, Blob):
            log.warning("%s: round %d attempt %d has no readable task", self.silo, round, attempt)
            return None
        try:
            doc = msg.decode_json(blob.data)
            msg.check_header(doc, msg.Expect("task", self.job, round, attempt, ORCHESTRATOR))
            mine = doc["tasks"].get(self.silo)
        except (msg.MessageRejected, KeyError, AttributeError, TypeError) as exc:
            log.warning("%s: ignored global/%s: %s", self.silo, name, exc)
            return None
        if mine is None:
            log.info("%s: not selected in round %d", self.silo, round)
            return None
        if self.store.exists(self.container, layout.update_blob(self.job, round, attempt)):
            log.info("%s: round %d attempt %d already answered", self.silo, round, attempt)
            return None
        self._tasks[(round, attempt)] = doc
        self.round = round
        return TrainTask(
            silo=self.silo,
            round=round,
            seed=int(mine["seed"]),
            config={k: float(v) for k, v in mine.get("config", {}).items()},
            attempt=attempt,
        )

    def global_weights(self, task: TrainTask) -> dict[str, torch.Tensor]:
        self.state = f"downloading round {task.round}"
        doc = self._tasks[(task.round, task.attempt)]
        blob = self.store.read(layout.GLOBAL_CONTAINER, doc["model"], max_bytes=MAX_MODEL_BYTES)
        if not isinstance(blob, Blob):
            raise msg.MessageRejected(f"global/{doc['model']} is missing or too large")
        if hashlib.sha256(blob.data).hexdigest() != doc["model_sha256"]:
            raise msg.MessageRejected(f"global/{doc['model']} does not match the task's digest")
        weights, head = msg.decode_tensors(blob.data, limit=MAX_MODEL_BYTES)
        # an asynchronous task names the version it trains from; a round's is the last one
        version = _int(doc, "model_round") if "model_round" in doc else task.round - 1
        msg.check_header(head, msg.Expect("model", self.job, version, 0, ORCHESTRATOR))
        self.state = f"training round {task.round}"
        return weights

    # -- replies --------------------------------------------------------------------------------

    def reply(
        self,
        task: TrainTask,
        weights: Mapping[str, torch.Tensor],
        n_samples: int,
        metrics: Mapping[str, float],
    ) -> None:
        head = msg.header(
            "update",
            self.job,
            task.round,
            task.attempt,
            self.silo,
            n_samples=int(n_samples),
            metrics={k: float(v) for k, v in metrics.items()},
        )
        self._send(task, msg.encode_tensors(weights, head))

    def trained(self, task: TrainTask, metrics: Mapping[str, float]) -> None:
        """Under secure aggregation: say the round is trained; the update stays here."""
        head = msg.header(
            "trained",
            self.job,
            task.round,
            task.attempt,
            self.silo,
            metrics={k: float(v) for k, v in metrics.items()},
        )
        self._send(task, msg.encode_tensors({}, head))

    def refused(self, task: TrainTask, code: str) -> None:
        """Say that this silo will not train ``task`` (a fixed reason code, no detail)."""
        head = msg.header("refused", self.job, task.round, task.attempt, self.silo, reason=code)
        self._send(task, msg.encode_tensors({}, head))

    # -- secure aggregation -------------------------------------------------------------------

    def publish_key(self, public: bytes) -> None:
        """Publish this silo's signing key as its own blob of ``signing-keys`` (which only its
        identity may write)."""
        name = layout.signing_key_blob(self.silo)
        blob = self.store.read(layout.SIGNING_KEYS_CONTAINER, name, max_bytes=64)
        if not (isinstance(blob, Blob) and blob.data == public):
            self.store.overwrite(layout.SIGNING_KEYS_CONTAINER, name, public)

    def peer_key(self, peer: str) -> bytes | None:
        """``peer``'s published signing key (its blob of ``signing-keys``, which only the
        peer writes); None if absent or unreadable (the guard then refuses its signatures)."""
        try:
            blob = self.store.read(
                layout.SIGNING_KEYS_CONTAINER, layout.signing_key_blob(peer), max_bytes=64
            )
        except Exception as exc:  # no read access, no container: unauthenticated
            log.warning("%s: cannot read %s's signing key: %s", self.silo, peer, exc)
            return None
        return blob.data if isinstance(blob, Blob) and len(blob.data) == 32 else None

    def secure_requests(self, task: TrainTask) -> Iterator[tuple[int, object]]:
        """The secure-aggregation requests addressed to this silo in ``task``'s attempt, in
        step order, until the head moves on (another round or attempt, or the job's end). A
        request that fails its checks is skipped with the reason logged."""
        from fl_jobs.local.secure_messages import SECURE_REQUESTS
        from fl_jobs.store.secure_relay import read_document

        prefix = layout.secagg_prefix(self.job, task.round, task.attempt)
        done = 0
        backoff = Backoff(most=self.poll_max_s)
        while True:
            head = self._read_head()
            if head is None or head.get("state") != "running":
                return
            if (head["round"], head["attempt"]) != (task.round, task.attempt):
                return
            names = self.store.list(layout.GLOBAL_CONTAINER, prefix)
            steps = sorted(
                (step, name)
                for name in names
                if (step := layout.step_of(name, self.silo)) is not None and step > done
            )
            if not steps:
                time.sleep(backoff.next())
                continue
            backoff.reset()
            step, name = steps[0]
            done = step
            blob = self.store.read(layout.GLOBAL_CONTAINER, name, max_bytes=msg.MAX_JSON_BYTES)
            try:
                if not isinstance(blob, Blob):
                    raise msg.MessageRejected("missing or too large")
                request = read_document(
                    blob.data,
                    expected=SECURE_REQUESTS,
                    job=self.job,
                    round=task.round,
                    attempt=task.attempt,
                    writer=ORCHESTRATOR,
                    step=step,
                    to=self.silo,
                )
            except msg.MessageRejected as exc:
                log.warning("%s: ignored global/%s: %s", self.silo, name, exc)
                continue
            self.state = f"secure aggregation round {task.round}, step {step}"
            yield step, request

    def secure_reply(self, task: TrainTask, step: int, reply: object) -> None:
        """This silo's reply to step ``step``, in its own container (create-only)."""
        from fl_jobs.store.secure_relay import reply_document

        name = layout.secagg_reply_blob(self.job, task.round, task.attempt, step)
        data = reply_document(self.job, task.round, task.attempt, step, self.silo, reply)
        try:
            self.store.create(self.container, name, data)
        except AlreadyWritten:
            log.warning("%s: %s/%s already holds a reply; kept it", self.silo, self.container, name)

    def diverged(self, task: TrainTask, loss: float, step: int) -> None:
        head = msg.header(
            "diverged", self.job, task.round, task.attempt, self.silo, loss=repr(loss), step=step
        )
        self._send(task, msg.encode_tensors({}, head))

    def _send(self, task: TrainTask, data: bytes) -> None:
        name = layout.update_blob(self.job, task.round, task.attempt)
        try:
            self.store.create(self.container, name, data)
        except AlreadyWritten:
            log.warning("%s: %s/%s already holds a reply; kept it", self.silo, self.container, name)
        self.state = f"replied round {task.round}"
        self._write_heartbeat()

    # -- heartbeats -----------------------------------------------------------------------------

    def _heartbeats(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._write_heartbeat()
            except Exception as exc:  # the main loop sees outages itself
                log.warning("%s: heartbeat failed: %s", self.silo, exc)

    def _write_heartbeat(self) -> None:
        doc = msg.header(
            "heartbeat", self.job, self.round, 0, self.silo, state=self.state, time=time.time()
        )
        self.store.overwrite(self.container, layout.heartbeat_blob(self.job), msg.encode_json(doc))


def _open_task(head: Mapping[str, object], silo: str) -> tuple[int, int] | None:
    """The (round, attempt) the head asks ``silo`` to look at: the round in progress, or with
    asynchronous rounds the silo's own open task (None: none yet)."""
    tasks = head.get("open")
    if tasks is None:
        return _int(head, "round"), _int(head, "attempt")
    if not isinstance(tasks, Mapping) or silo not in tasks:
        return None
    number = tasks[silo]
    if isinstance(number, bool) or not isinstance(number, int):
        return None
    return number, 1


def _int(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise msg.MessageRejected(f"{key} {value!r} is not an integer")
    return value
