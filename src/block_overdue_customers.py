# src/block_overdue_customers.py
"""Block customers whose invoices are long overdue, with ETags, and account for every write.

Reads the open sales invoices, finds the customers with one more than ``--days-overdue`` days
past due (as of ``--as-of``, default today), reads each of them again for its current ETag and
PATCHes ``{"blocked": "Invoice"}`` with ``If-Match``: a customer someone else changed since it
was read is refused (412), never overwritten. Every customer's outcome is saved in a report in
``output/``; when any was not written the run ends with exit code 6 and names the report, and
``--retry-failed REPORT`` blocks only the customers that report lists as failed or not sent::

    make run SCRIPT=block_overdue_customers ORG=demo ENV=test
    make run SCRIPT=block_overdue_customers ORG=demo ENV=test \\
        ARGS="--retry-failed demo-test-blocked-customers_2026-01-05T0712Z.csv"

Add ``--batch`` to send the PATCHes in OData ``$batch`` envelopes, ``--dry-run`` to send none.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from utils.api_factory import ApiManager, TxoRestAPI, WriteRequest, load_write_report
from utils.load_n_save import timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

BLOCKED = "Invoice"  # Business Central's customer blocking: " ", "Ship", "Invoice" or "All"
DEFAULT_DAYS_OVERDUE = 60
REPORT_NAME = "blocked-customers"
RETRY_REPORT_NAME = "blocked-customers-retry"


def options(parser: argparse.ArgumentParser) -> None:
    """Add the script's own options."""
    parser.add_argument(
        "--days-overdue",
        type=int,
        default=DEFAULT_DAYS_OVERDUE,
        help=f"block customers with an invoice more than this many days past due "
        f"(default {DEFAULT_DAYS_OVERDUE})",
    )
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the day overdue is measured on (default: today, UTC)",
    )
    parser.add_argument(
        "--retry-failed",
        metavar="REPORT",
        help="a report in output/ from an earlier run: block only its failed and not-sent "
        "customers",
    )
    parser.add_argument("--batch", action="store_true", help="send $batch envelopes")


def overdue_customer_paths(api: TxoRestAPI, as_of: dt.date, days: int) -> list[str]:
    """The paths of the customers with an open invoice due before ``as_of - days``."""
    cutoff = as_of - dt.timedelta(days=days)
    invoices = api.get_all(
        "salesInvoices",
        {
            "$filter": f"status eq 'Open' and dueDate lt {cutoff.isoformat()}",
            "$select": "customerId,dueDate,status,remainingAmount",
        },
    )
    # Checked again here, so an API that ignores $filter (the demo does) gives the same answer.
    ids = {
        i["customerId"]
        for i in invoices
        if i["status"] == "Open"
        and i["remainingAmount"] > 0
        and dt.date.fromisoformat(i["dueDate"]) < cutoff
    }
    logger.info("%d customers have an invoice due before %s", len(ids), cutoff)
    return [f"customers({customer_id})" for customer_id in sorted(ids)]


def paths_to_retry(report_name: str) -> list[str]:
    """The paths of the customers an earlier report lists as failed or not sent."""
    previous = load_write_report("output", report_name)
    retry = previous.failed + previous.not_sent
    logger.info(
        "Retrying %d of the %d customers in %s: %s",
        len(retry),
        len(previous),
        report_name,
        ", ".join(r.key for r in retry) or "none",
    )
    return [r.path for r in retry]


def block_requests(customers: list[tuple[str, dict[str, Any]]]) -> list[WriteRequest]:
    """One PATCH per customer not yet blocked, with the ETag it was read with, by number."""
    return [
        WriteRequest(path, {"blocked": BLOCKED}, key=record["number"], etag=record["@odata.etag"])
        for path, record in sorted(customers, key=lambda pair: pair[1]["number"])
        if record["blocked"] != BLOCKED
    ]


def main() -> None:
    """Find the overdue customers (or an earlier run's failures), block them, report each."""
    config = parse_args_and_load_config("Block customers with overdue invoices", arguments=options)
    args = config["_args"]
    as_of = args.as_of or dt.datetime.now(dt.timezone.utc).date()
    name = RETRY_REPORT_NAME if args.retry_failed else REPORT_NAME
    if config["_dry_run"]:  # a report of what would be written, never mistaken for a real one
        name += "-dry-run"
    report_file = timestamped_filename(config, name, "csv")
    with ApiManager(config) as manager:
        api = manager.get_rest_api()
        if args.retry_failed:
            paths = paths_to_retry(args.retry_failed)
        else:
            paths = overdue_customer_paths(api, as_of, args.days_overdue)
        # Read each customer again right before writing: its ETag is what If-Match sends.
        customers = list(zip(paths, api.get_many(paths), strict=True))
        items = block_requests(customers)
        logger.info(
            "Blocking %d customers (%d already blocked)", len(items), len(paths) - len(items)
        )
        report = api.write_many("PATCH", items, batch=args.batch, report=("output", report_file))
    logger.info("Blocked: %s", ", ".join(f"{n} {s}" for s, n in report.counts.items()) or "none")
    if report.failed or report.not_sent:
        logger.info(
            "Re-run only those: make run SCRIPT=block_overdue_customers ORG=%s ENV=%s "
            'ARGS="--retry-failed %s"',
            config["_org_id"],
            config["_env_type"],
            report_file,
        )
    report.raise_for_failures()


if __name__ == "__main__":
    run_script(main)
