"""Azure ML step (silo, once): the silo's own preparation of its raw data.

Runs on the silo's compute, reads the raw folder from the silo datastore (or, for an
on-premises silo with a data volume, from that volume's mount in the pod) and writes the
prepared folder to the silo datastore: e.g. per-silo standardisation uses only this silo's
statistics, exactly as each local worker prepares its own data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fl_jobs.aml.steps.common import example_for, load_config
from fl_jobs.aml.steps.entry import step


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--silo", required=True, help="silo name (recorded in the meta)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--raw-data", type=Path, help="raw silo data folder (mounted datastore)")
    source.add_argument(
        "--raw-path", type=Path, help="raw silo data folder on the silo's own mounted volume"
    )
    parser.add_argument("--out", type=Path, required=True, help="prepared data folder to write")


@step("Prepare one silo's raw data for training.", arguments)
def main(args: argparse.Namespace) -> None:
    from fl_jobs.core.silo_data import SiloArrays, read_silo_data, write_silo_data

    config = load_config(args.config)
    raw = read_silo_data(args.raw_data if args.raw_data is not None else args.raw_path)
    example = example_for(config, raw.task)
    prepared = SiloArrays(
        X=example.prepare(raw.X),
        y=raw.y,
        task=raw.task,
        meta={**raw.meta, "silo": args.silo, "prepared": True},
    )
    write_silo_data(args.out, prepared)


if __name__ == "__main__":
    sys.exit(main())
