"""Upload prepared silo data and the test set into their datastores, as the person running it.

The sandbox grants each ``dataUploaders`` entry Storage Blob Data Contributor on one silo's data
container (or the test-set paths of ``global``); this uploads with that person's own token
(``DefaultAzureCredential``: Azure CLI login, environment, managed identity), never an account
key: shared keys are off on every account. Where a datastore lives (account and container)
comes from the stack's ``datastores`` output (``pulumi stack output --json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fl_jobs.errors import FLJobError

DEFAULT_BLOB_ENDPOINT = "https://{account}.blob.core.windows.net"
TEST_PATH_PATTERN = "fl-sandbox/*/test/*"
"""Blob paths in ``global`` a test-set uploader may write (its role assignment's condition,
``StringLike``: ``*`` matches any characters, ``/`` included): the ``test`` folder under any
data prefix below ``fl-sandbox/`` (the default prefix is ``fl-sandbox/<example>``)."""


def test_path_allowed(path: str) -> bool:
    """Whether a blob path in ``global`` is one a test-set uploader may write."""
    from fnmatch import fnmatchcase

    return fnmatchcase(path, TEST_PATH_PATTERN)


@dataclass(frozen=True)
class Destination:
    """Where a datastore's blobs live."""

    datastore: str
    account_url: str
    container: str


class UploadRefused(Exception):
    """Storage refused an upload (no role, or no network route)."""

    def __init__(self, datastore: str, path: str, status: int | None, reason: str) -> None:
        super().__init__(f"uploading to {datastore}:{path} was refused ({status}: {reason})")
        self.datastore, self.path, self.status = datastore, path, status


def load_destinations(
    outputs_file: Path, endpoint: str = DEFAULT_BLOB_ENDPOINT
) -> dict[str, Destination]:
    """Datastore name -> destination, from ``pulumi stack output --json`` saved to a file."""
    try:
        outputs = json.loads(outputs_file.read_text())
    except (OSError, ValueError) as exc:
        raise FLJobError(
            f"cannot read stack outputs {outputs_file}: {exc}",
            "save them with `pulumi stack output --json > outputs.json`",
        ) from None
    stores = outputs.get("datastores") if isinstance(outputs, Mapping) else None
    if not isinstance(stores, Mapping) or not stores:
        raise FLJobError(
            f"{outputs_file} has no 'datastores' output",
            "deploy with this version of fl-sandbox and save `pulumi stack output --json`",
        )
    if "{account}" not in endpoint:
        raise FLJobError(
            f"--blob-endpoint {endpoint!r} has no {{account}}", "e.g. " + DEFAULT_BLOB_ENDPOINT
        )
    found: dict[str, Destination] = {}
    for name, where in stores.items():
        if not isinstance(where, Mapping) or not where.get("account") or not where.get("container"):
            raise FLJobError(
                f"datastores.{name} in {outputs_file} lacks account or container",
                "re-export the stack outputs",
            )
        found[str(name)] = Destination(
            str(name),
            endpoint.format(account=where["account"]).rstrip("/"),
            str(where["container"]),
        )
    return found


def check_destinations(datastores: Iterable[str], destinations: Mapping[str, Destination]) -> None:
    """Every datastore the uploads need is known, before anything is uploaded."""
    for name in datastores:
        if name not in destinations:
            raise FLJobError(
                f"datastore {name!r} of the manifest is not in the stack outputs' datastores "
                f"({', '.join(sorted(destinations))})",
                "use the manifest and the outputs of the same stack",
            )


def upload_folder(
    local: Path,
    path: str,
    destination: Destination,
    container_client: Callable[[Destination], Any],
) -> list[str]:
    """Upload every file under ``local`` to ``<path>/<relative name>``; return the blob names.
    Overwrites: re-running after a partial upload finishes it."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    client = container_client(destination)
    names: list[str] = []
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        name = f"{path.strip('/')}/{file.relative_to(local).as_posix()}"
        try:
            with file.open("rb") as data:
                client.upload_blob(name, data, overwrite=True)
        except HttpResponseError as exc:
            raise UploadRefused(
                destination.datastore,
                name,
                exc.status_code,
                exc.reason or str(getattr(exc, "error_code", None)),
            ) from None
        except ServiceRequestError as exc:
            raise UploadRefused(destination.datastore, name, None, f"unreachable: {exc}") from None
        names.append(name)
    return names


def credential_client(credential: Any, **client_kwargs: Any) -> Callable[[Destination], Any]:
    """Container clients that all use one token credential (the uploader's)."""
    from azure.storage.blob import ContainerClient

    def make(destination: Destination) -> Any:
        return ContainerClient(
            destination.account_url, destination.container, credential=credential, **client_kwargs
        )

    return make
