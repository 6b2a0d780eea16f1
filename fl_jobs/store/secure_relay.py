"""Secure aggregation through the model store: the orchestrator's relay and the silos' policy.

Each exchange of the protocol (keys, shares, masked updates, consistency, reveal) is one
numbered step of the round's attempt. The orchestrator writes step N's request to each silo
in ``global`` (``<job>/rounds/r…/a…/secagg/sNN/<silo>.json``, create-only) and polls each
silo's reply in that silo's own container (``…/secagg/sNN.json``) with backoff, under the
round's deadline. Both are JSON documents with the store's envelope (job, round, attempt,
writer, schema) plus the step, decoded by :mod:`fl_jobs.store.secure_codec`; a reply that
fails a check is a refusal with its reason, and the round goes on without that silo, as for
any other message. Signing keys are published in the ``signing-keys`` container, one blob per
silo that only that silo's identity may write (:func:`fl_jobs.store.layout.signing_key_blob`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from fl_jobs.local.secure_messages import SECURE_REPLIES, Refused, SecureRequest
from fl_jobs.local.wait_notice import WaitNotice
from fl_jobs.secure_aggregation.messages import WEIGHT_SLOTS
from fl_jobs.secure_aggregation.silo_guard import SessionPolicy
from fl_jobs.store import layout, secure_codec
from fl_jobs.store import messages as msg
from fl_jobs.store.blobs import NOT_MODIFIED, Blob, TooLarge

if TYPE_CHECKING:
    from fl_jobs.config import JobConfig
    from fl_jobs.store.server import StoreServer

log = logging.getLogger("fl_jobs.store")


def store_session_policy(config: JobConfig, silos: Sequence[str], job: str) -> SessionPolicy:
    """A silo's own rules for sessions of store job ``job``: the manifest's silos, a majority
    of the cohort its configuration plans per round, and that job's run only."""
    from fl_jobs.store.server import store_run_id
    from fl_jobs.strategies.client_fraction import silos_per_round

    per_round = silos_per_round(config.federation.fraction, len(silos))
    return SessionPolicy.of_config(config, silos, per_round, store_run_id(job))


def session_floor(config: JobConfig, silos: Sequence[str]) -> int:
    """The floor the silos apply (the orchestrator follows it: fail, never shrink)."""
    from fl_jobs.strategies.client_fraction import silos_per_round

    return SessionPolicy.for_cohort(
        silos, silos_per_round(config.federation.fraction, len(silos))
    ).floor


def reply_limit(template: Mapping[str, torch.Tensor]) -> int:
    """The largest reply a silo may write: a masked update of this model (base64 of its
    uint64 elements) plus the JSON around it."""
    elements = sum(t.numel() for t in template.values()) + WEIGHT_SLOTS
    return msg.MAX_JSON_BYTES + (8 * elements * 4) // 3 + 64 * len(template)


def request_document(
    job: str, round: int, attempt: int, step: int, silo: str, request: object
) -> bytes:
    """Step ``step``'s request to ``silo`` as the orchestrator writes it."""
    kind = secure_codec.KIND_OF[type(request)]
    body = secure_codec.encode(request)
    return msg.encode_json(
        msg.header(kind, job, round, attempt, "orchestrator", step=step, to=silo, body=body)
    )


def reply_document(
    job: str, round: int, attempt: int, step: int, silo: str, reply: object
) -> bytes:
    """A silo's reply to step ``step``, as it writes it in its own container."""
    kind = secure_codec.KIND_OF[type(reply)]
    body = secure_codec.encode(reply)
    return msg.encode_json(msg.header(kind, job, round, attempt, silo, step=step, body=body))


def read_document(
    raw: bytes,
    *,
    expected: tuple[type, ...],
    job: str,
    round: int,
    attempt: int,
    writer: str,
    step: int,
    limit: int = msg.MAX_JSON_BYTES,
    to: str | None = None,
) -> object:
    """A secure-aggregation document, checked end to end (size, JSON, envelope, step,
    addressee, body); MessageRejected with the reason otherwise."""
    doc = msg.decode_json(raw, limit=limit)
    kind = doc.get("kind")
    if not isinstance(kind, str) or secure_codec.KINDS.get(kind) not in expected:
        names = ", ".join(secure_codec.KIND_OF[c] for c in expected)
        raise msg.MessageRejected(f"kind {kind!r}, expected one of {names}")
    msg.check_header(doc, msg.Expect(kind, job, round, attempt, writer))
    if doc.get("step") != step:
        raise msg.MessageRejected(f"step {doc.get('step')!r}, expected {step}")
    if to is not None and doc.get("to") != to:
        raise msg.MessageRejected(f"addressed to {doc.get('to')!r}, not {to!r}")
    return secure_codec.decode(kind, doc.get("body"), expected)


class StoreRelay:
    """:class:`fl_jobs.local.secure_round.SecureRelay` for one round attempt of a store job."""

    def __init__(
        self,
        server: StoreServer,
        round: int,
        attempt: int,
        template: Mapping[str, torch.Tensor],
    ) -> None:
        self.server, self.round, self.attempt = server, round, attempt
        self.limit = reply_limit(template)
        self.step = 0

    def exchange(
        self,
        requests: Mapping[str, SecureRequest],
        *,
        timeout: float | None,
        on_wait: WaitNotice | None,
    ) -> Iterator[tuple[str, object]]:
        self.step += 1
        step, server = self.step, self.server
        job, rnd, attempt = server.job, self.round, self.attempt
        for silo, request in requests.items():
            name = layout.secagg_request_blob(job, rnd, attempt, step, silo)
            data = request_document(job, rnd, attempt, step, silo, request)
            server.store.create(layout.GLOBAL_CONTAINER, name, data)
        return server.settle(
            list(requests),
            {},
            lambda silo: self._poll(silo, step),
            timeout=timeout,
            on_wait=on_wait,
        )

    def _poll(self, silo: str, step: int) -> Any:
        """The silo's checked reply to ``step``, a :class:`Refused` with the reason if it fails
        its checks, or None while there is none."""
        server = self.server
        container = layout.silo_container(silo)
        name = layout.secagg_reply_blob(server.job, self.round, self.attempt, step)
        blob = server.store.read(container, name, max_bytes=self.limit)
        if blob is None or blob is NOT_MODIFIED:
            return None
        try:
            if isinstance(blob, TooLarge):
                raise msg.MessageRejected(f"{blob.size} bytes, more than the {self.limit} allowed")
            assert isinstance(blob, Blob)
            return read_document(
                blob.data,
                expected=SECURE_REPLIES,
                job=server.job,
                round=self.round,
                attempt=self.attempt,
                writer=silo,
                step=step,
                limit=self.limit,
            )
        except msg.MessageRejected as exc:
            reason = f"{container}/{name}: {exc}"
            log.warning("round %d: rejected a message from %s: %s", self.round, silo, reason)
            server.rejections.append((self.round, silo, reason))
            return Refused(silo, f"rejected message: {exc}")
