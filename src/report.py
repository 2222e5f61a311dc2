# src/report.py
"""Receivables report: revenue per customer, overdue invoices by age, and a summary.

Reads the customers and sales invoices of a Business-Central-style API (paged OData
collections) and its receivables snapshot (an export answered ``202 Accepted`` and polled),
then saves ``output/{org}-{env}-report_{UTC}.xlsx`` (sheets Summary, Customers, Overdue) and
``output/{org}-{env}-report-summary_{UTC}.json`` (a second run in the same minute gets
``_2``). Run: ``make run SCRIPT=report ORG=acme ENV=prod``; ``make demo`` runs it against the
local demo API.

Decisions (the README's "The demo" explains them for readers of the report):

- As-of date, base currency and exchange rates come from the snapshot, never the clock.
- Revenue = net amount of posted invoices (``Open``/``Paid``); drafts and canceled earn nothing.
- Currencies are never added as they stand: each invoice is converted at the snapshot's rate
  and rounded half up to the cent, and base-currency figures are sums of those.
- Overdue = ``Open``, money still owed, due before the as-of date; buckets by days past due
  ``0-30`` (1-30), ``31-60``, ``61-90``, ``90+``; the amount is the remaining one, tax included.
- Counts that differ from the snapshot's control totals stop the run (exit 4), nothing saved.
- The workbook is one to send as it is: each sheet opens with a heading (what it shows, the
  as-of date, the currency of its amounts), money is written as numbers shown ``#,##0.00``
  (the amounts are ``Decimal``), each table ends with a totals row of the columns that can be
  added up (base-currency amounts and counts, never amounts in mixed currencies), and Summary
  carries a native Excel chart of the receivables by age, stacked by invoice currency.
- Summary has one row per invoice currency, its amounts converted to the base currency
  invoice by invoice, so that its totals row is exactly the report's base-currency total;
  "Revenue in currency" keeps each currency's revenue in its own money.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from utils.api_factory import ApiManager, TxoRestAPI
from utils.exceptions import ApiOperationError, ValidationError
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

if TYPE_CHECKING:  # pandas loads only when the report is built, so --help starts fast
    import pandas as pd

    from utils._excel_writer import SheetLayout

logger = setup_logger()

CUSTOMERS_PATH = "customers"
INVOICES_PATH = "salesInvoices"
EXPORT_PATH = "exports"
SNAPSHOT_REQUEST = {"dataset": "receivablesSnapshot"}
POSTED = frozenset({"Open", "Paid"})
OPEN = "Open"
CENT = Decimal("0.01")
# (label, highest days overdue in the bucket); the last bucket has no upper limit.
AGEING_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-30", 30),
    ("31-60", 60),
    ("61-90", 90),
    ("90+", None),
)
TOP_CUSTOMERS = 5


@dataclass(frozen=True)
class Snapshot:
    """The API's receivables snapshot: what the figures are measured against."""

    as_of: date
    base_currency: str
    rates: Mapping[str, Decimal]
    customer_count: int
    invoice_count: int


@dataclass(frozen=True)
class Invoice:
    """One sales invoice with the figures the report needs, base-currency amounts included."""

    number: str
    customer_id: str
    customer_number: str
    customer_name: str
    currency: str
    status: str
    invoice_date: date
    due_date: date
    net: Decimal
    gross: Decimal
    remaining: Decimal
    net_base: Decimal
    remaining_base: Decimal

    @property
    def posted(self) -> bool:
        """True for invoices that count as revenue (``Open`` or ``Paid``)."""
        return self.status in POSTED

    def days_overdue(self, as_of: date) -> int:
        """Days past the due date on ``as_of`` for an open, unpaid invoice, else 0."""
        if self.status != OPEN or self.remaining <= 0 or self.due_date >= as_of:
            return 0
        return (as_of - self.due_date).days


def money(value: Any) -> Decimal:
    """Return an API amount (JSON number or string) as an exact ``Decimal``."""
    return Decimal(str(value))


def to_base(amount: Decimal, rate: Decimal) -> Decimal:
    """Convert ``amount`` at ``rate`` to the base currency, rounded half up to the cent."""
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def _total(values: Iterable[Decimal]) -> Decimal:
    """Exact sum of ``values`` (0 when empty)."""
    return sum(values, Decimal(0))


def ageing_bucket(days_overdue: int) -> str:
    """Return the ageing bucket label for ``days_overdue`` (at least 1)."""
    return next(label for label, limit in AGEING_BUCKETS if limit is None or days_overdue <= limit)


def parse_snapshot(body: Mapping[str, Any]) -> Snapshot:
    """Read the completed export job's body.

    Raises:
        ValidationError: The body lacks a field the report depends on.
    """
    try:
        rates = {r["currencyCode"]: money(r["rateToBase"]) for r in body["exchangeRates"]}
        totals = body["controlTotals"]
        return Snapshot(
            as_of=date.fromisoformat(body["asOfDate"]),
            base_currency=body["baseCurrencyCode"],
            rates=rates,
            customer_count=int(totals["customerCount"]),
            invoice_count=int(totals["invoiceCount"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValidationError(
            f"The receivables snapshot is incomplete or malformed ({err!r}).",
            "Check that api-base-url points at the company's API and that the export "
            "returns asOfDate, baseCurrencyCode, exchangeRates and controlTotals.",
        ) from err


def parse_invoice(record: Mapping[str, Any], snapshot: Snapshot) -> Invoice:
    """Turn one API record into an :class:`Invoice` with base-currency amounts.

    Raises:
        ValidationError: A field is missing or malformed, or the snapshot has no exchange
            rate for the invoice's currency.
    """
    try:
        currency = record["currencyCode"]
        rate = snapshot.rates[currency]
        net, remaining = money(record["totalAmountExcludingTax"]), money(record["remainingAmount"])
        return Invoice(
            number=record["number"],
            customer_id=record["customerId"],
            customer_number=record["customerNumber"],
            customer_name=record["customerName"],
            currency=currency,
            status=record["status"],
            invoice_date=date.fromisoformat(record["invoiceDate"]),
            due_date=date.fromisoformat(record["dueDate"]),
            net=net,
            gross=money(record["totalAmountIncludingTax"]),
            remaining=remaining,
            net_base=to_base(net, rate),
            remaining_base=to_base(remaining, rate),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as err:
        name = record["number"] if isinstance(record, Mapping) and "number" in record else "?"
        raise ValidationError(
            f"Invoice {name} cannot be read ({type(err).__name__}: {err}).",
            "Check that the API returns salesInvoices with currencyCode, dates and amounts, "
            "and that the snapshot has an exchange rate for every invoice currency.",
        ) from err


def fetch_collection(api: TxoRestAPI, path: str, page_size: int) -> list[dict[str, Any]]:
    """Read every record of an OData collection, page by page, logging the progress."""
    records: list[dict[str, Any]] = []
    pages = 0
    for page in api.iter_pages(path, params={"$top": page_size}):
        pages += 1
        records.extend(page)
        logger.debug("%s: page %d, %d records so far", path, pages, len(records))
    logger.info("Read %d %s in %d page(s)", len(records), path, pages)
    return records


def reconcile(snapshot: Snapshot, customers: int, invoices: int, url: str) -> None:
    """Check the records read against the snapshot's control totals.

    Raises:
        ApiOperationError: A count differs: paging lost or repeated records.
    """
    if (customers, invoices) == (snapshot.customer_count, snapshot.invoice_count):
        logger.info("Control totals match: %d customers, %d invoices", customers, invoices)
        return
    raise ApiOperationError(
        f"Read {customers} customers and {invoices} invoices, but the API's snapshot counts "
        f"{snapshot.customer_count} and {snapshot.invoice_count}.",
        "Run the report again; if the counts still differ, the API's paging is losing or "
        "repeating records: report it to the API's owner.",
        url=url,
        method="GET",
    )


def customer_rows(
    customers: Iterable[Mapping[str, Any]], invoices: list[Invoice], snapshot: Snapshot
) -> pd.DataFrame:
    """One row per customer and currency (customers without invoices too), by revenue."""
    import pandas as pd

    base, as_of = snapshot.base_currency, snapshot.as_of
    groups: dict[tuple[str, str], list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        groups[(invoice.customer_id, invoice.currency)].append(invoice)
    known = {c["id"]: c for c in customers}
    invoiced = {customer_id for customer_id, _ in groups}
    for listed in known.values():
        if listed["id"] not in invoiced:
            groups[(listed["id"], listed["currencyCode"])] = []
    rows = []
    for (customer_id, currency), items in groups.items():
        native = currency_figures(items, as_of, base=False)
        converted = currency_figures(items, as_of, base=True)
        found = known.get(customer_id)
        rows.append(
            {
                "Customer No.": found["number"] if found else items[0].customer_number,
                "Customer": found["displayName"] if found else items[0].customer_name,
                "Country": found["country"] if found else "",
                "Currency": currency,
                "Invoices": native["invoices"],
                "Revenue": native["revenue"],
                f"Revenue ({base})": converted["revenue"],
                "Open balance": native["open_balance"],
                "Overdue invoices": native["overdue_invoices"],
                "Overdue": native["overdue"],
                f"Overdue ({base})": converted["overdue"],
                "Oldest overdue (days)": max((i.days_overdue(as_of) for i in items), default=0),
            }
        )
    return pd.DataFrame(rows).sort_values(
        [f"Revenue ({base})", "Customer No."], ascending=[False, True], ignore_index=True
    )


def overdue_rows(invoices: list[Invoice], snapshot: Snapshot) -> pd.DataFrame:
    """One row per overdue invoice, most overdue first."""
    import pandas as pd

    base = snapshot.base_currency
    rows = [
        {
            "Invoice No.": i.number,
            "Customer No.": i.customer_number,
            "Customer": i.customer_name,
            "Currency": i.currency,
            "Bucket": ageing_bucket(i.days_overdue(snapshot.as_of)),
            "Invoice date": pd.Timestamp(i.invoice_date),
            "Due date": pd.Timestamp(i.due_date),
            "Days overdue": i.days_overdue(snapshot.as_of),
            "Amount": i.gross,
            "Remaining": i.remaining,
            f"Remaining ({base})": i.remaining_base,
        }
        for i in invoices
        if i.days_overdue(snapshot.as_of)
    ]
    if not rows:
        return pd.DataFrame(columns=overdue_columns(base))
    frame = pd.DataFrame(rows)
    return frame.sort_values(
        ["Days overdue", "Invoice No."], ascending=[False, True], ignore_index=True
    )


def overdue_columns(base: str) -> list[str]:
    """The Overdue sheet's columns (also when no invoice is overdue)."""
    return [
        *("Invoice No.", "Customer No.", "Customer", "Currency", "Bucket", "Invoice date"),
        *("Due date", "Days overdue", "Amount", "Remaining", f"Remaining ({base})"),
    ]


def currency_figures(items: list[Invoice], as_of: date, base: bool) -> dict[str, Any]:
    """Revenue, open balance and overdue amounts of ``items``, native or in base currency."""
    posted = [i for i in items if i.posted]
    overdue = [i for i in posted if i.days_overdue(as_of)]
    net = (lambda i: i.net_base) if base else (lambda i: i.net)
    remaining = (lambda i: i.remaining_base) if base else (lambda i: i.remaining)
    figures: dict[str, Any] = {
        "customers": len({i.customer_id for i in posted}),
        "invoices": len(posted),
        "revenue": _total(net(i) for i in posted),
        "open_balance": _total(remaining(i) for i in posted),
        "not_yet_due": _total(remaining(i) for i in posted if not i.days_overdue(as_of)),
        "overdue_invoices": len(overdue),
        "overdue": _total(remaining(i) for i in overdue),
        "overdue_by_bucket": {
            label: {"invoices": 0, "amount": Decimal(0)} for label, _ in AGEING_BUCKETS
        },
    }
    for invoice in overdue:
        bucket = figures["overdue_by_bucket"][ageing_bucket(invoice.days_overdue(as_of))]
        bucket["invoices"] += 1
        bucket["amount"] += remaining(invoice)
    return figures


def summary_rows(invoices: list[Invoice], snapshot: Snapshot) -> pd.DataFrame:
    """One row per invoice currency, its amounts in the base currency (and its revenue in
    its own); the totals row Excel adds under it is the base-currency total."""
    import pandas as pd

    base = snapshot.base_currency
    currencies = sorted({i.currency for i in invoices if i.posted})
    rows = []
    for currency in currencies:
        items = [i for i in invoices if i.currency == currency]
        native = currency_figures(items, snapshot.as_of, base=False)
        figures = currency_figures(items, snapshot.as_of, base=True)
        row: dict[str, Any] = {
            "Currency": currency,
            f"Rate to {base}": snapshot.rates[currency],
            "Customers": figures["customers"],
            "Invoices": figures["invoices"],
            "Revenue in currency": native["revenue"],
            "Revenue": figures["revenue"],
            "Open balance": figures["open_balance"],
            "Not yet due": figures["not_yet_due"],
        }
        for bucket, amounts in figures["overdue_by_bucket"].items():
            row[f"Overdue {bucket}"] = amounts["amount"]
        row["Overdue total"] = figures["overdue"]
        rows.append(row)
    return pd.DataFrame(rows)


SUMMARY_TOTALS = [
    "Invoices",
    "Revenue",
    "Open balance",
    "Not yet due",
    *(f"Overdue {label}" for label, _ in AGEING_BUCKETS),
    "Overdue total",
]
CHART_SIZE = {"x_scale": 1.6, "y_scale": 1.25}
CHART_GAP_ROWS = 2


def workbook_layout(config: Mapping[str, Any], snapshot: Snapshot) -> dict[str, Any]:
    """The ``save()`` options that make the workbook one to send: headings, formats, totals
    and the Summary chart."""
    base = snapshot.base_currency
    as_of = f"As of {snapshot.as_of:%d %B %Y}".replace(" 0", " ")
    made = f"generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    who = f"{config['_org_id']} / {config['_env_type']}"
    return {
        "title": {
            "Summary": [
                f"Receivables summary: {who}",
                f"{as_of} · amounts in {base}, converted invoice by invoice at the "
                f"snapshot's rates (Revenue in currency excepted) · {made}",
            ],
            "Customers": [
                f"Revenue and overdue per customer: {who}",
                f"{as_of} · amounts in the customer's currency; the ({base}) columns "
                f"converted at the snapshot's rates · {made}",
            ],
            "Overdue": [
                f"Overdue invoices: {who}",
                f"{as_of} · most overdue first · Amount and Remaining in the invoice's "
                f"currency · {made}",
            ],
        },
        "number_formats": {f"Rate to {base}": "0.0000"},
        "totals": {
            "Summary": SUMMARY_TOTALS,
            "Customers": ["Invoices", f"Revenue ({base})", "Overdue invoices", f"Overdue ({base})"],
            "Overdue": [f"Remaining ({base})"],
        },
        "charts": functools.partial(add_ageing_chart, base=base),
    }


def add_ageing_chart(book: Any, layouts: Mapping[str, SheetLayout], base: str) -> None:
    """A stacked column chart on Summary: receivables by age (not yet due, then each overdue
    bucket), one series per invoice currency, in the base currency."""
    summary = layouts["Summary"]
    first, last = "Not yet due", f"Overdue {AGEING_BUCKETS[-1][0]}"
    chart = book.add_chart({"type": "column", "subtype": "stacked"})
    currency = summary.column("Currency")
    for row in range(summary.first_row, summary.last_row + 1):
        chart.add_series(
            {
                "name": [summary.name, row, currency],
                "categories": summary.header_cells(first, last),
                "values": summary.row_cells(row, first, last),
                "gap": 60,
            }
        )
    chart.set_title({"name": f"Receivables by age ({base})", "name_font": {"size": 12}})
    chart.set_y_axis({"num_format": "#,##0", "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    below = (summary.totals_row or summary.last_row) + CHART_GAP_ROWS
    summary.worksheet.insert_chart(below, 0, chart, CHART_SIZE)


def summary_document(
    config: Mapping[str, Any],
    snapshot: Snapshot,
    invoices: list[Invoice],
    customers: pd.DataFrame,
    customer_count: int,
) -> dict[str, Any]:
    """The JSON summary: the headline figures, exact to the cent (``Decimal``)."""
    as_of = snapshot.as_of
    base = snapshot.base_currency
    by_currency = {
        c: currency_figures([i for i in invoices if i.currency == c], as_of, base=False)
        for c in sorted({i.currency for i in invoices if i.posted})
    }
    totals = currency_figures(invoices, as_of, base=True)
    statuses = Counter(i.status for i in invoices)
    top = customers.head(TOP_CUSTOMERS)
    return {
        "report": "receivables",
        "org_id": config["_org_id"],
        "env_type": config["_env_type"],
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "as_of_date": as_of.isoformat(),
        "base_currency": base,
        "exchange_rates": dict(sorted(snapshot.rates.items())),
        "customers": customer_count,
        "invoices": {"read": len(invoices), "by_status": dict(sorted(statuses.items()))},
        "by_currency": by_currency,
        "total_in_base_currency": totals,
        "top_customers": [
            {
                "number": row["Customer No."],
                "name": row["Customer"],
                "currency": row["Currency"],
                "revenue_in_base_currency": row[f"Revenue ({base})"],
            }
            for row in top.to_dict("records")
        ],
    }


def main() -> None:
    """Fetch, compute and save the receivables report for one organisation and environment."""
    config = parse_args_and_load_config("Receivables report: revenue, overdue ageing, summary")
    page_size = config["script-behavior"]["batch-handling"]["read-batch-size"]
    with ApiManager(config) as manager:
        api = manager.get_rest_api()
        logger.info("Requesting the receivables snapshot (an asynchronous export)")
        snapshot = parse_snapshot(api.post(EXPORT_PATH, data=SNAPSHOT_REQUEST))
        logger.info(
            "Snapshot as of %s, base currency %s, %d exchange rates",
            snapshot.as_of,
            snapshot.base_currency,
            len(snapshot.rates),
        )
        customers = fetch_collection(api, CUSTOMERS_PATH, page_size)
        records = fetch_collection(api, INVOICES_PATH, page_size)
    reconcile(snapshot, len(customers), len(records), config["global"]["api-base-url"])
    invoices = [parse_invoice(record, snapshot) for record in records]

    customer_sheet = customer_rows(customers, invoices, snapshot)
    overdue_sheet = overdue_rows(invoices, snapshot)
    sheets = {
        "Summary": summary_rows(invoices, snapshot),
        "Customers": customer_sheet,
        "Overdue": overdue_sheet,
    }
    summary = summary_document(config, snapshot, invoices, customer_sheet, len(customers))
    handler = TxoDataHandler()
    workbook = handler.save(
        sheets,
        "output",
        timestamped_filename(config, "report", "xlsx"),
        **workbook_layout(config, snapshot),
    )
    summary["workbook"] = workbook.name
    handler.save(summary, "output", timestamped_filename(config, "report-summary", "json"))
    totals = summary["total_in_base_currency"]
    logger.info(
        "Revenue %s %s in %d currencies; %d invoices overdue by %s %s in total",
        f"{totals['revenue']:,}",
        snapshot.base_currency,
        len(summary["by_currency"]),
        totals["overdue_invoices"],
        f"{totals['overdue']:,}",
        snapshot.base_currency,
    )


if __name__ == "__main__":
    run_script(main)
