# src/graph_sync.py
"""Graph-style user sync: read every user, save a report in four formats, patch the changed."""

from __future__ import annotations

from typing import Any

import pandas as pd

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

PAGE_SIZE_ASKED = 100
REPORT_FORMATS = ("csv", "xlsx", "parquet", "json")


def main() -> None:
    """Read users over paged results, save them, and PATCH those whose department changed."""
    config = parse_args_and_load_config("Graph-style user sync")
    handler = TxoDataHandler()
    with create_rest_api(config) as api:
        users = api.get_all("users", params={"$top": PAGE_SIZE_ASKED})
        logger.info("Read %d users", len(users))
        frame = pd.DataFrame(users)
        frame["department"] = frame["department"].str.strip().str.title()
        frame["createdDateTime"] = pd.to_datetime(frame["createdDateTime"], utc=True)
        frame["changed"] = frame["department"] != pd.DataFrame(users)["department"]
        for ext in REPORT_FORMATS:
            handler.save(frame, "output", timestamped_filename(config, "users", ext))
        changed = frame[frame["changed"]][["id", "department"]].to_dict("records")

        def push(record: dict[str, Any]) -> Any:
            """PATCH one user's cleaned department."""
            return api.patch(f"users/{record['id']}", {"department": record["department"]})

        results = api.map(push, changed)
    logger.info("Patched %d users", len(results))
    handler.save(
        {"read": len(users), "patched": len(results)},
        "output",
        timestamped_filename(config, "sync-summary", "json"),
    )


if __name__ == "__main__":
    run_script(main)
