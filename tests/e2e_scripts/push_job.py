# src/push_job.py
"""Push job: post orders, update stock, export; survives 429, 503, 202 and an expired token."""

from __future__ import annotations

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()


def main() -> None:
    """Check the API, post an order, put a stock level, run an export, save the outcome."""
    config = parse_args_and_load_config("Push job")
    logger.debug("Loaded config %s", config)  # a careless but real line: must be redacted
    with create_rest_api(config) as api:
        status = api.get("status")
        order = api.post("orders", {"sku": "A-1", "qty": 3})
        stock = api.put("inventory/A-1", {"level": 17})
        export = api.post("exports", {"dataset": "orders"})
    logger.info("Status %s, order %s, stock %s", status, order, stock)
    TxoDataHandler().save(
        {"status": status, "order": order, "stock": stock, "export": export},
        "output",
        timestamped_filename(config, "push", "json"),
    )


if __name__ == "__main__":
    run_script(main)
