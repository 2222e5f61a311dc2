"""src/report.py end to end against the demo API on a real WireMock, figures checked by hand.

The expected figures are computed here, in plain Python, straight from the demo API's files in
``mock-api/`` (not with the report's code): revenue per currency and per customer, the
conversion to the base currency invoice by invoice, the overdue invoices and their ageing
buckets. The server's request journal proves the 429 retry, the 202 polling and every page.
The workbook is read back with openpyxl as Excel would show it: the headings, the number
formats of the money columns, the totals rows, and the chart on Summary (parsed from the
xlsx's own XML, since openpyxl does not load charts it did not write).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import range_boundaries

from tests.support_demo import (
    MOCK_API,
    PROJECT_ROOT,
    demo_api,
    make_demo_project,
    run_demo_script,
)
from tools.wiremock_server import WireMock

__all__ = ["demo_api"]  # the module's WireMock fixture, imported for pytest to find

pytestmark = pytest.mark.integration

COMPANY_PATH = "/api/v2.0/companies(8f2d1c3a-5b7e-4c9d-a1f0-3e6b2d4c5a71)"
JOB_PATH = f"{COMPANY_PATH}/exports(3c9e7b21-6a4f-4d8e-9b0c-5f1a2e7d4c63)"
CENT = Decimal("0.01")
BUCKETS = ("0-30", "31-60", "61-90", "90+")
HEADER_ROW = 4  # the table's header row (1-based): under two heading lines and an empty row
MONEY = "#,##0.00"
TOTAL = "Total"


# -- the expected figures, from the mapping files alone -------------------------------------
def _load(name: str) -> Any:
    return json.loads((MOCK_API / name).read_text(encoding="utf-8"), parse_float=Decimal)


def _records(collection: str) -> list[dict[str, Any]]:
    pages = sorted(MOCK_API.glob(f"__files/demo-{collection}-page-*.json"))
    return [r for page in pages for r in _load(str(page.relative_to(MOCK_API)))["value"]]


SNAPSHOT = _load("mappings/demo-export-poll-2.json")["response"]["jsonBody"]
AS_OF = date.fromisoformat(SNAPSHOT["asOfDate"])
BASE = SNAPSHOT["baseCurrencyCode"]
RATES = {r["currencyCode"]: r["rateToBase"] for r in SNAPSHOT["exchangeRates"]}
CUSTOMERS = _records("customers")
INVOICES = _records("salesInvoices")
PAGE_COUNTS = {
    name: len(list(MOCK_API.glob(f"__files/demo-{name}-page-*.json")))
    for name in ("customers", "salesInvoices")
}


def in_base(amount: Decimal, currency: str) -> Decimal:
    """One invoice amount in the base currency, to the cent, half up."""
    return (amount * RATES[currency]).quantize(CENT, rounding=ROUND_HALF_UP)


def days_overdue(invoice: dict[str, Any]) -> int:
    """Days past due on the as-of date for an open invoice with money still owed, else 0."""
    due = date.fromisoformat(invoice["dueDate"])
    owed = invoice["status"] == "Open" and invoice["remainingAmount"] > 0
    return (AS_OF - due).days if owed and due < AS_OF else 0


def bucket(days: int) -> str:
    """The ageing bucket of an overdue invoice."""
    if days <= 30:
        return "0-30"
    if days <= 60:
        return "31-60"
    return "61-90" if days <= 90 else "90+"


POSTED = [i for i in INVOICES if i["status"] in ("Open", "Paid")]
OVERDUE = [i for i in POSTED if days_overdue(i)]


def expected_by_currency() -> dict[str, dict[str, Decimal]]:
    """Revenue, open balance and overdue per currency, in that currency."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for i in POSTED:
        row = totals[i["currencyCode"]]
        row["invoices"] += 1
        row["revenue"] += i["totalAmountExcludingTax"]
        row["open_balance"] += i["remainingAmount"]
        if days_overdue(i):
            row["overdue"] += i["remainingAmount"]
            row[f"overdue {bucket(days_overdue(i))}"] += i["remainingAmount"]
    return totals


def expected_in_base_by_currency() -> dict[str, dict[str, Decimal]]:
    """Per invoice currency, its amounts converted to the base currency invoice by invoice."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for i in POSTED:
        row = totals[i["currencyCode"]]
        row["revenue"] += in_base(i["totalAmountExcludingTax"], i["currencyCode"])
        row["open_balance"] += in_base(i["remainingAmount"], i["currencyCode"])
        if days_overdue(i):
            amount = in_base(i["remainingAmount"], i["currencyCode"])
            row["overdue"] += amount
            row[f"overdue {bucket(days_overdue(i))}"] += amount
    return totals


def expected_in_base() -> dict[str, Decimal]:
    """Revenue and overdue (in total and per bucket) converted invoice by invoice."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for i in POSTED:
        totals["revenue"] += in_base(i["totalAmountExcludingTax"], i["currencyCode"])
        totals["open_balance"] += in_base(i["remainingAmount"], i["currencyCode"])
    for i in OVERDUE:
        amount = in_base(i["remainingAmount"], i["currencyCode"])
        totals["overdue"] += amount
        totals[f"overdue {bucket(days_overdue(i))}"] += amount
    return totals


def test_the_demo_data_is_rich_enough_to_show_every_case() -> None:
    assert len(CUSTOMERS) >= 50 and len(INVOICES) >= 300
    assert len(RATES) >= 4 and {i["currencyCode"] for i in POSTED} == set(RATES)
    assert {bucket(days_overdue(i)) for i in OVERDUE} == set(BUCKETS)
    assert {"Draft", "Canceled", "Paid", "Open"} <= {i["status"] for i in INVOICES}
    assert any(0 < i["remainingAmount"] < i["totalAmountIncludingTax"] for i in OVERDUE)
    assert any(i["status"] == "Open" and not days_overdue(i) for i in INVOICES)  # not yet due
    # The bucket edges, an invoice due on the as-of date, and a conversion ending in half a cent
    # (rounded half up), so that an off-by-one or banker's rounding in the report is caught.
    assert {1, 30, 31, 60, 61, 90, 91} <= {days_overdue(i) for i in OVERDUE}
    assert any(i["status"] == "Open" and i["dueDate"] == AS_OF.isoformat() for i in INVOICES)
    half_cent = CENT / 2
    assert any(i["remainingAmount"] * RATES[i["currencyCode"]] % CENT == half_cent for i in OVERDUE)
    assert PAGE_COUNTS["salesInvoices"] >= 3 and PAGE_COUNTS["customers"] >= 2


# -- the run ---------------------------------------------------------------------------------
def run_report(project: Path) -> subprocess.CompletedProcess[str]:
    """Run the report the way make run does, in ``project``."""
    return run_demo_script(project, "report")


def journal(server: WireMock) -> list[dict[str, Any]]:
    """Every request the server saw with the status it answered, oldest first."""
    r = server.session.get(f"{server.base_url}/__admin/requests", timeout=10)
    r.raise_for_status()
    entries = [
        {**e["request"], "status": e["responseDefinition"]["status"]} for e in r.json()["requests"]
    ]
    # The server lists newest first; reversed, a stable sort keeps same-millisecond order.
    return sorted(reversed(entries), key=lambda e: e["loggedDate"])


class Run:
    """One finished run of the report: its process, its files and what the server saw."""

    def __init__(self, project: Path, done: subprocess.CompletedProcess[str], seen: list[Any]):
        self.project = project
        self.done = done
        self.seen = seen

    def only(self, pattern: str) -> Path:
        """The one output file matching ``pattern``."""
        (found,) = sorted((self.project / "output").glob(pattern))
        return found

    def requests(self, method: str, path: str) -> list[dict[str, Any]]:
        """The journal entries for ``method`` on ``path`` (query ignored)."""
        return [e for e in self.seen if e["method"] == method and e["url"].split("?")[0] == path]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, demo_api: WireMock) -> Run:
    """The report, run once against the demo API."""
    project = make_demo_project(tmp_path_factory.mktemp("project"), demo_api)
    done = run_report(project)
    return Run(project, done, journal(demo_api))


def cents(value: Any) -> Decimal:
    """A workbook number as an amount to the cent."""
    return Decimal(str(value)).quantize(CENT)


def table(run: Run, sheet: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The sheet's table (under its heading) without its totals row, and that totals row."""
    frame = pd.read_excel(run.only("demo-test-report_*.xlsx"), sheet_name=sheet, header=3)
    is_total = frame.iloc[:, 0] == TOTAL
    assert is_total.tolist()[-1:] == [True] and is_total.sum() == 1, "one totals row, last"
    return frame[~is_total], frame[is_total].iloc[0].to_dict()


@pytest.fixture(scope="module")
def book(run: Run) -> openpyxl.Workbook:
    """The workbook as openpyxl reads it: cached values of formulas (what a reader sees)."""
    return openpyxl.load_workbook(run.only("demo-test-report_*.xlsx"), data_only=True)


@pytest.fixture(scope="module")
def formulas(run: Run) -> openpyxl.Workbook:
    """The workbook with its formulas as written."""
    return openpyxl.load_workbook(run.only("demo-test-report_*.xlsx"))


def headers(ws: Any) -> dict[str, int]:
    """Column header → column number (1-based) of the sheet's table."""
    return {c.value: c.column for c in ws[HEADER_ROW] if c.value is not None}


def data_rows(ws: Any) -> range:
    """The 1-based rows of the table's data (the totals row excluded)."""
    return range(HEADER_ROW + 1, ws.max_row)


def test_the_run_succeeds_and_saves_both_files(run: Run) -> None:
    assert run.done.returncode == 0, run.done.stderr
    workbook = run.only("demo-test-report_*.xlsx")
    summary = run.only("demo-test-report-summary_*.json")
    assert workbook.name.removeprefix("demo-test-report_")[:4].isdigit()
    assert json.loads(summary.read_text(encoding="utf-8"))["workbook"] == workbook.name
    assert list(pd.read_excel(workbook, sheet_name=None)) == ["Summary", "Customers", "Overdue"]
    assert not [p for p in (run.project / "output").iterdir() if p.name.startswith(".")]


def test_the_server_saw_one_token_request_and_nothing_unmatched(run: Run) -> None:
    assert len(run.requests("POST", "/demo-tenant/oauth2/v2.0/token")) == 1
    assert {e["status"] for e in run.seen} <= {200, 202, 429}
    api_calls = [e for e in run.seen if e["url"].startswith(COMPANY_PATH)]
    bearer = {e["headers"]["Authorization"] for e in api_calls}
    assert len(bearer) == 1 and bearer.pop().startswith("Bearer ")


def test_the_export_was_polled_until_done(run: Run) -> None:
    (start,) = run.requests("POST", f"{COMPANY_PATH}/exports")
    polls = run.requests("GET", JOB_PATH)
    assert start["status"] == 202
    assert [p["status"] for p in polls] == [202, 200]
    assert start["loggedDate"] < polls[0]["loggedDate"]


def test_every_page_was_read_once_and_the_429_retried_after_its_retry_after(run: Run) -> None:
    customers = run.requests("GET", f"{COMPANY_PATH}/customers")
    assert [e["status"] for e in customers] == [200] * PAGE_COUNTS["customers"]
    invoices = run.requests("GET", f"{COMPANY_PATH}/salesInvoices")
    statuses = [e["status"] for e in invoices]
    assert statuses.count(429) == 1
    assert statuses.count(200) == PAGE_COUNTS["salesInvoices"]
    throttled = statuses.index(429)
    retry = invoices[throttled + 1]
    assert retry["url"] == invoices[throttled]["url"] and retry["status"] == 200
    assert retry["loggedDate"] - invoices[throttled]["loggedDate"] >= 1000  # Retry-After: 1
    # Each page once (the 429 aside): the first without $skiptoken, then each next link.
    urls = [e["url"] for e in invoices if e["status"] == 200]
    assert len(set(urls)) == len(urls)
    assert "$skiptoken" not in urls[0] and all("$skiptoken=" in u for u in urls[1:])
    assert "top=200" in urls[0]


def test_the_run_summary_counts_what_the_server_saw(run: Run) -> None:
    (line,) = [ln for ln in run.done.stderr.splitlines() if "Run summary:" in ln]
    calls = [e for e in run.seen if e["url"].startswith(COMPANY_PATH)]
    throttled = [e for e in calls if e["status"] == 429]
    assert f"API calls {len(calls)} " in line, line
    assert f"retries {len(throttled)} " in line, line
    assert f"429s {len(throttled)} " in line, line


def test_summary_sheet_matches_the_data(run: Run) -> None:
    sheet, total = table(run, "Summary")
    native = expected_by_currency()
    expected = expected_in_base_by_currency()
    rows = {r["Currency"]: r for r in sheet.to_dict("records")}
    assert list(rows) == sorted(native)
    for currency, figures in expected.items():
        row = rows[currency]
        assert row["Invoices"] == native[currency]["invoices"]
        assert row["Customers"] == len(
            {i["customerId"] for i in POSTED if i["currencyCode"] == currency}
        )
        assert cents(row["Revenue in currency"]) == native[currency]["revenue"]
        assert cents(row["Revenue"]) == figures["revenue"]
        assert cents(row["Open balance"]) == figures["open_balance"]
        assert cents(row["Overdue total"]) == figures["overdue"]
        for name in BUCKETS:
            assert cents(row[f"Overdue {name}"]) == figures[f"overdue {name}"]
        assert cents(row["Not yet due"]) == figures["open_balance"] - figures["overdue"]
        assert Decimal(str(row[f"Rate to {BASE}"])) == RATES[currency]
    base = expected_in_base()
    assert total["Invoices"] == len(POSTED)
    assert cents(total["Revenue"]) == base["revenue"]
    assert cents(total["Open balance"]) == base["open_balance"]
    assert cents(total["Overdue total"]) == base["overdue"]
    for name in BUCKETS:
        assert cents(total[f"Overdue {name}"]) == base[f"overdue {name}"]
    # Neither amounts in mixed currencies nor customers (one may invoice in two) are added up.
    for column in ("Revenue in currency", f"Rate to {BASE}", "Customers"):
        assert pd.isna(total[column]), column


def test_customers_sheet_has_every_customer_with_its_revenue(run: Run) -> None:
    sheet, total = table(run, "Customers")
    assert sorted(sheet["Customer No."]) == sorted(c["number"] for c in CUSTOMERS)
    number_of = {c["id"]: c["number"] for c in CUSTOMERS}
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    revenue_base: dict[str, Decimal] = defaultdict(Decimal)
    overdue: dict[str, Decimal] = defaultdict(Decimal)
    for i in POSTED:
        number = number_of[i["customerId"]]
        revenue[number] += i["totalAmountExcludingTax"]
        revenue_base[number] += in_base(i["totalAmountExcludingTax"], i["currencyCode"])
    for i in OVERDUE:
        overdue[number_of[i["customerId"]]] += i["remainingAmount"]
    for row in sheet.to_dict("records"):
        number = row["Customer No."]
        assert cents(row["Revenue"]) == revenue[number], number
        assert cents(row[f"Revenue ({BASE})"]) == revenue_base[number], number
        assert cents(row["Overdue"]) == overdue[number], number
    biggest = max(revenue_base, key=lambda n: revenue_base[n])
    assert sheet["Customer No."].iloc[0] == biggest  # sorted by base-currency revenue
    assert list(sheet[f"Revenue ({BASE})"]) == sorted(sheet[f"Revenue ({BASE})"], reverse=True)
    assert cents(total[f"Revenue ({BASE})"]) == sum(revenue_base.values())
    assert cents(total[f"Overdue ({BASE})"]) == expected_in_base()["overdue"]
    assert total["Invoices"] == len(POSTED) and total["Overdue invoices"] == len(OVERDUE)
    assert pd.isna(total["Revenue"]) and pd.isna(total["Overdue"])  # mixed currencies


def test_overdue_sheet_lists_each_overdue_invoice_in_its_bucket(run: Run) -> None:
    sheet, total = table(run, "Overdue")
    expected = {i["number"]: i for i in OVERDUE}
    assert sorted(sheet["Invoice No."]) == sorted(expected)
    for row in sheet.to_dict("records"):
        invoice = expected[row["Invoice No."]]
        assert row["Days overdue"] == days_overdue(invoice) >= 1
        assert row["Bucket"] == bucket(days_overdue(invoice))
        assert cents(row["Remaining"]) == invoice["remainingAmount"]
        assert cents(row[f"Remaining ({BASE})"]) == in_base(
            invoice["remainingAmount"], invoice["currencyCode"]
        )
        assert pd.Timestamp(row["Due date"]).date() == date.fromisoformat(invoice["dueDate"])
    assert list(sheet["Days overdue"]) == sorted(sheet["Days overdue"], reverse=True)
    assert cents(total[f"Remaining ({BASE})"]) == expected_in_base()["overdue"]
    assert pd.isna(total["Remaining"]) and pd.isna(total["Amount"])  # mixed currencies


AS_OF_TEXT = f"As of {AS_OF.day} {AS_OF:%B %Y}"
SHEETS = {
    "Summary": "Receivables summary: demo / test",
    "Customers": "Revenue and overdue per customer: demo / test",
    "Overdue": "Overdue invoices: demo / test",
}


@pytest.mark.parametrize(("sheet", "heading"), SHEETS.items())
def test_each_sheet_opens_with_a_heading_with_the_as_of_date(
    book: openpyxl.Workbook, sheet: str, heading: str
) -> None:
    ws = book[sheet]
    assert ws["A1"].value == heading and ws["A1"].font.b
    assert ws["A2"].value.startswith(f"{AS_OF_TEXT} · ")
    assert re.search(r"generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$", ws["A2"].value)
    assert ws["A3"].value is None
    assert ws.freeze_panes == f"A{HEADER_ROW + 1}"
    assert ws.auto_filter.ref.startswith(f"A{HEADER_ROW}:")


MONEY_COLUMNS = {
    "Summary": [
        "Revenue in currency",
        "Revenue",
        "Open balance",
        "Not yet due",
        *(f"Overdue {b}" for b in BUCKETS),
        "Overdue total",
    ],
    "Customers": ["Revenue", f"Revenue ({BASE})", "Open balance", "Overdue", f"Overdue ({BASE})"],
    "Overdue": ["Amount", "Remaining", f"Remaining ({BASE})"],
}


@pytest.mark.parametrize(("sheet", "columns"), MONEY_COLUMNS.items())
def test_money_is_numbers_shown_with_two_decimals_and_separators(
    book: openpyxl.Workbook, sheet: str, columns: list[str]
) -> None:
    ws = book[sheet]
    where = headers(ws)
    for column in columns:
        cells = [ws.cell(row, where[column]) for row in data_rows(ws)]
        assert cells, column
        assert {c.number_format for c in cells} == {MONEY}, column
        assert all(isinstance(c.value, (int, float)) for c in cells), column
    for row in data_rows(ws):
        for column, number in where.items():
            if column not in columns and ws.cell(row, number).number_format == MONEY:
                raise AssertionError(f"{sheet}!{column} is not money but shown as money")
    if sheet == "Summary":
        rates = [ws.cell(row, where[f"Rate to {BASE}"]) for row in data_rows(ws)]
        assert {c.number_format for c in rates} == {"0.0000"}


TOTALS = {
    "Summary": ["Invoices", *MONEY_COLUMNS["Summary"][1:]],
    "Customers": ["Invoices", f"Revenue ({BASE})", "Overdue invoices", f"Overdue ({BASE})"],
    "Overdue": [f"Remaining ({BASE})"],
}


@pytest.mark.parametrize(("sheet", "columns"), TOTALS.items())
def test_totals_rows_equal_the_sums_of_their_columns(
    book: openpyxl.Workbook, formulas: openpyxl.Workbook, sheet: str, columns: list[str]
) -> None:
    ws, written = book[sheet], formulas[sheet]
    where = headers(ws)
    last = ws.max_row
    assert ws.cell(last, 1).value == TOTAL and ws.cell(last, 1).font.b
    rows = data_rows(ws)
    for column in columns:
        col = where[column]
        cell = ws.cell(last, col)
        letter = cell.column_letter
        values = [ws.cell(row, col).value or 0 for row in rows]
        assert cents(cell.value) == sum(cents(v) for v in values), column
        assert written.cell(last, col).value == (
            f"=SUBTOTAL(109,{letter}{rows.start}:{letter}{rows.stop - 1})"
        )
        assert cell.font.b and cell.border.bottom.style == "double"
        if column in MONEY_COLUMNS[sheet]:
            assert cell.number_format == MONEY
    for column, col in where.items():
        if column not in columns and col != 1:
            assert ws.cell(last, col).value is None, column


def _chart_xml(workbook: Path) -> tuple[str, ET.Element]:
    """The path of the chart drawn on the Summary sheet and its parsed XML."""
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
    }

    def target(
        archive: zipfile.ZipFile, part: str, rel_id: str | None = None, kind: str = ""
    ) -> str:
        folder, name = part.rsplit("/", 1)
        rels = ET.fromstring(archive.read(f"{folder}/_rels/{name}.rels"))
        (found,) = [
            r.get("Target")
            for r in rels.findall("rel:Relationship", ns)
            if (rel_id is None or r.get("Id") == rel_id) and r.get("Type", "").endswith(kind)
        ]
        return os.path.normpath(f"{folder}/{found}")

    with zipfile.ZipFile(workbook) as archive:
        book_xml = ET.fromstring(archive.read("xl/workbook.xml"))
        (summary,) = [s for s in book_xml.iter(f"{{{ns['m']}}}sheet") if s.get("name") == "Summary"]
        sheet_part = target(archive, "xl/workbook.xml", summary.get(f"{{{ns['r']}}}id"))
        drawing = target(archive, sheet_part, kind="/drawing")
        chart = target(archive, drawing, kind="/chart")
        return chart, ET.fromstring(archive.read(chart))


def test_summary_carries_a_native_chart_of_receivables_by_age(
    run: Run, book: openpyxl.Workbook
) -> None:
    chart_path, chart = _chart_xml(run.only("demo-test-report_*.xlsx"))
    assert chart_path == "xl/charts/chart1.xml"
    c = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
    assert chart.find(f".//{c}barChart/{c}grouping").get("val") == "stacked"
    ws = book["Summary"]

    def cells(ref: str) -> list[Any]:
        sheet, area = ref.split("!")
        assert sheet.strip("'") == "Summary", ref
        min_col, min_row, max_col, max_row = range_boundaries(area.replace("$", ""))
        return [
            ws.cell(row, col).value
            for row in range(min_row, max_row + 1)
            for col in range(min_col, max_col + 1)
        ]

    series = chart.findall(f".//{c}ser")
    expected = expected_in_base_by_currency()
    assert len(series) == len(expected)
    for ser in series:
        (currency,) = cells(ser.find(f"{c}tx//{c}f").text)
        assert cells(ser.find(f"{c}cat//{c}f").text) == [
            "Not yet due",
            *(f"Overdue {b}" for b in BUCKETS),
        ]
        figures = expected[currency]
        assert [cents(v) for v in cells(ser.find(f"{c}val//{c}f").text)] == [
            figures["open_balance"] - figures["overdue"],
            *(figures[f"overdue {b}"] for b in BUCKETS),
        ]


def test_json_summary_is_exact_to_the_cent(run: Run) -> None:
    path = run.only("demo-test-report-summary_*.json")
    summary = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    assert summary["as_of_date"] == AS_OF.isoformat() and summary["base_currency"] == BASE
    assert summary["customers"] == len(CUSTOMERS)
    assert summary["invoices"]["read"] == len(INVOICES)
    for status in ("Open", "Paid", "Draft", "Canceled"):
        assert summary["invoices"]["by_status"][status] == sum(
            1 for i in INVOICES if i["status"] == status
        )
    for currency, figures in expected_by_currency().items():
        got = summary["by_currency"][currency]
        assert got["revenue"] == figures["revenue"]
        assert got["overdue"] == figures["overdue"]
    base = expected_in_base()
    total = summary["total_in_base_currency"]
    assert total["revenue"] == base["revenue"]
    assert total["open_balance"] == base["open_balance"]
    assert total["overdue"] == base["overdue"]
    assert total["overdue_invoices"] == len(OVERDUE)
    for name in BUCKETS:
        in_bucket = [i for i in OVERDUE if bucket(days_overdue(i)) == name]
        assert total["overdue_by_bucket"][name]["invoices"] == len(in_bucket)
        assert total["overdue_by_bucket"][name]["amount"] == base[f"overdue {name}"]


def test_no_secret_reaches_the_console_or_the_log(run: Run) -> None:
    secret = json.loads(
        (PROJECT_ROOT / "config" / "demo-test-config-secrets_example.json").read_text()
    )["client-secret"]
    token = _load("mappings/demo-token.json")["response"]["jsonBody"]["access_token"]
    logs = [p.read_text(encoding="utf-8") for p in (run.project / "logs").glob("*")]
    assert logs, "the run wrote no log file"
    for text in [run.done.stderr, run.done.stdout, *logs]:
        assert secret not in text and token not in text


def test_control_totals_that_differ_stop_the_report_before_saving(
    tmp_path: Path, demo_api: WireMock
) -> None:
    project = make_demo_project(tmp_path, demo_api)
    done_body = json.loads((MOCK_API / "mappings" / "demo-export-poll-2.json").read_text())
    done_body["priority"] = 1
    done_body["response"]["jsonBody"]["controlTotals"]["invoiceCount"] += 1
    stub = demo_api.stub(done_body)
    try:
        done = run_report(project)
    finally:
        demo_api.session.delete(f"{demo_api.base_url}/__admin/mappings/{stub['id']}", timeout=10)
    assert done.returncode == 4, done.stderr
    assert f"but the API's snapshot counts {len(CUSTOMERS)} and {len(INVOICES) + 1}" in done.stderr
    output = project / "output"
    assert not output.exists() or not any(output.iterdir())
