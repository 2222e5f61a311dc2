"""Generate the demo invoicing API served by WireMock (``mappings/`` and ``__files/``).

The demo API imitates Business Central's API v2.0 for one company: an OAuth2 token endpoint,
``customers`` and ``salesInvoices`` as OData collections paged by ``$skiptoken`` with a
server-side cap of 50 records per page (whatever ``$top`` asks), one ``429 Too Many Requests``
with ``Retry-After: 1`` on the third invoice page (once per server start, a scenario), and an
``exports`` endpoint that answers ``202 Accepted`` with a relative ``Location`` and completes on
the second poll with the receivables snapshot: the as-of date, the base currency, the exchange
rates and control totals.

The data is seeded and its dates fixed, so the report's figures are the same on every machine
and every day. The output is committed; run this only to change the data::

    python mock-api/generate_data.py

Only files named ``demo-*.json`` are written or removed, so other fixtures may live beside them. The
records themselves come from ``demo_ledger.py``.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from demo_ledger import AS_OF, BASE_CURRENCY, RATES_TO_BASE, SEED, make_customers, make_invoices

ROOT = Path(__file__).resolve().parent
COMPANY_ID = "8f2d1c3a-5b7e-4c9d-a1f0-3e6b2d4c5a71"
API_PATH = f"/api/v2.0/companies({COMPANY_ID})"
TOKEN_PATH = "/demo-tenant/oauth2/v2.0/token"
CLIENT_ID = "txo-demo-client"
# Demo-only credentials: they open nothing but this local mock.
CLIENT_SECRET = "txo-demo-secret-not-for-production-7f3a9c"
ACCESS_TOKEN = "txo-demo-access-token-4b1e9f2a7c6d8e0f3a5b7c9d1e2f4a6b"
TOKEN_LIFETIME_SECONDS = 3599
PAGE_CAP = 50
THROTTLED_INVOICE_PAGE = 3
RETRY_AFTER_SECONDS = 1
EXPORT_JOB_ID = "3c9e7b21-6a4f-4d8e-9b0c-5f1a2e7d4c63"


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)  # two decimals: float's shortest repr keeps the exact digits
    raise TypeError(f"not JSON serialisable: {value!r}")


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _authorised(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "headers": {"Authorization": {"equalTo": f"Bearer {ACCESS_TOKEN}"}}}


JSON_HEADERS = {"Content-Type": "application/json; odata.metadata=minimal; charset=utf-8"}
API_ANY_PATH = "/api/v2\\.0/.*"


def paged_collection(
    name: str, records: list[dict[str, Any]], throttled_page: int | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Return (mappings, body files) serving ``records`` as OData pages of ``PAGE_CAP``.

    The first page answers a request without ``$skiptoken``; each further page answers the
    ``$skiptoken`` named in the previous page's ``@odata.nextLink`` (the id of that page's last
    record, as Business Central does). Next links are absolute, built from the request's own
    base URL by response templating, so they work on any host and port.
    """
    mappings: dict[str, dict[str, Any]] = {}
    files: dict[str, dict[str, Any]] = {}
    pages = [records[i : i + PAGE_CAP] for i in range(0, len(records), PAGE_CAP)]
    url_path = f"{API_PATH}/{name}"
    token: str | None = None
    for number, page in enumerate(pages, start=1):
        stem = f"demo-{name}-page-{number:02d}"
        body: dict[str, Any] = {
            "@odata.context": f"{{{{request.baseUrl}}}}/api/v2.0/$metadata#companies"
            f"({COMPANY_ID})/{name}",
            "value": page,
        }
        if number < len(pages):
            body["@odata.nextLink"] = (
                f"{{{{request.baseUrl}}}}{url_path}?$skiptoken={page[-1]['id']}"
            )
        query = {"$skiptoken": {"absent": True} if token is None else {"equalTo": token}}
        request = _authorised({"method": "GET", "urlPath": url_path, "queryParameters": query})
        mappings[stem] = {
            "name": f"{name}: page {number} of {len(pages)}",
            "request": request,
            "response": {
                "status": 200,
                "headers": JSON_HEADERS,
                "bodyFileName": f"{stem}.json",
                "transformers": ["response-template"],
            },
        }
        files[stem] = body
        if number == throttled_page:
            mappings[f"{stem}-throttled"] = {
                "name": f"{name}: page {number} answers 429 once, then the page",
                "priority": 1,
                "scenarioName": f"{name}-throttle",
                "requiredScenarioState": "Started",
                "newScenarioState": "throttled-once",
                "request": request,
                "response": {
                    "status": 429,
                    "headers": {**JSON_HEADERS, "Retry-After": str(RETRY_AFTER_SECONDS)},
                    "jsonBody": {
                        "error": {
                            "code": "Application_TooManyRequests",
                            "message": "Too many requests reached. Retry after 1 second.",
                        }
                    },
                },
            }
        token = page[-1]["id"]
    return mappings, files


def token_mappings() -> dict[str, dict[str, Any]]:
    """Token endpoint (the demo client gets a token, others a 401) and the API's refusals."""
    url = {"method": "POST", "urlPath": TOKEN_PATH}
    unauthorised = {
        "status": 401,
        "headers": {**JSON_HEADERS, "WWW-Authenticate": 'Bearer error="invalid_token"'},
        "jsonBody": {
            "error": {
                "code": "Authentication_InvalidCredentials",
                "message": "The server has rejected the client credentials.",
            }
        },
    }
    return {
        "demo-token": {
            "name": "token: client credentials of the demo client",
            "priority": 1,
            "request": {
                **url,
                "bodyPatterns": [
                    {"contains": "grant_type=client_credentials"},
                    {"contains": f"client_id={CLIENT_ID}"},
                    {"contains": f"client_secret={CLIENT_SECRET}"},
                ],
            },
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json; charset=utf-8"},
                "jsonBody": {
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                    "ext_expires_in": TOKEN_LIFETIME_SECONDS,
                    "access_token": ACCESS_TOKEN,
                },
            },
        },
        "demo-token-invalid-client": {
            "name": "token: any other client is refused",
            "priority": 9,
            "request": url,
            "response": {
                "status": 401,
                "headers": {"Content-Type": "application/json; charset=utf-8"},
                "jsonBody": {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            },
        },
        "demo-api-unauthorised": {
            "name": "api: a request without the demo token is refused",
            "priority": 10,
            "request": {
                "method": "ANY",
                "urlPathPattern": API_ANY_PATH,
                "headers": {"Authorization": {"absent": True}},
            },
            "response": unauthorised,
        },
        "demo-api-wrong-token": {
            "name": "api: a request with another token is refused",
            "priority": 10,
            "request": {
                "method": "ANY",
                "urlPathPattern": API_ANY_PATH,
                "headers": {"Authorization": {"doesNotMatch": f"Bearer {ACCESS_TOKEN}"}},
            },
            "response": unauthorised,
        },
        "demo-api-not-found": {
            "name": "api: the token is fine but the demo serves no such path",
            "priority": 11,
            "request": {"method": "ANY", "urlPathPattern": API_ANY_PATH},
            "response": {
                "status": 404,
                "headers": JSON_HEADERS,
                "jsonBody": {
                    "error": {
                        "code": "BadRequest_NotFound",
                        "message": "The demo API serves no such resource.",
                    }
                },
            },
        },
    }


def export_mappings(customers: int, invoices: int) -> dict[str, dict[str, Any]]:
    """The receivables snapshot export: 202 with a relative Location, done on the 2nd poll.

    Each POST (re)starts the job, so every run sees the same 202, 202, 200 sequence.
    """
    job_path = f"{API_PATH}/exports({EXPORT_JOB_ID})"
    location = f"exports({EXPORT_JOB_ID})"  # relative: resolved against the POST's URL
    accepted = {
        "status": 202,
        "headers": {**JSON_HEADERS, "Location": location},
        "jsonBody": {"id": EXPORT_JOB_ID, "status": "running"},
    }
    result = {
        "id": EXPORT_JOB_ID,
        "status": "completed",
        "dataset": "receivablesSnapshot",
        "asOfDate": AS_OF.isoformat(),
        "baseCurrencyCode": BASE_CURRENCY,
        "exchangeRates": [
            {"currencyCode": code, "rateToBase": float(rate)}
            for code, rate in RATES_TO_BASE.items()
        ],
        "controlTotals": {"customerCount": customers, "invoiceCount": invoices},
    }
    done = {"status": 200, "headers": JSON_HEADERS, "jsonBody": result}
    scenario = "receivables-export"
    get_job = _authorised({"method": "GET", "urlPath": job_path})
    return {
        "demo-export-start": {
            "name": "export: start the receivables snapshot (202 Accepted, relative Location)",
            "scenarioName": scenario,
            "newScenarioState": "queued",
            "request": _authorised(
                {
                    "method": "POST",
                    "urlPath": f"{API_PATH}/exports",
                    "bodyPatterns": [
                        {
                            "equalToJson": {"dataset": "receivablesSnapshot"},
                            "ignoreExtraElements": True,
                        }
                    ],
                }
            ),
            "response": accepted,
        },
        "demo-export-poll-1": {
            "name": "export: first poll, still running",
            "scenarioName": scenario,
            "requiredScenarioState": "queued",
            "newScenarioState": "running",
            "request": get_job,
            "response": accepted,
        },
        "demo-export-poll-2": {
            "name": "export: second poll, completed",
            "scenarioName": scenario,
            "requiredScenarioState": "running",
            "newScenarioState": "completed",
            "request": get_job,
            "response": done,
        },
        "demo-export-completed": {
            "name": "export: any later poll, completed",
            "scenarioName": scenario,
            "requiredScenarioState": "completed",
            "request": get_job,
            "response": done,
        },
    }


CHANGED_SINCE_FILTER = (
    r"lastModifiedDateTime gt \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z"
)
"""The one ``$filter`` the demo answers: customers changed after a UTC timestamp."""


def changed_customers_mappings(customers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Customers changed since a watermark: ``customers?$filter=lastModifiedDateTime gt T``.

    The answer is computed by WireMock for each request (response templating): the records
    whose ``lastModifiedDateTime`` is later than ``T``, in one page, so a script using the
    watermark pattern sees a second run fetch only what changed. ``T`` is compared as text,
    which orders these timestamps correctly when written like the data
    (``2025-06-09T10:45:00.000Z``). Any other ``$filter`` is a 400, as a real API would refuse
    a filter it cannot apply.
    """
    fields = list(customers[0])
    for customer in customers:
        for value in customer.values():  # each value is placed in a JSON string as it is
            if not isinstance(value, str) or '"' in value or "\\" in value or "{{" in value:
                raise ValueError(f"cannot template customer value {value!r}")
    every = json.dumps(customers, separators=(",", ":"))
    record = "{" + ",".join(f'"{name}":"{{{{{{{name}}}}}}}"' for name in fields) + "}"
    template = (
        f"{{{{#assign 'all'}}}}{every}{{{{/assign}}}}"
        "{{#assign 'since'}}{{regexExtract request.query.[$filter] "
        "'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z'}}{{/assign}}"
        "{{#assign 'expr'}}$[?(@.lastModifiedDateTime > '{{since}}')]{{/assign}}"
        f'{{"@odata.context":"{{{{request.baseUrl}}}}/api/v2.0/$metadata#companies'
        f'({COMPANY_ID})/customers","value":['
        "{{#each (jsonPath all expr)}}{{#unless @first}},{{/unless}}"
        f"{record}{{{{/each}}}}]}}"
    )
    url_path = f"{API_PATH}/customers"
    return {
        "demo-customers-changed-since": {
            "name": "customers: only those changed after the $filter's timestamp (watermark)",
            "priority": 1,
            "request": _authorised(
                {
                    "method": "GET",
                    "urlPath": url_path,
                    "queryParameters": {"$filter": {"matches": CHANGED_SINCE_FILTER}},
                }
            ),
            "response": {
                "status": 200,
                "headers": JSON_HEADERS,
                "body": template,
                "transformers": ["response-template"],
            },
        },
        "demo-customers-other-filter": {
            "name": "customers: any other $filter is refused",
            "priority": 2,
            "request": _authorised(
                {
                    "method": "GET",
                    "urlPath": url_path,
                    "queryParameters": {"$filter": {"matches": ".*"}},
                }
            ),
            "response": {
                "status": 400,
                "headers": JSON_HEADERS,
                "jsonBody": {
                    "error": {
                        "code": "BadRequest",
                        "message": "The demo API filters customers only by "
                        "'lastModifiedDateTime gt <UTC timestamp>'.",
                    }
                },
            },
        },
    }


def main() -> None:
    """Regenerate every ``demo-*.json`` under ``mappings/`` and ``__files/``."""
    rng = random.Random(SEED)
    customers = make_customers(rng)
    invoices = make_invoices(rng, customers)
    public_customers = [{k: v for k, v in c.items() if k != "paymentTermsDays"} for c in customers]
    mappings = token_mappings()
    files: dict[str, dict[str, Any]] = {}
    for name, records, throttled in (
        ("customers", public_customers, None),
        ("salesInvoices", invoices, THROTTLED_INVOICE_PAGE),
    ):
        more_mappings, more_files = paged_collection(name, records, throttled)
        mappings.update(more_mappings)
        files.update(more_files)
    mappings.update(export_mappings(len(customers), len(invoices)))
    mappings.update(changed_customers_mappings(public_customers))
    for folder in ("mappings", "__files"):
        (ROOT / folder).mkdir(exist_ok=True)
        for old in (ROOT / folder).glob("demo-*.json"):
            old.unlink()
    for stem, mapping in mappings.items():
        _write(ROOT / "mappings" / f"{stem}.json", mapping)
    for stem, body in files.items():
        _write(ROOT / "__files" / f"{stem}.json", body)


if __name__ == "__main__":
    main()
