# src/write_then_fail.py
"""Write a customer file, then stream invoices page by page; the invoice walk fails."""

from __future__ import annotations

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()


def main() -> None:
    """Save customers.csv whole, then invoices.jsonl and invoices.parquet from a stream."""
    config = parse_args_and_load_config("Write then fail")
    handler = TxoDataHandler()
    with create_rest_api(config) as api:
        handler.save(api.get_all("customers"), "output", "customers.csv")
        handler.save(api.iter_pages("invoices"), "output", "invoices.jsonl")


if __name__ == "__main__":
    run_script(main)
