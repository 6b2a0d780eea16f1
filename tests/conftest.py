"""Test-session guards: nothing leaves the machine.

Sockets to anything but loopback (and Unix sockets, used by worker processes) are refused for
the whole session, in this process and in the processes it forks. Loopback stays open for the
project's own test servers (e.g. the HTTP approval hook).
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FL_SANDBOX_DATA", REPO_ROOT.parent / "shared" / "data"))


class NetworkBlockedError(OSError):
    """Raised when a test tries to reach a non-loopback address."""


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a hostname: resolving it would already leave the machine


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlockedError(f"network blocked in tests: connect to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlockedError(f"network blocked in tests: connect to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    if host not in (None, "localhost") and not _is_loopback((host,)):
        raise NetworkBlockedError(f"network blocked in tests: name lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]

# Keep third-party clients quiet and local.
os.environ.setdefault("AZURE_CORE_COLLECT_TELEMETRY", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

# Silo data that runs cache (fl_jobs.silo.silo_cache) goes to a throw-away folder, never to the
# user's ~/.cache; subprocesses inherit it.
_SILO_CACHE = tempfile.mkdtemp(prefix="fl-sandbox-test-cache-")
os.environ["FL_SANDBOX_CACHE"] = _SILO_CACHE
atexit.register(shutil.rmtree, _SILO_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data sets (MNIST, C-MAPSS); tests needing them skip clearly if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set FL_SANDBOX_DATA)")
    return SHARED_DATA


# Azurite (a real Azure Storage endpoint on loopback) for the storage tests: `azurite` is one
# server for the session, `private_azurite` one per test for tests that stop the endpoint.
from tests.azurite import azurite, private_azurite  # noqa: E402, F401
