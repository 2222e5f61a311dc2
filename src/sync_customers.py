# src/sync_customers.py
"""Incremental customer sync: each run fetches only the customers changed since the last run.

The watermark pattern, for APIs without delta queries: the state keeps the newest
``lastModifiedDateTime`` seen so far; the next run asks for
``$filter=lastModifiedDateTime gt <watermark minus an overlap>``, saves what came, and moves
the watermark to the newest record it saved. The first run (and ``--full-refresh``) fetches
everything. The overlap re-reads the last few minutes, so a record written with an earlier
timestamp but committed after the last run still arrives; the re-read records are the same
customers again, so consumers upsert by ``id``.

The watermark is taken from the records' own timestamps (the server's clock), never from this
machine's clock, and it only moves when the run succeeds: ``run_script`` commits the state
after ``main()`` returns, never after an error, a signal or a ``--dry-run``.

Run: ``make run SCRIPT=sync_customers ORG=demo ENV=test`` (the demo API answers the filter);
``ARGS='--overlap-minutes 60'`` widens the overlap, ``ARGS=--full-refresh`` starts over.
Output: ``output/{org}-{env}-customers-changed_{UTC}.csv`` when anything changed.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from typing import Any

from utils.api_factory import ApiManager
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script
from utils.state import load_state

logger = setup_logger()

CUSTOMERS_PATH = "customers"
MODIFIED_FIELD = "lastModifiedDateTime"
WATERMARK_KEY = "customers_watermark"
DEFAULT_OVERLAP_MINUTES = 5


def add_options(parser: argparse.ArgumentParser) -> None:
    """The script's own option: how far before the watermark to start reading again."""
    parser.add_argument(
        "--overlap-minutes",
        type=float,
        default=DEFAULT_OVERLAP_MINUTES,
        help=f"re-read this many minutes before the watermark (default {DEFAULT_OVERLAP_MINUTES})",
    )


def parse_utc(text: str) -> datetime:
    """A UTC timestamp as the API writes it (``2025-06-09T10:45:00.000Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def odata_utc(moment: datetime) -> str:
    """``moment`` as an OData DateTimeOffset literal in UTC, milliseconds like the data."""
    stamp = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def changed_filter(watermark: str | None, overlap: timedelta) -> dict[str, str] | None:
    """The query for records changed after ``watermark`` minus ``overlap`` (None: all)."""
    if watermark is None:
        return None
    since = parse_utc(watermark) - overlap
    return {"$filter": f"{MODIFIED_FIELD} gt {odata_utc(since)}"}


def newest(records: list[dict[str, Any]], watermark: str | None) -> str | None:
    """The later of ``watermark`` and the newest ``lastModifiedDateTime`` in ``records``."""
    stamps = [parse_utc(r[MODIFIED_FIELD]) for r in records if r.get(MODIFIED_FIELD)]
    if watermark is not None:
        stamps.append(parse_utc(watermark))
    return odata_utc(max(stamps)) if stamps else None


def main() -> None:
    """Fetch the customers changed since the watermark, save them, move the watermark."""
    config = parse_args_and_load_config("Incremental customer sync", arguments=add_options)
    state = load_state(config)
    watermark = state.get(WATERMARK_KEY)
    overlap = timedelta(minutes=config["_args"].overlap_minutes)
    params = changed_filter(watermark, overlap)
    if params is None:
        logger.info("No watermark yet: fetching every customer")
    else:
        logger.info("Watermark %s: fetching customers where %s", watermark, params["$filter"])
    with ApiManager(config) as manager:
        customers = manager.get_rest_api().get_all(CUSTOMERS_PATH, params=params)
    logger.info("Customers fetched: %d", len(customers))
    if customers:
        TxoDataHandler().save(
            customers, "output", timestamped_filename(config, "customers-changed", "csv")
        )
    moved = newest(customers, watermark)
    if moved is not None and moved != watermark:
        state.set(WATERMARK_KEY, moved)  # committed once main() returns normally
        logger.info("Watermark moves to %s when the run succeeds", moved)
    else:
        logger.info("Nothing newer than the watermark: it stays at %s", watermark)


if __name__ == "__main__":
    run_script(main)
