"""The approval hook: a person or a system says yes before a pipeline is submitted.

Protocol (``fl-sandbox-approval/1``). The request is one JSON object::

    {"protocol": "fl-sandbox-approval/1", "job_name": ..., "experiment": ...,
     "author": ..., "code_sha256": ..., "workspace": {...},
     "steps": [{"name": ..., "compute": ..., "instance_type": ...,
                "inputs": {port: uri}, "outputs": {port: uri}, "params": {...}}]}

- ``command``: the program gets the request on stdin and answers on stdout with
  ``{"approved": true|false, "reason": "..."}``. Approval needs exit code 0 AND
  ``"approved": true``; any other exit code is a refusal (its stderr is the reason).
- ``url``: the request is POSTed as ``application/json``; approval needs HTTP 200 AND a JSON
  body with ``"approved": true``. Any other status is a refusal with the body as reason.

Only an explicit ``true`` approves: silence, malformed answers, timeouts and unreachable
approvers all stop the submission, each with its reason.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from fl_jobs.aml.steps_io import StepIO
from fl_jobs.config.approval_spec import ApprovalSpec

PROTOCOL = "fl-sandbox-approval/1"
AUTHOR_ENV = "FL_SANDBOX_AUTHOR"


class ApprovalError(RuntimeError):
    """The submission was not approved; the message says why (refusal, timeout, unreachable)."""


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    reason: str


def current_author() -> str:
    """Who submits: ``$FL_SANDBOX_AUTHOR``, else the git user e-mail, else the OS user."""
    if os.environ.get(AUTHOR_ENV):
        return os.environ[AUTHOR_ENV]
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or getpass.getuser()


def build_request(
    steps: list[StepIO],
    *,
    job_name: str,
    experiment: str,
    code_sha256: str,
    author: str | None = None,
    workspace: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON-ready description an approver decides on."""
    return {
        "protocol": PROTOCOL,
        "job_name": job_name,
        "experiment": experiment,
        "author": author if author is not None else current_author(),
        "code_sha256": code_sha256,
        "workspace": workspace or {},
        "steps": [
            {
                "name": step.name,
                "compute": step.compute,
                "instance_type": step.instance_type,
                "inputs": {port.name: port.uri for port in step.reads},
                "outputs": {port.name: port.uri for port in step.writes},
                "params": {key: _jsonable(value) for key, value in step.params.items()},
            }
            for step in steps
        ],
    }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _decision_from_body(body: str, who: str) -> ApprovalDecision:
    try:
        answer = json.loads(body)
    except json.JSONDecodeError:
        return ApprovalDecision(False, f"{who} answered {body[:200]!r}, not a JSON object")
    if not isinstance(answer, dict) or not isinstance(answer.get("approved"), bool):
        return ApprovalDecision(
            False, f'{who} answered {body[:200]!r} without a boolean "approved" field'
        )
    reason = str(answer.get("reason") or ("approved" if answer["approved"] else "refused"))
    return ApprovalDecision(answer["approved"], f"{who}: {reason}")


def _ask_command(spec: ApprovalSpec, payload: bytes) -> ApprovalDecision:
    assert spec.command is not None
    who = f"approval command {spec.command[0]!r}"
    try:
        done = subprocess.run(
            spec.command, input=payload, capture_output=True, timeout=spec.timeout_seconds
        )
    except subprocess.TimeoutExpired:
        return ApprovalDecision(False, f"{who} did not answer within {spec.timeout_seconds:g} s")
    except OSError as exc:
        return ApprovalDecision(False, f"{who} could not be started: {exc}")
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        why = detail[-1] if detail else "no message"
        return ApprovalDecision(False, f"{who} exited with code {done.returncode}: {why}")
    return _decision_from_body(done.stdout.decode(errors="replace").strip(), who)


def _ask_url(spec: ApprovalSpec, payload: bytes) -> ApprovalDecision:
    assert spec.url is not None
    who = f"approver {spec.url}"
    request = urllib.request.Request(
        spec.url,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout_seconds) as response:
            status, body = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace").strip()
        why = body[:200] or exc.reason
        return ApprovalDecision(False, f"{who} answered HTTP {exc.code}: {why}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return ApprovalDecision(False, f"{who} is unreachable: {reason}")
    if status != 200:
        return ApprovalDecision(False, f"{who} answered HTTP {status}, not 200")
    return _decision_from_body(body.strip(), who)


def ask_approver(spec: ApprovalSpec, request: dict[str, Any]) -> ApprovalDecision:
    """Send ``request`` to the configured approver and return its decision (never raises for
    a refusal or an unreachable approver: that is a decision with approved=False)."""
    payload = json.dumps(request, sort_keys=True).encode()
    return _ask_command(spec, payload) if spec.command is not None else _ask_url(spec, payload)


def require_approval(spec: ApprovalSpec, request: dict[str, Any]) -> ApprovalDecision:
    """Ask, and raise ``ApprovalError`` with the reason unless the answer is an explicit yes."""
    decision = ask_approver(spec, request)
    if not decision.approved:
        raise ApprovalError(f"submission not approved: {decision.reason}")
    return decision
