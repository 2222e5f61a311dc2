"""src/block_overdue_customers.py end to end against the demo API on a real WireMock.

The expected customers are worked out here from the demo's files in ``mock-api/`` (not with
the script's code); the server's request journal proves what was written, with which ETag.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support_demo import MOCK_API, demo_api, make_demo_project, run_demo_script
from tools.wiremock_server import WireMock

pytestmark = pytest.mark.integration
__all__ = ["demo_api"]  # the module's WireMock fixture, imported for pytest to find

COMPANY_PATH = "/api/v2.0/companies(8f2d1c3a-5b7e-4c9d-a1f0-3e6b2d4c5a71)"
BATCH = f"{COMPANY_PATH}/$batch"
AS_OF = "2025-06-30"
DAYS = 60


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _invoices() -> list[dict[str, Any]]:
    pages = sorted(MOCK_API.glob("__files/demo-salesInvoices-page-*.json"))
    return [r for page in pages for r in _json(page)["value"]]


def _customers() -> dict[str, dict[str, Any]]:
    """Every customer the demo serves one by one, by id, as its first GET answers."""
    found = {}
    for path in MOCK_API.glob("mappings/demo-customer-C*.json"):
        mapping = _json(path)
        first_read = mapping.get("requiredScenarioState", "Started") == "Started"
        if mapping["request"]["method"] == "GET" and first_read:
            record = mapping["response"]["jsonBody"]
            found[record["id"]] = record
    return found


CUSTOMERS = _customers()
CUTOFF = date.fromisoformat(AS_OF) - timedelta(days=DAYS)
OVERDUE = sorted(
    {
        CUSTOMERS[i["customerId"]]["number"]
        for i in _invoices()
        if i["status"] == "Open"
        and i["remainingAmount"] > 0
        and date.fromisoformat(i["dueDate"]) < CUTOFF
    }
)
CHANGED, THROTTLED = OVERDUE[0], OVERDUE[1]  # as mock-api/generate_data.py picks them
BY_NUMBER = {c["number"]: c for c in CUSTOMERS.values()}


def path_of(number: str) -> str:
    return f"{COMPANY_PATH}/customers({BY_NUMBER[number]['id']})"


@pytest.fixture
def project(tmp_path: Path, demo_api: WireMock) -> Path:
    """A project aimed at the demo API, whose scenarios and journal start afresh."""
    return make_demo_project(tmp_path, demo_api)


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_demo_script(project, "block_overdue_customers", "--as-of", AS_OF, *args)


def report_of(project: Path, pattern: str) -> pd.DataFrame:
    (path,) = sorted((project / "output").glob(pattern))
    return pd.read_csv(path, dtype=str, keep_default_na=False).set_index("key")


def test_the_demo_has_customers_to_block_and_one_of_each_outcome() -> None:
    assert len(OVERDUE) >= 10
    assert all(BY_NUMBER[n]["@odata.etag"].startswith('W/"') for n in OVERDUE)


def test_a_run_blocks_each_overdue_customer_once_with_its_etag_and_exits_6(
    project: Path, demo_api: WireMock
) -> None:
    done = run(project)

    assert done.returncode == 6, done.stderr
    assert "Traceback" not in done.stderr
    assert f"First: {CHANGED}: HTTP 412 Precondition Failed" in done.stderr
    report = report_of(project, "demo-test-blocked-customers_*.csv")
    assert list(report.index) == OVERDUE  # every overdue customer, by number
    assert report.loc[CHANGED, "status"] == "failed"
    assert report.loc[CHANGED, "http_status"] == "412"
    assert "changed since it was read" in report.loc[CHANGED, "error"]
    assert report.loc[THROTTLED, ["status", "attempts"]].tolist() == ["ok", "2"]
    others = report.drop(index=[CHANGED, THROTTLED])
    assert set(others["status"]) == {"ok"} and set(others["attempts"]) == {"1"}
    # the server: one PATCH per customer (two for the throttled one), each with its ETag
    patches = demo_api.find("PATCH")
    assert sorted(p["url"] for p in patches) == sorted(
        [path_of(n) for n in OVERDUE] + [path_of(THROTTLED)]
    )
    for patch in patches:
        number = next(n for n in OVERDUE if patch["url"] == path_of(n))
        assert patch["headers"]["If-Match"] == BY_NUMBER[number]["@odata.etag"]
        assert json.loads(patch["body"]) == {"blocked": "Invoice"}
    assert "--retry-failed demo-test-blocked-customers_" in done.stderr


def test_a_retry_run_blocks_only_the_failed_customer_with_its_new_etag(
    project: Path, demo_api: WireMock
) -> None:
    first = run(project)
    assert first.returncode == 6, first.stderr
    (report,) = (project / "output").glob("demo-test-blocked-customers_*.csv")
    demo_api.reset_journal()

    again = run(project, "--retry-failed", report.name)

    assert again.returncode == 0, again.stderr
    retry = report_of(project, "demo-test-blocked-customers-retry_*.csv")
    assert list(retry.index) == [CHANGED] and retry.loc[CHANGED, "status"] == "ok"
    (patch,) = demo_api.find("PATCH")
    assert patch["url"] == path_of(CHANGED)
    assert patch["headers"]["If-Match"] != BY_NUMBER[CHANGED]["@odata.etag"]  # read again
    assert [e["url"] for e in demo_api.find("GET")] == [path_of(CHANGED)]  # no invoices read


def test_batch_mode_sends_envelopes_and_the_throttled_customer_in_a_later_one(
    project: Path, demo_api: WireMock
) -> None:
    done = run(project, "--batch")

    assert done.returncode == 6, done.stderr
    report = report_of(project, "demo-test-blocked-customers_*.csv")
    assert report["status"].value_counts().to_dict() == {"ok": len(OVERDUE) - 1, "failed": 1}
    assert report.loc[THROTTLED, "attempts"] == "2"
    envelopes = [json.loads(e["body"])["requests"] for e in demo_api.find("POST", BATCH)]
    assert [len(e) for e in envelopes] == [len(OVERDUE), 1]  # update-batch-size 50
    assert envelopes[1][0]["url"] == f"customers({BY_NUMBER[THROTTLED]['id']})"
    assert demo_api.count("PATCH") == 0


def test_a_dry_run_writes_nothing(project: Path, demo_api: WireMock) -> None:
    done = run(project, "--dry-run")

    assert done.returncode == 0, done.stderr
    assert demo_api.count("PATCH") == 0 and demo_api.count("POST", BATCH) == 0
    assert done.stderr.count("DRY RUN: would PATCH") == len(OVERDUE)
    report = report_of(project, "demo-test-blocked-customers-dry-run_*.csv")
    assert set(report["status"]) == {"dry-run"} and len(report) == len(OVERDUE)
    assert not list((project / "output").glob("demo-test-blocked-customers_*"))
