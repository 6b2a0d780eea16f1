"""Getting to an MLflow store safely: fail fast when a server is unreachable, never leave a
half-created SQLite store behind, and say how to fix a damaged one.

- MLflow's HTTP client retries an unreachable server for minutes; :func:`probe` tries once
  with a short timeout first, so a wrong ``--tracking-uri`` costs seconds, not minutes.
- Creating a SQLite store runs dozens of schema migrations (about 2 s). A process killed in
  the middle used to leave a store that every later run refused ("duplicate column name").
  :func:`ensure_sqlite_store` copies an empty store (migrated once per machine and MLflow
  version, in the fl-sandbox cache) under a temporary name and renames it into place, so a
  store either exists complete or not at all, in milliseconds.
- :func:`describe_store_error` turns the database errors of a damaged store into one line
  with the fix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from fl_jobs.cache_dir import cache_dir

#: Seconds to connect to a tracking server, and again to get an answer from it.
PROBE_TIMEOUT_S = 5.0
#: Default ports of the network stores MLflow accepts.
NETWORK_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


class TrackingUnavailable(RuntimeError):
    """The store cannot be used; the message is one line with the fix."""


def scheme_of(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    if scheme_of(uri) != "sqlite":
        return None
    path = uri.split("://", 1)[1] if "://" in uri else ""
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
    return Path(path.split("?", 1)[0]) if path and path != ":memory:" else None


def quiet_http_client() -> None:
    """Fewer, shorter HTTP retries than MLflow's defaults (7 retries, 120 s timeout), unless
    the user set them: a server that goes away mid-run costs seconds per call, not minutes."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def probe(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`TrackingUnavailable` unless the store's server answers within
    ``timeout`` seconds to connect (and, for HTTP, ``timeout`` more to reply)."""
    scheme = scheme_of(uri)
    if scheme not in NETWORK_PORTS:
        return
    parts = urlsplit(uri)
    host, port = parts.hostname, parts.port or NETWORK_PORTS[scheme]
    if not host:
        return
    fix = "start the server or correct --tracking-uri, or run with --no-tracking"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if scheme not in ("http", "https"):
                return
            if scheme == "https":
                import ssl

                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeout)
            request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            if not sock.recv(1):
                raise TrackingUnavailable(
                    f"tracking server {host}:{port} closed the connection without answering - {fix}"
                )
    except TimeoutError:
        raise TrackingUnavailable(
            f"tracking server {host}:{port} did not answer within {timeout:g} s - {fix}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TrackingUnavailable(
            f"tracking server {host}:{port} is unreachable ({reason.lower()}) - {fix}"
        ) from None


def ensure_sqlite_store(db: Path, artifact_root: Path) -> None:
    """Create the SQLite store ``db`` if missing, all at once (a copy of an empty store made
    for this MLflow version, renamed into place); leftovers of a killed creation go first."""
    db = Path(db)
    for stale in db.parent.glob(f".{db.name}.creating-*"):
        stale.unlink(missing_ok=True)
    if db.exists():
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
    shutil.copyfile(_empty_store(), tmp)
    _point_default_experiment(tmp, artifact_root / "0")
    os.replace(tmp, db)


def _empty_store() -> Path:
    """A freshly migrated, empty store for the installed MLflow, built once per machine: the
    migrations cost about 2 s of CPU, a copy a few milliseconds."""
    import mlflow
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template = cache_dir() / "mlflow" / f"empty-store-{mlflow.__version__}.db"
    if template.is_file():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f".{template.name}.creating-{os.getpid()}")
    store = SqlAlchemyStore(f"sqlite:///{tmp.resolve()}", (template.parent / "unused").as_uri())
    store.engine.dispose()
    os.replace(tmp, template)
    return template


def _point_default_experiment(db: Path, location: Path) -> None:
    """MLflow's "Default" experiment of a copied store points into this run's folder too."""
    import sqlite3

    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (location.resolve().as_uri(),),
        )
        conn.commit()


def describe_store_error(uri: str, exc: BaseException) -> str:
    """One line for a store that MLflow cannot open, with the fix."""
    text = " ".join(str(exc).split())
    first = text.split(" [SQL:", 1)[0][:200]
    db = sqlite_path(uri)
    if "out-of-date database schema" in text:
        return (
            f"MLflow store {db or uri} was written by an older MLflow - back it up, then "
            f"upgrade it with `mlflow db upgrade {uri}`, or run with --no-tracking"
        )
    database_error = type(exc).__module__.startswith(("sqlalchemy", "alembic", "sqlite3"))
    if db is not None and database_error:
        return (
            f"MLflow store {db} is damaged or half-created ({first}) - move it away "
            f"(`mv {db} {db}.damaged`) and run again, or run with --no-tracking; "
            "the run's results are on disk either way"
        )
    return f"MLflow tracking failed ({type(exc).__name__}: {first}) - results are kept on disk"
