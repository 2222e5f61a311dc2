# src/bulk_patch.py
"""Bulk update: PATCH many records in parallel, then save what the API answered."""

from __future__ import annotations

from typing import Any

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

RECORDS = 200


def main() -> None:
    """PATCH devices 0..RECORDS-1 with a new ring, in parallel."""
    config = parse_args_and_load_config("Bulk patch")
    with create_rest_api(config) as api:

        def push(number: int) -> Any:
            """PATCH one device."""
            return api.patch(f"devices/{number}", {"ring": "stable"})

        results = api.map(push, range(RECORDS))
    TxoDataHandler().save(results, "output", timestamped_filename(config, "patched", "json"))


if __name__ == "__main__":
    run_script(main)
