"""The approval hook against real approvers: a local command and an HTTP server on loopback."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fl_jobs.aml.approval import (
    PROTOCOL,
    ApprovalError,
    ask_approver,
    current_author,
    require_approval,
)
from fl_jobs.config.approval_spec import ApprovalSpec

APPROVER = Path(__file__).with_name("approver.py")


def _command(mode: str, record: Path, timeout: float = 20.0) -> ApprovalSpec:
    return ApprovalSpec(
        command=[sys.executable, str(APPROVER), mode, str(record)], timeout_seconds=timeout
    )


@pytest.fixture
def request_body(prepared3: Any) -> dict[str, Any]:
    return prepared3.approval_request(author="data-scientist@example.org")


def test_request_describes_job_author_code_and_every_step(
    prepared3: Any, request_body: dict[str, Any]
) -> None:
    assert request_body["protocol"] == PROTOCOL
    assert request_body["job_name"] == prepared3.job_name
    assert request_body["author"] == "data-scientist@example.org"
    assert request_body["code_sha256"] == prepared3.code.sha256
    assert len(request_body["code_sha256"]) == 64
    steps = {s["name"]: s for s in request_body["steps"]}
    assert set(steps) == set(prepared3.job.jobs)
    silo = prepared3.manifest.silos[0]
    train = steps[f"train_r1_{silo.name}".replace("-", "_")]
    assert train["compute"] == silo.compute
    assert set(train["inputs"]) == {"global_model", "silo_data"}
    update_store = prepared3.model_store.update_datastore(silo.name)
    assert train["outputs"]["model_update"] == (
        f"azureml://datastores/{update_store}/paths/{prepared3.job_name}/round-1/"
    )
    json.dumps(request_body)  # JSON-ready as is


def test_author_comes_from_env_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FL_SANDBOX_AUTHOR", "alice@example.org")
    assert current_author() == "alice@example.org"
    monkeypatch.delenv("FL_SANDBOX_AUTHOR")
    assert current_author()  # git e-mail or OS user, never empty


def test_command_approves_and_receives_the_request(
    tmp_path: Path, request_body: dict[str, Any]
) -> None:
    record = tmp_path / "seen.json"
    decision = require_approval(_command("approve", record), request_body)
    assert decision.approved
    assert request_body["job_name"] in decision.reason
    assert json.loads(record.read_text()) == request_body


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("refuse", "compute not allowed on weekends"),
        ("fail", "exited with code 3: policy store unavailable"),
        ("garbage", "not a JSON object"),
    ],
)
def test_command_refusals_stop_with_reason(
    tmp_path: Path, request_body: dict[str, Any], mode: str, reason: str
) -> None:
    with pytest.raises(ApprovalError, match=reason):
        require_approval(_command(mode, tmp_path / "seen.json"), request_body)


def test_command_timeout_stops_submission(tmp_path: Path, request_body: dict[str, Any]) -> None:
    decision = ask_approver(_command("sleep", tmp_path / "seen.json", timeout=1.0), request_body)
    assert not decision.approved and "did not answer within 1 s" in decision.reason


def test_missing_command_stops_submission(request_body: dict[str, Any]) -> None:
    spec = ApprovalSpec(command=["/nonexistent/approver"])
    with pytest.raises(ApprovalError, match="could not be started"):
        require_approval(spec, request_body)


class _Approver(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, bytes]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).seen.append(
            {
                "content_type": self.headers["Content-Type"],
                "body": json.loads(self.rfile.read(length)),
            }
        )
        status, body = type(self).answers.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_approver() -> Iterator[tuple[str, type[_Approver]]]:
    handler = type("Handler", (_Approver,), {"answers": [], "seen": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/approve", handler
    finally:
        server.shutdown()
        server.server_close()


def test_http_approver_approves(
    http_approver: tuple[str, Any], request_body: dict[str, Any]
) -> None:
    url, handler = http_approver
    handler.answers.append((200, b'{"approved": true, "reason": "looks fine"}'))
    decision = require_approval(ApprovalSpec(url=url, timeout_seconds=5), request_body)
    assert decision.approved and "looks fine" in decision.reason
    (seen,) = handler.seen
    assert seen["content_type"] == "application/json"
    assert seen["body"] == request_body


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b'{"approved": false, "reason": "unknown author"}', "unknown author"),
        (403, b"forbidden by policy", "HTTP 403: forbidden by policy"),
        (200, b'{"approved": "yes"}', 'without a boolean "approved"'),
        (500, b"", "HTTP 500"),
    ],
)
def test_http_refusals_stop_with_reason(
    http_approver: tuple[str, Any],
    request_body: dict[str, Any],
    status: int,
    body: bytes,
    reason: str,
) -> None:
    url, handler = http_approver
    handler.answers.append((status, body))
    with pytest.raises(ApprovalError, match=reason):
        require_approval(ApprovalSpec(url=url, timeout_seconds=5), request_body)


def test_unreachable_http_approver_stops_submission(request_body: dict[str, Any]) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = ApprovalSpec(url=f"http://127.0.0.1:{port}/approve", timeout_seconds=5)
    with pytest.raises(ApprovalError, match="unreachable"):
        require_approval(spec, request_body)
