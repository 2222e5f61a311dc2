# src/item_checker.py
"""Item checker: GET items one by one, skip the ones that fail, stop when the breaker opens."""

from __future__ import annotations

from utils.api_factory import create_rest_api
from utils.exceptions import ApiOperationError, CircuitOpenError
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

ITEMS = 10


def main() -> None:
    """Read items 1..ITEMS; a failed item is logged and skipped, an open breaker ends the run."""
    config = parse_args_and_load_config("Item checker")
    with create_rest_api(config) as api:
        for number in range(1, ITEMS + 1):
            try:
                api.get(f"items/{number}")
            except CircuitOpenError:
                raise
            except ApiOperationError as err:
                logger.warning("Item %d skipped: %s", number, err.what_went_wrong)


if __name__ == "__main__":
    run_script(main)
