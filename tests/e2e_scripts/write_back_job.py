# src/write_back_job.py
"""Write-back job: PATCH devices with their ETags, save the report, exit 6 unless all written."""

from __future__ import annotations

import argparse

from utils.api_factory import WriteRequest, create_rest_api
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

REPORT = ("output", "writes.csv")


def options(parser: argparse.ArgumentParser) -> None:
    """The script's own options."""
    parser.add_argument("--count", type=int, default=200, help="devices to patch")
    parser.add_argument("--batch", action="store_true", help="send $batch envelopes")


def main() -> None:
    """PATCH devices 0..count-1 to the stable ring, each with its ETag."""
    config = parse_args_and_load_config("Write-back job", arguments=options)
    args = config["_args"]
    items = [
        WriteRequest(f"devices/{n}", {"ring": "stable"}, key=f"D{n:04d}", etag=f'W/"{n}"')
        for n in range(args.count)
    ]
    with create_rest_api(config) as api:
        report = api.write_many("PATCH", items, batch=args.batch, report=REPORT)
    logger.info("Write-back done: %s", dict(report.counts))
    report.raise_for_failures()


if __name__ == "__main__":
    run_script(main)
