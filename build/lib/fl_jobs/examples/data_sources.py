"""Where the examples' public data sets come from and how a good copy is recognised: the table
``scripts/fetch_data.py`` downloads and verifies by. Loaders never download.

Checksums are SHA-256 of what the loaders read, computed from the reference copies in
``../shared/data`` (a test recomputes them):

- MNIST: the decompressed IDX bytes. They equal the original distribution's (the uncompressed
  MD5s are the well-known published ones); the gzip wrappers differ between mirrors, so the
  ``.gz`` files themselves are not pinned.
- C-MAPSS: the numbers, not the text. The shared ``train_FD001`` was re-exported (tabs, CRLF
  line ends, trailing zeros dropped) while NASA's files are space-separated; the numbers are
  the same and the checksum covers exactly them (``numbers_sha256``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

Checksum = Literal["bytes", "numbers"]


@dataclass(frozen=True)
class DataFile:
    """One file as a loader finds it (``name`` or ``name.gz``) and the SHA-256 of its content."""

    name: str
    sha256: str


@dataclass(frozen=True)
class DataSource:
    """A public data set: its files, what their checksums cover, and where to get them.

    ``file_urls`` are base URLs, each serving every file as ``<base><name>.gz`` (tried in
    order); ``archive_urls`` are zip archives holding the files by name, possibly inside a zip
    within the zip (tried in order).
    """

    name: str
    folder: str
    description: str
    files: tuple[DataFile, ...]
    checksum: Checksum
    file_urls: tuple[str, ...] = ()
    archive_urls: tuple[str, ...] = ()

    def content_sha256(self, content: bytes) -> str:
        """The checksum of one file's (decompressed) ``content``, as the table states it."""
        if self.checksum == "bytes":
            return hashlib.sha256(content).hexdigest()
        return numbers_sha256(content)


def numbers_sha256(content: bytes) -> str:
    """SHA-256 of a whitespace-separated table of numbers: ``ROWSxCOLS:`` then every value as
    little-endian float64, row by row. Spacing, line ends and ``1589.70`` vs ``1589.7`` do not
    change it; any different number does. Raises ValueError if ``content`` is not such a table.
    """
    rows = [line.split() for line in content.decode("ascii").splitlines() if line.strip()]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"rows of {len(widths)} different widths")
    values = np.asarray([[float(v) for v in row] for row in rows], dtype="<f8")
    digest = hashlib.sha256(f"{values.shape[0]}x{values.shape[1]}:".encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


MNIST = DataSource(
    name="mnist",
    folder="mnist",
    description="MNIST handwritten digits, IDX files (LeCun, Cortes, Burges; CC BY-SA 3.0)",
    files=(
        DataFile(
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        DataFile(
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        DataFile(
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        DataFile(
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    checksum="bytes",
    file_urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

TURBOFAN = DataSource(
    name="turbofan",
    folder="cmapss",
    description="NASA C-MAPSS turbofan degradation, sub-data set FD001 (public domain)",
    files=(
        DataFile(
            "train_FD001.txt",
            "f1c0cf5a21892291bede2af38a7239dfb90cb75280f6a571c6a44299c80857c3",
        ),
        DataFile(
            "test_FD001.txt",
            "3c26fc46311d69aee4566be9bc8eb272de9d83af40c46cdbdba39a73794db39d",
        ),
        DataFile(
            "RUL_FD001.txt",
            "71b76ce47f144cd86b59ac65d4a6415202367abab36973ec3df1d050be3136e2",
        ),
    ),
    checksum="numbers",
    archive_urls=(
        "https://data.nasa.gov/docs/legacy/CMAPSSData.zip",
        "https://phm-datasets.s3.amazonaws.com/NASA/"
        "6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip",
    ),
)

SOURCES: dict[str, DataSource] = {source.name: source for source in (MNIST, TURBOFAN)}
