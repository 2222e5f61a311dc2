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


# -- write-back: GET one customer with its ETag, PATCH it, $batch --------------------------------
OVERDUE_DAYS = 60
WRITE_RETRY_AFTER_SECONDS = 1
BATCH_PATH = f"{API_PATH}/$batch"
ERROR_CHANGED = {
    "error": {
        "code": "Request_EntityChanged",
        "message": "Another user has already changed the record.",
    }
}
ERROR_NO_ETAG = {
    "error": {
        "code": "Request_PreconditionRequired",
        "message": "Could not validate the client concurrency token required by the service. "
        "Please provide a valid token in the client request.",
    }
}
ERROR_THROTTLED = {
    "error": {
        "code": "Application_TooManyRequests",
        "message": "Too many requests reached. Retry after 1 second.",
    }
}


def _etag(customer: dict[str, Any], version: int) -> str:
    """A Business-Central-style weak ETag for one version of a customer record."""
    import base64  # here, not at the top: this block is the write-back demo's own

    token = base64.b64encode(f"'{customer['number']};{version};'".encode()).decode()
    return f'W/"{token}"'


def _batch_template(changed_etag: str, throttled_id: str | None) -> str:
    """A $batch answer, templated per request: 412 for the stale ETag, 428 without one, 429
    for ``throttled_id`` (when given), else 200 with the record's new ETag."""
    token = changed_etag.split('"')[1]
    throttled = (
        f"{{{{#if (contains r.url '{throttled_id}')}}}}"
        f'"status": 429, "headers": {{"Retry-After": "{WRITE_RETRY_AFTER_SECONDS}"}}, '
        f'"body": {json.dumps(ERROR_THROTTLED)}'
        "{{else}}"
        if throttled_id
        else ""
    )
    answer = (
        "{{#if (contains (lookup r.headers 'If-Match') '" + token + "')}}"
        f'"status": 412, "headers": {{}}, "body": {json.dumps(ERROR_CHANGED)}'
        "{{else if (contains (lookup r.headers 'If-Match') 'W/')}}"
        '"status": 200, "headers": {"Content-Type": "application/json"}, '
        '"body": {"@odata.etag": "W/\\"JzI7Jw==\\"", "blocked": "Invoice"}'
        "{{else}}"
        f'"status": 428, "headers": {{}}, "body": {json.dumps(ERROR_NO_ETAG)}'
        "{{/if}}"
    )
    close = " {{/if}}" if throttled_id else ""
    return (
        '{"responses": [{{#each (jsonPath request.body \'$.requests\') as |r|}}'
        '{{#unless @first}}, {{/unless}}{"id": "{{r.id}}", '
        f"{throttled}{answer}{close} }}{{{{/each}}}}]}}"
    )


def write_back_mappings(
    customers: list[dict[str, Any]], invoices: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """What ``src/block_overdue_customers.py`` needs: each customer by id with its ETag, PATCH
    with ``If-Match`` (428 without), and ``$batch``.

    Two customers long overdue show the other outcomes, once per server start (scenarios):
    the first was changed by someone else right after it was read (its first GET hands out an
    ETag that its PATCH then refuses with 412; later GETs hand out the new one), and the
    second is throttled once (429, ``Retry-After: 1``), as a single PATCH and inside a $batch.
    """
    import re
    from datetime import date

    overdue = sorted(
        {
            i["customerNumber"]
            for i in invoices
            if i["status"] == "Open"
            and i["remainingAmount"] > 0
            and (AS_OF - date.fromisoformat(i["dueDate"])).days > OVERDUE_DAYS
        }
    )
    by_number = {c["number"]: c for c in customers}
    changed, throttled = by_number[overdue[0]], by_number[overdue[1]]
    mappings: dict[str, dict[str, Any]] = {}
    for customer in customers:
        path = f"{API_PATH}/customers({customer['id']})"
        record = {"@odata.etag": _etag(customer, 1), **customer}
        stem = f"demo-customer-{customer['number']}"
        get = _authorised({"method": "GET", "urlPath": path})
        if customer is not changed:
            mappings[stem] = {
                "name": f"customer {customer['number']} with its ETag",
                "request": get,
                "response": {"status": 200, "headers": JSON_HEADERS, "jsonBody": record},
            }
            continue
        newer = {**record, "@odata.etag": _etag(customer, 2)}
        mappings[f"{stem}-read"] = {
            "name": f"customer {customer['number']}: first read, then changed by someone else",
            "scenarioName": "customer-changed-elsewhere",
            "requiredScenarioState": "Started",
            "newScenarioState": "changed",
            "request": get,
            "response": {"status": 200, "headers": JSON_HEADERS, "jsonBody": record},
        }
        mappings[f"{stem}-reread"] = {
            "name": f"customer {customer['number']}: read again, the new version",
            "scenarioName": "customer-changed-elsewhere",
            "requiredScenarioState": "changed",
            "request": get,
            "response": {"status": 200, "headers": JSON_HEADERS, "jsonBody": newer},
        }
        mappings[f"{stem}-stale-etag"] = {
            "name": f"customer {customer['number']}: PATCH with the old ETag is refused (412)",
            "priority": 1,
            "request": {
                **_authorised({"method": "PATCH", "urlPath": path}),
                "headers": {
                    "Authorization": {"equalTo": f"Bearer {ACCESS_TOKEN}"},
                    "If-Match": {"equalTo": _etag(customer, 1)},
                },
            },
            "response": {"status": 412, "headers": JSON_HEADERS, "jsonBody": ERROR_CHANGED},
        }
    customer_path = re.escape(API_PATH) + r"/customers\([0-9a-f-]{36}\)"
    patch = {"method": "PATCH", "urlPathPattern": customer_path}
    mappings["demo-customer-patch-throttled"] = {
        "name": f"customer {throttled['number']}: the first PATCH is throttled (429)",
        "priority": 2,
        "scenarioName": "customer-patch-throttle",
        "requiredScenarioState": "Started",
        "newScenarioState": "throttled-once",
        "request": _authorised(
            {"method": "PATCH", "urlPath": f"{API_PATH}/customers({throttled['id']})"}
        ),
        "response": {
            "status": 429,
            "headers": {**JSON_HEADERS, "Retry-After": str(WRITE_RETRY_AFTER_SECONDS)},
            "jsonBody": ERROR_THROTTLED,
        },
    }
    mappings["demo-customer-patch"] = {
        "name": "customers: PATCH with If-Match is applied",
        "priority": 5,
        "request": {
            **patch,
            "headers": {
                "Authorization": {"equalTo": f"Bearer {ACCESS_TOKEN}"},
                "If-Match": {"matches": 'W/".+"'},
            },
        },
        "response": {
            "status": 200,
            "headers": JSON_HEADERS,
            "body": '{"@odata.etag": "W/\\"JzI7Jw==\\"", '
            "\"blocked\": \"{{jsonPath request.body '$.blocked'}}\"}",
            "transformers": ["response-template"],
        },
    }
    mappings["demo-customer-patch-no-etag"] = {
        "name": "customers: PATCH without If-Match is refused (428)",
        "priority": 6,
        "request": _authorised(patch),
        "response": {"status": 428, "headers": JSON_HEADERS, "jsonBody": ERROR_NO_ETAG},
    }
    batch = _authorised({"method": "POST", "urlPath": BATCH_PATH})
    mappings["demo-batch-throttled"] = {
        "name": f"$batch: customer {throttled['number']} is throttled once inside a batch",
        "priority": 1,
        "scenarioName": "batch-throttle",
        "requiredScenarioState": "Started",
        "newScenarioState": "throttled-once",
        "request": {**batch, "bodyPatterns": [{"contains": throttled["id"]}]},
        "response": {
            "status": 200,
            "headers": JSON_HEADERS,
            "body": _batch_template(_etag(changed, 1), throttled["id"]),
            "transformers": ["response-template"],
        },
    }
    mappings["demo-batch"] = {
        "name": "$batch: each request answered on its own",
        "priority": 5,
        "request": batch,
        "response": {
            "status": 200,
            "headers": JSON_HEADERS,
            "body": _batch_template(_etag(changed, 1), None),
            "transformers": ["response-template"],
        },
    }
    return mappings


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


    mappings.update(write_back_mappings(public_customers, invoices))
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
