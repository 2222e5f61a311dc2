# src/stream_export.py
"""Stream every record of a big collection straight into JSON Lines, CSV and Parquet."""

from __future__ import annotations

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

FORMATS = ("jsonl", "csv", "parquet")


def main() -> None:
    """One paged walk per format, each written page by page (bounded memory)."""
    config = parse_args_and_load_config("Stream export")
    handler = TxoDataHandler()
    with create_rest_api(config) as api:
        for ext in FORMATS:
            handler.save(api.iter_pages("records"), "output", f"records.{ext}")


if __name__ == "__main__":
    run_script(main)
