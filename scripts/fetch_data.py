"""Download an example's public data set into the data folder, checksum-verified.

    python scripts/fetch_data.py mnist                  # into $FL_SANDBOX_DATA/mnist
    python scripts/fetch_data.py turbofan --to data/cmapss

The only command of the project that downloads anything (examples never do). Files already
present with the right checksum are kept; a download is written to a temporary file beside its
destination and renamed into place only once its SHA-256 matches the table in
``fl_jobs/examples/data_sources.py``, so an interrupted or corrupted download leaves nothing
half-written. Exit codes: 0 done, 1 a download failed (network, checksum), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import http.client
import io
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import NoReturn

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # runnable as `python scripts/fetch_data.py`
    sys.path.insert(0, str(REPO_ROOT))

from fl_jobs.examples.data_paths import default_data_root, find_file  # noqa: E402
from fl_jobs.examples.data_sources import SOURCES, DataFile, DataSource  # noqa: E402

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
CHUNK = 1 << 20
#: No member of a data archive is larger; a bigger one is not the data set.
MAX_MEMBER_BYTES = 256 << 20
USER_AGENT = "fl-sandbox-fetch-data"


class FetchError(Exception):
    """A download that failed or did not verify; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in the project's one-line format."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} - see `python scripts/fetch_data.py --help`\n")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fetch_data.py",
        description="Download an example's public data set, verified by SHA-256.",
    )
    parser.add_argument("name", choices=sorted(SOURCES), help="data set to fetch")
    parser.add_argument(
        "--to",
        type=Path,
        help="folder for the files (default: $FL_SANDBOX_DATA/<folder>, else "
        "../shared/data/<folder>, where the examples look)",
    )
    parser.add_argument(
        "--mirror",
        help="download from this URL instead of the public sources (mnist: a base URL serving "
        "<file>.gz; turbofan: a zip archive holding the files)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without data before giving up [60]"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    source: DataSource = SOURCES[args.name]
    if args.mirror and not args.mirror.startswith(("http://", "https://")):
        return _fail(
            f"--mirror {args.mirror!r} is not an http(s) URL - pass e.g. "
            "--mirror https://example.org/mnist/",
            EXIT_BAD_INPUT,
        )
    if args.timeout <= 0:
        return _fail(f"--timeout {args.timeout:g} must be > 0 - e.g. --timeout 60", EXIT_BAD_INPUT)
    if args.mirror:
        source = (
            dataclasses.replace(source, file_urls=(args.mirror,))
            if source.file_urls
            else dataclasses.replace(source, archive_urls=(args.mirror,))
        )
    folder = Path(args.to) if args.to else default_data_root() / source.folder
    if folder.exists() and not folder.is_dir():
        return _fail(f"{folder} is a file, not a folder - pass --to FOLDER", EXIT_BAD_INPUT)
    print(f"{source.name}: {source.description}")
    print(f"folder: {folder}")
    todo = [f for f in source.files if not _report_existing(source, folder, f)]
    if not todo:
        print(f"all {len(source.files)} files present, checksums match: nothing to download")
        return 0
    writable = _nearest_existing(folder)
    if not os.access(writable, os.W_OK):
        return _fail(
            f"cannot write to {writable} - pass --to a writable folder, or set FL_SANDBOX_DATA",
            EXIT_BAD_INPUT,
        )
    created = _make_folder(folder)
    try:
        if source.file_urls:
            for file in todo:
                _fetch_file(source, file, folder, args.timeout)
        else:
            _fetch_archive(source, todo, folder, args.timeout)
    except FetchError as exc:
        _remove_empty(created)
        return _fail(str(exc), EXIT_FAILED)
    except OSError as exc:  # writing into the folder (disk full, permissions)
        _remove_empty(created)
        return _fail(
            f"cannot write into {folder}: {exc.strerror or exc} - free space or pass --to "
            "another folder",
            EXIT_FAILED,
        )
    except KeyboardInterrupt:
        _remove_empty(created)
        return _fail(
            "interrupted - nothing half-written is left; rerun to finish", EXIT_INTERRUPTED
        )
    print(f"done: {len(source.files)} files verified in {folder}")
    return 0


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


def _report_existing(source: DataSource, folder: Path, file: DataFile) -> bool:
    """True if the copy of ``file`` the loaders would read (plain before ``.gz``) is in
    ``folder`` with the right checksum."""
    path = find_file(folder, file.name)
    if path is None:
        return False
    if _checksum_of(source, path) == file.sha256:
        print(f"  {path.name}: present, checksum matches")
        return True
    print(f"  {path.name}: present but its checksum differs; it will be replaced")
    return False


def _checksum_of(source: DataSource, path: Path) -> str | None:
    """The table's kind of checksum of the (decompressed) file, or None if unreadable."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        return source.content_sha256(data)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError):
        return None


def _fetch_file(source: DataSource, file: DataFile, folder: Path, timeout: float) -> None:
    """Download ``<base><name>.gz`` from the first source that serves a verified copy."""
    target = folder / f"{file.name}.gz"
    failures = []
    for base in source.file_urls:
        url = base if base.endswith("/") else f"{base}/"
        url += target.name
        with _temporary(folder, target.name) as part:
            try:
                size = _download(url, part, timeout)
                problem = _verify(source, file, _gunzip(part))
            except FetchError as exc:
                failures.append(f"{url}: {exc}")
                continue
            if problem:
                failures.append(f"{url}: {problem} (download deleted)")
                continue
            os.replace(part, target)
        _remove_stale(folder, file, keep=target)
        print(f"  {target.name}: downloaded from {url} ({_size(size)}), checksum matches")
        return
    raise FetchError(f"cannot fetch {target.name}: {'; '.join(failures)} - {_retry_hint()}")


def _fetch_archive(source: DataSource, files: list[DataFile], folder: Path, timeout: float) -> None:
    """Download the first archive that holds verified copies of ``files``; write them all or
    none."""
    failures = []
    for url in source.archive_urls:
        with _temporary(folder, "archive.zip") as archive:
            try:
                size = _download(url, archive, timeout)
                members = _read_members(archive, {f.name for f in files})
            except FetchError as exc:
                failures.append(f"{url}: {exc}")
                continue
            verdicts = {f.name: _verify(source, f, members[f.name]) for f in files}
            problems = [f"{name}: {problem}" for name, problem in verdicts.items() if problem]
            if problems:
                failures.append(f"{url}: {'; '.join(problems)} (download deleted)")
                continue
            print(f"  downloaded {url} ({_size(size)})")
            with contextlib.ExitStack() as parts:
                written = []
                for file in files:
                    part = parts.enter_context(_temporary(folder, file.name))
                    part.write_bytes(members[file.name])
                    written.append((part, folder / file.name, file))
                for part, target, file in written:
                    os.replace(part, target)
                    _remove_stale(folder, file, keep=target)
                    print(f"  {target.name}: extracted, checksum matches")
            return
    raise FetchError(
        f"cannot fetch {', '.join(f.name for f in files)}: {'; '.join(failures)} - {_retry_hint()}"
    )


def _download(url: str, path: Path, timeout: float) -> int:
    """Stream ``url`` into ``path``; the number of bytes, or FetchError in one line."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, path.open("wb") as out:
            expected = response.headers.get("Content-Length")
            while chunk := response.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"{exc.reason}") from None
    except TimeoutError:
        raise FetchError(f"no data for {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:  # reset, cut short, blocked network
        raise FetchError(f"{type(exc).__name__}: {exc}") from None
    if expected is not None and expected.isdigit() and int(expected) != received:
        raise FetchError(f"the transfer stopped after {received} of {expected} bytes")
    return received


def _gunzip(path: Path) -> bytes | None:
    """The decompressed content of ``path``, or None if it is not a complete gzip file."""
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error):
        return None


def _read_members(archive: Path, names: set[str]) -> dict[str, bytes]:
    """The archive's members called ``names`` (by file name, at any depth, also inside a zip
    within the zip); FetchError if one is missing or the archive is not a zip."""
    try:
        with zipfile.ZipFile(archive) as outer:
            found = _members(outer, names, depth=0)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise FetchError(f"not a readable zip archive ({exc})") from None
    missing = sorted(names - found.keys())
    if missing:
        raise FetchError(f"the archive holds no {', '.join(missing)}")
    return found


def _members(archive: zipfile.ZipFile, names: set[str], depth: int) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for info in archive.infolist():
        base = PurePosixPath(info.filename).name
        if info.file_size > MAX_MEMBER_BYTES or info.is_dir():
            continue
        if base in names and base not in found:
            found[base] = archive.read(info)
        elif base.lower().endswith(".zip") and depth < 2:
            with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                wanted = names - found.keys()
                found.update(_members(inner, wanted, depth + 1))
    return found


def _verify(source: DataSource, file: DataFile, content: bytes | None) -> str | None:
    """None if ``content`` has ``file``'s checksum, else what is wrong."""
    if content is None:
        return "not a complete gzip file"
    try:
        actual = source.content_sha256(content)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not the expected table ({exc})"
    if actual != file.sha256:
        return f"checksum mismatch (SHA-256 {actual[:16]}..., expected {file.sha256[:16]}...)"
    return None


def _remove_stale(folder: Path, file: DataFile, keep: Path) -> None:
    """Drop the other spelling (plain or .gz) of a replaced file: loaders prefer the plain
    one, so a stale copy would shadow the verified download."""
    for path in (folder / file.name, folder / f"{file.name}.gz"):
        if path != keep and path.is_file():
            path.unlink()


@contextlib.contextmanager
def _temporary(folder: Path, name: str) -> Iterator[Path]:
    """A temporary file beside the destination (same file system, so renaming is atomic),
    removed unless renamed away."""
    handle, raw = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    os.close(handle)
    path = Path(raw)
    path.chmod(0o666 & ~_umask())  # mkstemp's 0600 would hide the data from other users
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{n_bytes / 1e3:.1f} kB"


def _nearest_existing(folder: Path) -> Path:
    path = folder.absolute()
    while not path.exists():
        path = path.parent
    return path


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder``; the folders this created, deepest first."""
    created = []
    path = folder.absolute()
    while not path.exists():
        created.append(path)
        path = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(created: list[Path]) -> None:
    for path in created:
        with contextlib.suppress(OSError):
            path.rmdir()


def _retry_hint() -> str:
    return (
        "nothing half-written was left; check the internet connection (or HTTPS_PROXY) and "
        "rerun, or pass --mirror URL"
    )


if __name__ == "__main__":
    raise SystemExit(main())
