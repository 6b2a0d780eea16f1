"""Store messages without a store: formats round-trip, and every bad message is refused with
its reason (wrong job, round, attempt, writer, kind, shape, size, bytes, NaN)."""

from __future__ import annotations

import json

import pytest
import torch

from fl_jobs.store import layout
from fl_jobs.store import messages as msg

TEMPLATE = {"w": torch.zeros(4, 3), "b": torch.zeros(3)}
EXPECT = msg.Expect("update", "job-1", 2, 1, "silo-a")


def _update(weights=None, **changes: object) -> bytes:
    head = msg.header("update", "job-1", 2, 1, "silo-a", n_samples=10, metrics={"loss": 0.5})
    head.update(changes)
    return msg.encode_tensors(weights if weights is not None else TEMPLATE, head)


def test_an_update_round_trips_bit_exactly() -> None:
    weights = {"w": torch.randn(4, 3), "b": torch.randn(3)}
    update = msg.read_update(_update(weights), EXPECT, TEMPLATE)
    assert update.n_samples == 10 and update.metrics == {"loss": 0.5}
    assert all(torch.equal(update.weights[k], weights[k]) for k in weights)


def test_the_encoding_is_deterministic() -> None:
    """A resumed orchestrator re-publishing a model finds the very same bytes."""
    assert _update() == _update()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"job": "job-2"}, "job 'job-2', expected 'job-1'"),
        ({"round": 1}, "round 1 (stale), expected 2"),
        ({"attempt": 2}, "attempt 2, expected 1"),
        ({"writer": "silo-b"}, "writer 'silo-b', expected 'silo-a' (written for another silo)"),
        ({"kind": "task"}, "kind 'task', expected 'update'"),
        ({"schema": "fl-sandbox/store/0"}, "schema 'fl-sandbox/store/0'"),
        ({"round": "2"}, "round '2' is not an integer"),
        ({"n_samples": 0}, "n_samples must be a positive integer, got 0"),
        ({"n_samples": True}, "n_samples must be a positive integer"),
        ({"metrics": {"loss": "low"}}, "metrics must map names to numbers"),
    ],
)
def test_a_wrong_envelope_is_rejected(changes: dict, reason: str) -> None:
    with pytest.raises(msg.MessageRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        msg.read_update(_update(**changes), EXPECT, TEMPLATE)


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ({"w": torch.zeros(4, 2), "b": torch.zeros(3)}, "tensor 'w' has shape (4, 2)"),
        ({"w": torch.zeros(4, 3)}, "tensor 'b' is missing"),
        ({**TEMPLATE, "x": torch.zeros(1)}, "unknown tensor 'x'"),
        ({"w": torch.zeros(4, 3, dtype=torch.float64), "b": torch.zeros(3)}, "dtype"),
        ({"w": torch.full((4, 3), float("nan")), "b": torch.zeros(3)}, "non-finite"),
    ],
)
def test_a_wrong_tensor_is_rejected(weights: dict, reason: str) -> None:
    with pytest.raises(msg.MessageRejected) as refused:
        msg.read_update(_update(weights), EXPECT, TEMPLATE)
    assert reason in str(refused.value)


def test_garbage_and_oversized_messages_are_rejected() -> None:
    for raw in (b"", b"garbage bytes", b"\xff" * 64, b"\x10\x00\x00\x00\x00\x00\x00\x00{}"):
        with pytest.raises(msg.MessageRejected, match="not a safetensors message"):
            msg.read_update(raw, EXPECT, TEMPLATE)
    big = {"w": torch.zeros(400, 300), "b": torch.zeros(3)}
    with pytest.raises(msg.MessageRejected, match="more than the"):
        msg.read_update(_update(big), EXPECT, TEMPLATE)


def test_a_pickle_is_never_loaded() -> None:
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4, 3)}, buffer)
    with pytest.raises(msg.MessageRejected):
        msg.read_update(buffer.getvalue(), EXPECT, TEMPLATE)


def test_json_documents() -> None:
    doc = msg.header("head", "job-1", 3, 1, "orchestrator", state="running")
    assert msg.decode_json(msg.encode_json(doc)) == doc
    for raw, reason in [
        (b"\xff", "not a JSON document"),
        (b"[1]", "a JSON list, expected an object"),
        (b'{"x": NaN}', "not a JSON document"),
        (b" " * (msg.MAX_JSON_BYTES + 1), "more than the"),
    ]:
        with pytest.raises(msg.MessageRejected, match=reason):
            msg.decode_json(raw)
    with pytest.raises(ValueError):
        msg.encode_json({"x": float("nan")})
    assert json.loads(msg.encode_json(doc))["schema"] == msg.SCHEMA


def test_layout_names() -> None:
    from components.vocabulary.conventions import GLOBAL_MODELS_CONTAINER
    from components.vocabulary.naming import silo_container

    assert layout.GLOBAL_CONTAINER == GLOBAL_MODELS_CONTAINER
    from components.permissions import signing_key_blob
    from components.vocabulary.conventions import SIGNING_KEYS_CONTAINER

    assert layout.SIGNING_KEYS_CONTAINER == SIGNING_KEYS_CONTAINER
    assert layout.signing_key_blob("north") == signing_key_blob("north")  # its write grant
    assert layout.silo_container("north") == silo_container("north")
    assert layout.task_blob("j", 4, 1) == "j/rounds/r000004/a01/task.json"
    assert layout.attempt_of(layout.task_blob("j", 4, 12)) == 12
    assert layout.attempt_of("j/rounds/r000004/a01/other.json") is None
    for bad in ("", "Job", "a/b", "-x", "x" * 64):
        with pytest.raises(ValueError):
            layout.check_job_id(bad)
