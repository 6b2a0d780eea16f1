"""Getting to an MLflow store safely: fail fast when a server is unreachable, never leave a
half-created SQLite store behind, and say how to fix a damaged one.

- MLflow's HTTP client retries an unreachable server for minutes; :func:`probe` tries once
  with a short timeout first, so a wrong ``--tracking-uri`` costs seconds, not minutes.
- Creating a SQLite store runs dozens of schema migrations (about 2 s). A process killed in
  the middle used to leave a store that every later run refused ("duplicate column name").
  :func:`ensure_sqlite_store` copies an empty store (migrated once per machine and MLflow
  version, in the fl-sandbox cache, and checked before each use) under a temporary name and
  renames it into place, under a lock file, so a store either exists complete or not at all,
  in milliseconds, however many jobs start against it at once.
- :func:`describe_store_error` turns the database errors of a damaged store into one line
  with the fix.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from fl_jobs.silo.cache_dir import cache_dir

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


def ensure_sqlite_store(db: Path, artifact_root: Path) -> list[str]:
    """Create the SQLite store ``db`` if missing, all at once (a copy of an empty store made
    for this MLflow version, renamed into place); leftovers of a killed creation go first.

    Jobs that start together against one new store take turns under a lock file beside it
    (``.<name>.lock``, ``flock``): the first creates the store, the others find it. Without
    the lock, each replaced the store the one before had opened, whose run then vanished.
    Returns notes worth a warning (a damaged cached empty store that was rebuilt)."""
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    with _creation_lock(db):
        for stale in db.parent.glob(f".{db.name}.creating-*"):
            stale.unlink(missing_ok=True)  # under the lock: nobody else is creating it
        if db.exists():
            return []
        template, notes = _empty_store()
        tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
        try:
            shutil.copyfile(template, tmp)
            _point_default_experiment(tmp, artifact_root / "0")
            os.replace(tmp, db)
        finally:
            tmp.unlink(missing_ok=True)
        return notes


@contextlib.contextmanager
def _creation_lock(db: Path) -> Iterator[None]:
    """Held while a store is checked and created; the kernel drops it if the process dies."""
    fd = os.open(db.with_name(f".{db.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _empty_store() -> tuple[Path, list[str]]:
    """A freshly migrated, empty store for the installed MLflow, built once per machine (the
    migrations cost about 2 s of CPU, a copy a few milliseconds), and checked on every use:
    a damaged copy in the cache would otherwise break the tracking of every later run."""
    import mlflow

    template = cache_dir() / "mlflow" / f"empty-store-{mlflow.__version__}.db"
    notes: list[str] = []
    if template.is_file():
        damage = store_damage(template)
        if damage is None:
            return template, notes
        notes.append(
            f"the cached empty MLflow store {template} was damaged ({damage}); it was rebuilt"
        )
    _build_empty_store(template)
    return template, notes


def _build_empty_store(template: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f".{template.name}.creating-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{tmp.resolve()}", (template.parent / "unused").as_uri())
    store.engine.dispose()
    os.replace(tmp, template)


def store_damage(db: Path) -> str | None:
    """Why the SQLite file ``db`` is not a usable MLflow store (None when it is): not a
    database, failing SQLite's quick check, or without MLflow's schema version."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            (check,) = conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                return f"quick check: {check}"
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            conn.execute("SELECT count(*) FROM experiments").fetchone()
    except sqlite3.Error as exc:
        return str(exc)
    return None if row else "no schema version"


def _point_default_experiment(db: Path, location: Path) -> None:
    """MLflow's "Default" experiment of a copied store points into this run's folder too."""
    import sqlite3

    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (location.resolve().as_uri(),),
        )
        conn.commit()


def moved_store(recorded_uri: str, run_dir: Path) -> str | None:
    """A run folder moved with its own store inside (``--tracking-uri`` into the folder):
    the store's new URI, after its artifact locations (absolute paths) follow the folder;
    None when the recorded store is still where it was, or was not in the folder."""
    import sqlite3

    old_db = sqlite_path(recorded_uri)
    new_db = Path(run_dir) / "mlflow.db"
    if old_db is None or old_db.exists() or not new_db.is_file():
        return None
    old_root, new_root = old_db.resolve().parent.as_uri(), new_db.resolve().parent.as_uri()
    with contextlib.closing(sqlite3.connect(new_db)) as conn:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            conn.execute(
                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                f"WHERE substr({column}, 1, ?) = ?",
                (new_root, len(old_root) + 1, len(old_root), old_root),
            )
        conn.commit()
    return f"sqlite:///{new_db.resolve()}"


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
