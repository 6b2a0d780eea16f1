"""scripts/fetch_data.py: its checksum table pins exactly the shared reference copies, and its
downloads are verified, atomic and honest about failures. Offline: every download here comes
from a loopback HTTP server in this process (non-loopback sockets are blocked for the session).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from fl_jobs.config import JobConfig
from fl_jobs.examples.base import Dataset
from fl_jobs.examples.data_sources import MNIST, SOURCES, TURBOFAN, numbers_sha256
from fl_jobs.examples.registry import get_example
from scripts.fetch_data import main

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The uncompressed MNIST files' MD5s as published with the original distribution.
MNIST_PUBLISHED_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def shared_content(shared_data: Path, folder: str, name: str) -> bytes:
    return gzip.decompress((shared_data / folder / f"{name}.gz").read_bytes())


@dataclass
class Served:
    """What the loopback server answers: path -> body; ``cut`` paths promise more bytes than
    they send, then hang up."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)
    hits: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def server() -> Iterator[Served]:
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.hits.append(self.path)
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if self.path in served.cut else body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()


def serve_mnist(served: Served, shared_data: Path, corrupt: str | None = None) -> str:
    """The shared MNIST .gz files under /mnist/; ``corrupt`` gets one label changed."""
    for file in MNIST.files:
        body = (shared_data / "mnist" / f"{file.name}.gz").read_bytes()
        if file.name == corrupt:
            raw = bytearray(gzip.decompress(body))
            raw[-1] = (raw[-1] + 1) % 10
            body = gzip.compress(bytes(raw))
        served.files[f"/mnist/{file.name}.gz"] = body
    return f"{served.url}/mnist/"


@functools.cache
def nasa_text(shared_data: Path, name: str) -> bytes:
    """A C-MAPSS file laid out as NASA's: space-separated, "1589.70" for "1589.7", two
    trailing spaces, LF (the shared train file has tabs, CRLF and trailing zeros dropped)."""

    def pad(value: str) -> str:
        decimals = len(value.partition(".")[2])
        return value + "0" if decimals == 1 else value

    text = shared_content(shared_data, "cmapss", name).decode()
    rows = [" ".join(pad(v) for v in line.split()) for line in text.splitlines()]
    return "".join(f"{row}  \n" for row in rows).encode()


def exit_code(argv: list[str]) -> int:
    """``main``'s exit code, also when argparse exits on a usage error."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def shared_turbofan(shared_data: Path) -> Dataset:
    return get_example("turbofan").load(
        JobConfig(example="turbofan", data_dir=shared_data / "cmapss").example, 0
    )


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_checksum_table_matches_the_shared_copies(shared_data: Path) -> None:
    """The table is computed from nothing else than the shared files, recomputed here."""
    for source in SOURCES.values():
        for file in source.files:
            content = shared_content(shared_data, source.folder, file.name)
            assert source.content_sha256(content) == file.sha256, (source.name, file.name)
    for name, md5 in MNIST_PUBLISHED_MD5.items():  # the shared MNIST is the original data
        content = shared_content(shared_data, "mnist", name)
        assert hashlib.md5(content).hexdigest() == md5
        assert hashlib.sha256(content).hexdigest() == next(
            f.sha256 for f in MNIST.files if f.name == name
        )


def test_numbers_checksum_ignores_layout_but_not_values(shared_data: Path) -> None:
    shared = shared_content(shared_data, "cmapss", "train_FD001.txt")  # tabs, CRLF
    nasa_like = nasa_text(shared_data, "train_FD001.txt")  # spaces, "100.00", LF
    assert nasa_like != shared and numbers_sha256(nasa_like) == numbers_sha256(shared)
    changed = nasa_like.replace(b"641.82", b"641.83", 1)
    assert numbers_sha256(changed) != numbers_sha256(shared)
    with pytest.raises(ValueError, match="different widths"):
        numbers_sha256(shared.rsplit(b"\t", 1)[0])  # a short last row


def test_mnist_download_verifies_keeps_and_loads(
    server: Served, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data" / "mnist"
    mirror = serve_mnist(server, shared_data)
    assert main(["mnist", "--to", str(folder), "--mirror", mirror]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{f.name}.gz" for f in MNIST.files)
    assert "done: 4 files verified" in capsys.readouterr().out
    dataset = get_example("mnist").load(JobConfig(example="mnist", data_dir=folder).example, 0)
    assert dataset.X.shape == (60000, 784) and dataset.test_X.shape == (10000, 784)

    hits = len(server.hits)
    assert main(["mnist", "--to", str(folder), "--mirror", mirror]) == 0
    assert len(server.hits) == hits  # present and verified: nothing downloaded again
    assert "nothing to download" in capsys.readouterr().out


def test_checksum_mismatch_deletes_the_download(
    server: Served, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mnist"
    mirror = serve_mnist(server, shared_data, corrupt="train-labels-idx1-ubyte")
    assert main(["mnist", "--to", str(folder), "--mirror", mirror]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot fetch train-labels")
    assert "checksum mismatch" in err and "(download deleted)" in err and " - " in err
    # the file before it was verified and kept; the bad one and every temporary file are gone
    assert sorted(p.name for p in folder.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_missing_file_or_no_server_leaves_nothing(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "new" / "mnist"
    assert main(["mnist", "--to", str(folder), "--mirror", f"{server.url}/empty/"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the folders it created are removed again

    port = closed_port()
    code = main(["mnist", "--to", str(folder), "--mirror", f"http://127.0.0.1:{port}/"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Connection refused" in err
    assert "check the internet connection" in err and not (tmp_path / "new").exists()


def test_cut_transfer_is_not_kept(
    server: Served, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    mirror = serve_mnist(server, shared_data)
    server.cut.add("/mnist/train-images-idx3-ubyte.gz")
    assert main(["mnist", "--to", str(folder), "--mirror", mirror]) == 1
    err = capsys.readouterr().err
    assert "transfer stopped after 4859731 of 9719462 bytes" in err
    assert list(folder.iterdir()) == []  # the existing folder stays, empty


def test_a_bad_existing_copy_is_replaced_only_by_a_verified_one(
    server: Served, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    stale = folder / "t10k-labels-idx1-ubyte"  # plain files shadow .gz ones in the loaders
    stale.write_bytes(b"damaged")
    # a good .gz does not make up for a bad plain copy beside it: the loaders read the plain one
    shutil.copy(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", folder)
    mirror = serve_mnist(server, shared_data, corrupt="t10k-labels-idx1-ubyte")
    assert main(["mnist", "--to", str(folder), "--mirror", mirror]) == 1
    assert stale.read_bytes() == b"damaged" and leftovers(folder) == []
    assert "t10k-labels-idx1-ubyte: present but its checksum differs" in capsys.readouterr().out

    serve_mnist(server, shared_data)
    assert main(["mnist", "--to", str(folder), "--mirror", mirror]) == 0
    out = capsys.readouterr().out
    assert "t10k-labels-idx1-ubyte: present but its checksum differs" in out
    assert not stale.exists() and (folder / "t10k-labels-idx1-ubyte.gz").is_file()
    labels = (
        get_example("mnist").load(JobConfig(example="mnist", data_dir=folder).example, 0).test_y
    )
    assert len(labels) == 10000
    assert "train-images-idx3-ubyte.gz: present, checksum matches" in out


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_turbofan_archive_is_extracted_verified_and_loads(
    layout: str, server: Served, shared_data: Path, tmp_path: Path
) -> None:
    """data.nasa.gov serves CMAPSSData.zip with the files at its top; the PCoE repository
    wraps that zip in another one. Both are read by file name."""
    members = {f"CMAPSSData/{f.name}": nasa_text(shared_data, f.name) for f in TURBOFAN.files}
    members["CMAPSSData/readme.txt"] = b"C-MAPSS"
    archive = zip_bytes(members)
    if layout == "nested":
        archive = zip_bytes({"6. Turbofan Engine Degradation/CMAPSSData.zip": archive})
    server.files["/CMAPSSData.zip"] = archive
    folder = tmp_path / "cmapss"
    assert main(["turbofan", "--to", str(folder), "--mirror", f"{server.url}/CMAPSSData.zip"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in TURBOFAN.files)
    fetched = get_example("turbofan").load(
        JobConfig(example="turbofan", data_dir=folder).example, 0
    )
    shared = shared_turbofan(shared_data)
    assert np.array_equal(fetched.X, shared.X) and np.array_equal(fetched.test_y, shared.test_y)


def test_turbofan_archive_is_all_or_nothing(
    server: Served, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = {f.name: nasa_text(shared_data, f.name) for f in TURBOFAN.files}
    server.files["/no-rul.zip"] = zip_bytes({k: v for k, v in members.items() if "RUL" not in k})
    server.files["/not-a-zip.zip"] = b"<html>moved</html>"
    members["test_FD001.txt"] = members["test_FD001.txt"].replace(b"641.71", b"641.72", 1)
    server.files["/changed.zip"] = zip_bytes(members)
    folder = tmp_path / "cmapss"
    folder.mkdir()
    for path, problem in [
        ("/no-rul.zip", "the archive holds no RUL_FD001.txt"),
        ("/not-a-zip.zip", "not a readable zip archive"),
        ("/changed.zip", "test_FD001.txt: checksum mismatch"),
    ]:
        assert main(["turbofan", "--to", str(folder), "--mirror", server.url + path]) == 1
        err = capsys.readouterr().err
        assert problem in err and len(err.strip().splitlines()) == 1
        assert list(folder.iterdir()) == []  # not even the files that did verify


def test_bad_arguments_exit_2_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for argv, fragment in [
        (["cifar"], "invalid choice: 'cifar'"),
        (["mnist", "--mirror", "ftp://example.org/"], "is not an http(s) URL"),
        (["mnist", "--timeout", "0"], "--timeout 0 must be > 0"),
    ]:
        assert exit_code([*argv, "--to", str(tmp_path / "new")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and fragment in err and " - " in err
        assert not (tmp_path / "new").exists()
    # as a script from another folder: the same one line and exit code
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "fetch_data.py"), "turbofan", "--to", a_file],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == f"error: {a_file} is a file, not a folder - pass --to FOLDER\n"
