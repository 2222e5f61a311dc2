"""The demo ledger: seeded customers and sales invoices for the demo invoicing API.

``generate_data.py`` serves them as Business-Central-style OData pages. All dates are fixed
relative to :data:`AS_OF` and the generator is seeded, so the same records come out on every
machine: the report's figures are reproducible and ``tests/test_report.py`` recomputes them
from the generated files.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

SEED = 20250630
AS_OF = date(2025, 6, 30)
HISTORY_DAYS = 365
CUSTOMER_COUNT = 64
INVOICE_COUNT = 420
BASE_CURRENCY = "EUR"
CENT = Decimal("0.01")

# currency -> (weight, countries, tax rate, typical invoice size in that currency)
CURRENCIES: dict[str, tuple[int, tuple[str, ...], Decimal, int]] = {
    "EUR": (34, ("DE", "NL", "FR", "BE", "FI", "IE", "AT"), Decimal("0.21"), 4_000),
    "USD": (12, ("US",), Decimal("0"), 5_000),
    "GBP": (8, ("GB",), Decimal("0.20"), 3_500),
    "SEK": (6, ("SE",), Decimal("0.25"), 45_000),
    "CHF": (6, ("CH",), Decimal("0.081"), 4_500),
}
# Units of the base currency per unit of the currency, as of AS_OF.
RATES_TO_BASE = {
    "EUR": Decimal("1"),
    "USD": Decimal("0.8532"),
    "GBP": Decimal("1.1686"),
    "SEK": Decimal("0.0894"),
    "CHF": Decimal("1.0695"),
}
PAYMENT_TERMS_DAYS = (14, 30, 30, 45, 60)
# Chance that an invoice this many days past due has been paid (older: more likely).
PAID_CHANCE_BY_DAYS_PAST_DUE = ((30, 0.55), (60, 0.6), (90, 0.62), (10_000, 0.93))
PAID_CHANCE_NOT_DUE = 0.2
PARTIAL_PAYMENT_CHANCE = 0.25
CANCELED_CHANCE = 0.02
DRAFT_COUNT = 6
MAX_CUSTOMER_WEIGHT = 5.0  # caps the largest customer at a plausible share of the ledger
DRAFT_MAX_AGE_DAYS = 6
AMOUNT_SPREAD = 0.8  # sigma of the log-normal invoice size around the typical one
WORKDAY_START = time(8)
WORKDAY_MINUTES = 10 * 60
CUSTOMER_EDIT_WINDOW_DAYS = 400
# Open invoices moved to sit on the ageing buckets' edges (and one due on the as-of date, not
# yet overdue), so that a report putting an edge in the wrong bucket is caught.
EDGE_DAYS_PAST_DUE = (0, 1, 30, 31, 60, 61, 90, 91)
# An amount whose conversion ends in exactly half a cent: 12.50 USD x 0.8532 = 10.665 EUR,
# 10.67 rounded half up, 10.66 with banker's rounding.
HALF_CENT_CURRENCY, HALF_CENT_AMOUNT = "USD", Decimal("12.50")

# fmt: off
NAME_FIRST = (
    "Alder", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
    "Juniper", "Kestrel", "Lumen", "Meridian", "Northwind", "Orchid", "Pioneer", "Quarry",
    "Riverside", "Summit", "Tidewater", "Umber", "Vantage", "Willow", "Zenith",
)
NAME_SECOND = (
    "Analytics", "Bakery", "Builders", "Logistics", "Foods", "Labs", "Motors", "Outfitters",
    "Pharma", "Systems", "Textiles", "Traders", "Works", "Energy", "Design",
)
LEGAL_FORM = {"DE": "GmbH", "NL": "B.V.", "FR": "SARL", "BE": "BV", "FI": "Oy", "IE": "Ltd",
              "AT": "GmbH", "US": "Inc.", "GB": "Ltd", "SE": "AB", "CH": "AG"}
CITY = {"DE": "Hamburg", "NL": "Utrecht", "FR": "Lyon", "BE": "Ghent", "FI": "Tampere",
        "IE": "Cork", "AT": "Graz", "US": "Denver", "GB": "Leeds", "SE": "Malmö", "CH": "Basel"}
# fmt: on


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _timestamp(day: date, rng: random.Random) -> str:
    moment = datetime.combine(day, WORKDAY_START, tzinfo=timezone.utc)
    moment += timedelta(minutes=rng.randrange(WORKDAY_MINUTES))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def make_customers(rng: random.Random) -> list[dict[str, Any]]:
    """Return the customers, each invoicing in one currency."""
    names = [f"{a} {b}" for a in NAME_FIRST for b in NAME_SECOND]
    rng.shuffle(names)
    codes = list(CURRENCIES)
    weights = [CURRENCIES[c][0] for c in codes]
    customers = []
    for i in range(CUSTOMER_COUNT):
        currency = rng.choices(codes, weights)[0]
        country = rng.choice(CURRENCIES[currency][1])
        name = f"{names[i]} {LEGAL_FORM[country]}"
        customers.append(
            {
                "id": _uuid(rng),
                "number": f"C{10000 + 10 * i:05d}",
                "displayName": name,
                "type": "Company",
                "city": CITY[country],
                "country": country,
                "email": f"ap@{names[i].lower().replace(' ', '-')}.example",
                "currencyCode": currency,
                "paymentTermsDays": rng.choice(PAYMENT_TERMS_DAYS),
                "blocked": "",
                "lastModifiedDateTime": _timestamp(
                    AS_OF - timedelta(rng.randrange(CUSTOMER_EDIT_WINDOW_DAYS)), rng
                ),
            }
        )
    return customers


def _paid_chance(days_past_due: int) -> float:
    if days_past_due <= 0:
        return PAID_CHANCE_NOT_DUE
    return next(p for limit, p in PAID_CHANCE_BY_DAYS_PAST_DUE if days_past_due <= limit)


def make_invoices(rng: random.Random, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the invoices of the last year, in number order."""
    # A few large customers and a long tail, like a real ledger.
    weights = [min(rng.paretovariate(1.6), MAX_CUSTOMER_WEIGHT) for _ in customers]
    dates = sorted(
        AS_OF - timedelta(days=rng.randint(1, HISTORY_DAYS))
        for _ in range(INVOICE_COUNT - DRAFT_COUNT)
    )
    dates += [
        AS_OF - timedelta(days=rng.randint(0, DRAFT_MAX_AGE_DAYS)) for _ in range(DRAFT_COUNT)
    ]
    invoices = []
    for i, invoice_date in enumerate(dates):
        customer = rng.choices(customers, weights)[0]
        currency = customer["currencyCode"]
        _, _, tax_rate, typical = CURRENCIES[currency]
        net = _money(typical * rng.lognormvariate(0, AMOUNT_SPREAD))
        tax = _money(net * tax_rate)
        gross = net + tax
        due = invoice_date + timedelta(days=customer["paymentTermsDays"])
        draft = i >= INVOICE_COUNT - DRAFT_COUNT
        if draft:
            status, remaining = "Draft", gross
        elif rng.random() < CANCELED_CHANCE:
            status, remaining = "Canceled", Decimal("0.00")
        elif rng.random() < _paid_chance((AS_OF - due).days):
            status, remaining = "Paid", Decimal("0.00")
        else:
            status, remaining = "Open", gross
            if rng.random() < PARTIAL_PAYMENT_CHANCE:
                remaining = _money(gross * Decimal(rng.choice(("0.25", "0.5", "0.6"))))
        invoices.append(
            {
                "id": _uuid(rng),
                "number": f"DRAFT-{i + 1:04d}" if draft else f"SI-{103001 + i}",
                "externalDocumentNumber": f"PO-{rng.randrange(10_000, 99_999)}",
                "invoiceDate": invoice_date.isoformat(),
                "postingDate": invoice_date.isoformat(),
                "dueDate": due.isoformat(),
                "customerId": customer["id"],
                "customerNumber": customer["number"],
                "customerName": customer["displayName"],
                "currencyCode": currency,
                "pricesIncludeTax": False,
                "totalAmountExcludingTax": net,
                "totalTaxAmount": tax,
                "totalAmountIncludingTax": gross,
                "remainingAmount": remaining,
                "status": status,
                "lastModifiedDateTime": _timestamp(invoice_date, rng),
            }
        )
    _plant_edge_cases(invoices)
    return invoices


def _days_past_due(invoice: dict[str, Any]) -> int:
    return (AS_OF - date.fromisoformat(invoice["dueDate"])).days


def _plant_edge_cases(invoices: list[dict[str, Any]]) -> None:
    """Move open invoices onto the bucket edges and give one a half-cent conversion."""
    open_items = [i for i in invoices if i["status"] == "Open"]
    for days in EDGE_DAYS_PAST_DUE:
        nearest = min(open_items, key=lambda i: (abs(_days_past_due(i) - days), i["number"]))
        shift = timedelta(days=_days_past_due(nearest) - days)
        for field in ("invoiceDate", "postingDate", "dueDate"):
            nearest[field] = (date.fromisoformat(nearest[field]) + shift).isoformat()
        open_items.remove(nearest)
    half = next(
        i for i in open_items if i["currencyCode"] == HALF_CENT_CURRENCY and _days_past_due(i) > 0
    )
    half["totalAmountExcludingTax"] = half["totalAmountIncludingTax"] = HALF_CENT_AMOUNT
    half["remainingAmount"], half["totalTaxAmount"] = HALF_CENT_AMOUNT, Decimal("0.00")
