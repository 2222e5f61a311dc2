# src/long_pager.py
"""Long paging loop: stream a slow, many-page collection into a JSON Lines file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()


def main() -> None:
    """Save events.csv first, then stream every page of events into events.jsonl."""
    config = parse_args_and_load_config("Long pager")
    handler = TxoDataHandler()
    with create_rest_api(config) as api:
        handler.save([{"started": True}], "output", "started.csv")

        def pages() -> Iterator[list[Any]]:
            """The event pages, announcing each one."""
            for number, page in enumerate(api.iter_pages("events"), start=1):
                logger.info("Page %d read (%d events)", number, len(page))
                yield page

        handler.save(pages(), "output", "events.jsonl")


if __name__ == "__main__":
    run_script(main)
