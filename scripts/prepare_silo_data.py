"""Partition an example's data into one folder per silo, ready to upload to each silo's
datastore, plus the orchestrator's test set for the model store.

    python scripts/prepare_silo_data.py --manifest federation.json --example digits --out data/

writes ``data/silos/<silo>/`` (raw training rows of that silo) and ``data/orchestrator/test/``
(the prepared held-out test set), using exactly the partition the local federation uses for
the same job config and seed, and prints where each folder goes (``<prefix>/<silo>`` in the
silo's datastore, ``<prefix>/test`` in the orchestrator's). In a real federation each site
already holds its data; this stands in for that, for the sample examples.

With ``--upload --outputs outputs.json`` (``pulumi stack output --json``) it also uploads each
folder with your own credential (``DefaultAzureCredential``: ``az login`` is enough); the
stack must list you under ``fl-sandbox:dataUploaders`` for that silo (or ``global``), and give
you a route (docs/infrastructure.md, "Data seeding"). ``--only silo1,global`` uploads a subset:
each uploader may write its own silo's folder only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # runnable as `python scripts/prepare_silo_data.py`
    sys.path.insert(0, str(REPO_ROOT))

from fl_jobs.cli.cli_errors import (  # noqa: E402
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    OneLineArgumentParser,
    print_error,
    runtime_failure,
)
from fl_jobs.config import JobConfig, load_job_config  # noqa: E402
from fl_jobs.errors import FLJobError  # noqa: E402
from fl_jobs.run.manifest import FederationManifest, ManifestError  # noqa: E402
from fl_jobs.silo.data_upload import (  # noqa: E402
    DEFAULT_BLOB_ENDPOINT,
    TEST_PATH_PATTERN,
    Destination,
    UploadRefused,
    check_destinations,
    credential_client,
    load_destinations,
    test_path_allowed,
    upload_folder,
)

SILOS_DIR = "silos"
TEST_DIR = Path("orchestrator") / "test"


@dataclass(frozen=True)
class Upload:
    """One local folder and the datastore path it belongs at."""

    local: Path
    datastore: str
    path: str
    rows: int


def prepare_silo_data(
    manifest: FederationManifest, config: JobConfig, out: Path, *, data_prefix: str
) -> list[Upload]:
    """Write every silo's raw partition and the test set under ``out``; return the uploads.

    The k-th manifest silo gets the k-th partition of the local federation, so a pipeline over
    ``manifest`` trains on the same rows as ``python -m fl_jobs run`` with the same config.
    """
    from fl_jobs.core.silo_data import SiloArrays, write_silo_data
    from fl_jobs.local.prepare import prepare_job
    from fl_jobs.rounds.federation_size import sized_for

    config = sized_for(config, manifest)
    job = prepare_job(config)
    example, dataset = job.example, job.dataset
    prefix = data_prefix.strip("/")
    uploads: list[Upload] = []
    for silo, rows in zip(manifest.silos, job.partitions, strict=True):
        folder = out / SILOS_DIR / silo.name
        write_silo_data(
            folder,
            SiloArrays(
                X=dataset.X[rows],
                y=dataset.y[rows],
                task=example.task,
                meta={"example": example.name, "silo": silo.name},
            ),
        )
        uploads.append(Upload(folder, silo.datastore, f"{prefix}/{silo.name}", len(rows)))
    test_folder = out / TEST_DIR
    write_silo_data(
        test_folder,
        SiloArrays(
            X=dataset.test_X,
            y=dataset.test_y,
            task=example.task,
            meta={
                "example": example.name,
                "role": "orchestrator-test",
                "n_outputs": dataset.shape.n_outputs,
            },
        ),
    )
    uploads.append(
        Upload(test_folder, manifest.orchestrator.datastore, f"{prefix}/test", len(dataset.test_y))
    )
    return uploads


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 written; 1 failed (one line, traceback in a log); 2 bad input (one
    ``error: <what> - <fix>`` line, nothing written)."""
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="federation manifest JSON")
    parser.add_argument("--example", required=True, help="digits | mnist | turbofan | tabular")
    parser.add_argument("--config", type=Path, help="job YAML (partition, seed, data paths)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must be empty)")
    parser.add_argument(
        "--data-prefix", help="folder in every datastore (default fl-sandbox/<example>)"
    )
    parser.add_argument("--upload", action="store_true", help="upload with your credential")
    parser.add_argument(
        "--outputs", type=Path, help="`pulumi stack output --json` saved to a file (--upload)"
    )
    parser.add_argument(
        "--only", help="comma-separated silo names and/or 'global': what to upload (--upload)"
    )
    parser.add_argument(
        "--blob-endpoint",
        default=DEFAULT_BLOB_ENDPOINT,
        help="blob endpoint template with {account} (sovereign clouds)",
    )
    args = parser.parse_args(argv)
    try:
        manifest = FederationManifest.load(args.manifest)
        config = load_job_config(args.config, {"example": args.example})
        if args.out.exists() and not args.out.is_dir():
            raise FLJobError(f"--out {args.out} is a file", "choose a new --out folder")
        if args.out.is_dir() and any(args.out.iterdir()):
            raise FLJobError(f"{args.out} is not empty", "choose a new --out folder")
        prefix = args.data_prefix or f"fl-sandbox/{config.example.name}"
        destinations = _upload_plan(args, manifest)
        uploads = prepare_silo_data(manifest, config, args.out, data_prefix=prefix)
    except (FLJobError, ManifestError) as exc:
        print_error(str(exc))
        return EXIT_BAD_INPUT
    except Exception as exc:  # a failure nobody named: one line, the traceback in a log
        runtime_failure(exc, context="preparing the silo data failed")
    if destinations is None:
        print("upload each folder to its datastore path (or run again with --upload):")
        for upload in uploads:
            print(f"  {upload.local} ({upload.rows} rows) -> {upload.datastore}:{upload.path}/")
        return 0
    from azure.identity import DefaultAzureCredential

    only = _only(args.only, manifest)
    chosen = [u for u, key in zip(uploads, _keys(manifest), strict=True) if key in only]
    return upload_all(chosen, destinations, credential_client(DefaultAzureCredential()))


def _keys(manifest: FederationManifest) -> list[str]:
    """The ``dataUploaders`` key of each upload, in ``prepare_silo_data``'s order."""
    return [*(s.name for s in manifest.silos), "global"]


def _only(text: str | None, manifest: FederationManifest) -> set[str]:
    keys = _keys(manifest)
    if not text:
        return set(keys)
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    unknown = sorted(wanted - set(keys))
    if unknown:
        raise FLJobError(f"--only names {unknown[0]!r}", f"use some of: {', '.join(keys)}")
    return wanted


def _upload_plan(args: Any, manifest: FederationManifest) -> dict[str, Destination] | None:
    """Where uploads go, checked before anything is written (None without --upload)."""
    if not args.upload:
        if args.outputs or args.only:
            raise FLJobError("--outputs and --only go with --upload", "add --upload")
        return None
    if args.outputs is None:
        raise FLJobError(
            "--upload needs --outputs",
            "save the stack outputs with `pulumi stack output --json > outputs.json`",
        )
    only = _only(args.only, manifest)
    prefix = (args.data_prefix or "fl-sandbox/example").strip("/")
    if "global" in only and not test_path_allowed(f"{prefix}/test/x"):
        raise FLJobError(
            f"--data-prefix {prefix!r}: test-set uploaders may write only paths matching "
            f"{TEST_PATH_PATTERN!r} in the orchestrator's datastore",
            "use a prefix below fl-sandbox/ (the default), or leave global out of --only",
        )
    destinations = load_destinations(args.outputs, args.blob_endpoint)
    check_destinations(
        [*(s.datastore for s in manifest.silos), manifest.orchestrator.datastore], destinations
    )
    return destinations


def upload_all(
    uploads: list[Upload],
    destinations: dict[str, Destination],
    container_client: Callable[[Destination], Any],
) -> int:
    """Upload each folder; on a refusal, one line naming the datastore and what to check."""
    for upload in uploads:
        try:
            names = upload_folder(
                upload.local, upload.path, destinations[upload.datastore], container_client
            )
        except UploadRefused as exc:
            print_error(
                str(exc),
                "check that the stack lists you under fl-sandbox:dataUploaders for this "
                "datastore and that you upload from an admitted address or the hub network "
                "(docs/infrastructure.md, Data seeding); finished folders need no re-run",
            )
            return EXIT_FAILED
        print(f"uploaded {upload.local} ({len(names)} files) -> {upload.datastore}:{upload.path}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
