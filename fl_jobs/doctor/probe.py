"""The probe one actor runs: try its storage movements, print the table, exit 1 on a difference.

    python -m fl_jobs.doctor.probe --manifest federation.json --outputs outputs.json \
        --actor silo:hospital-a [--identity-client-id <id>]

Inside the doctor's Azure ML job it runs on the actor's compute with that compute's managed
identity (``--identity-client-id``); anywhere else with ``DefaultAzureCredential``, e.g. a
silo's data custodian checking its own seeding route and role (``--actor uploader:<silo>``:
it may write its silo's data container and nothing else). Exit codes:
0 every movement as the plan expects; 1 a difference (each named on one line); 2 bad input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from fl_jobs.cli.cli_errors import EXIT_BAD_INPUT, EXIT_FAILED, OneLineArgumentParser, print_error
from fl_jobs.doctor.expectations import actors, datastores_of, expectations, uploader_actors
from fl_jobs.doctor.report import table
from fl_jobs.doctor.storage import differences, probe
from fl_jobs.errors import FLJobError
from fl_jobs.run.manifest import FederationManifest, ManifestError
from fl_jobs.silo.data_upload import Destination, check_destinations, load_destinations


def run_probe(
    manifest: FederationManifest,
    actor: str,
    destinations: dict[str, Destination],
    container_client: Callable[[Destination], Any],
    console: Console,
    json_out: Path | None = None,
) -> int:
    """Probe ``actor``'s movements; 0 when all are as expected, else 1."""
    results = probe(expectations(manifest, actor), destinations, container_client)
    console.print(table(results))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(
            json.dumps(
                [
                    {
                        "actor": r.expectation.actor,
                        "movement": r.expectation.movement,
                        "datastore": r.expectation.datastore,
                        "operation": r.expectation.operation,
                        "expected": "allowed" if r.expectation.allowed else "denied",
                        "observed": r.observed,
                        "detail": r.detail,
                        "ok": r.ok,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    wrong = differences(results)
    for r in wrong:
        print(f"doctor: difference: {r.line()}", file=sys.stderr)
    return EXIT_FAILED if wrong else 0


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--outputs", type=Path, required=True, help="stack outputs JSON")
    parser.add_argument("--actor", required=True, help="silo:<name> or orchestrator")
    parser.add_argument("--identity-client-id", help="the compute's managed identity")
    parser.add_argument("--blob-endpoint", default="https://{account}.blob.core.windows.net")
    parser.add_argument("--json-out", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    try:
        manifest = FederationManifest.load(args.manifest)
        known = [*actors(manifest), *uploader_actors(manifest)]
        if args.actor not in known:
            raise FLJobError(
                f"--actor {args.actor!r} is not in the manifest", f"use one of: {', '.join(known)}"
            )
        destinations = load_destinations(args.outputs, args.blob_endpoint)
        check_destinations(datastores_of(manifest), destinations)
    except (FLJobError, ManifestError) as exc:
        print_error(str(exc))
        return EXIT_BAD_INPUT
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
    from azure.storage.blob import ContainerClient

    credential = (
        ManagedIdentityCredential(client_id=args.identity_client_id)
        if args.identity_client_id
        else DefaultAzureCredential()
    )

    def client(d: Destination) -> ContainerClient:
        return ContainerClient(d.account_url, d.container, credential=credential)

    return run_probe(manifest, args.actor, destinations, client, Console(width=160), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
