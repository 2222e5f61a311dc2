# src/managers_csv.py
"""Stream the staff directory (optional integer managerId) page by page into CSV."""

from __future__ import annotations

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()


def main() -> None:
    """One paged walk, written as output/staff.csv in bounded memory."""
    config = parse_args_and_load_config("Staff CSV")
    with create_rest_api(config) as api:
        TxoDataHandler().save(api.iter_pages("staff"), "output", "staff.csv")


if __name__ == "__main__":
    run_script(main)
