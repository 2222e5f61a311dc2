"""Test script for the contract suite: a real script whose behaviour an env knob picks.

``CONTRACT_ACTION`` (tests only):

- ``leak``: log every text of the JSON list in the file ``CONTRACT_CORPUS`` every way a
  script or a library can (script logger, urllib3's logger, a child logger made now, the root
  logger, ``warnings.warn``, ``extra=``, an exception raised deep in a library and logged
  with ``logger.exception``, an uncaught exception in a thread, a failing finaliser), plus
  the token and every injected secret, embedded in words, URL-encoded and JSON-escaped;
- ``raise:Name``: raise ``utils.exceptions.Name`` (or ``RuntimeError``,
  ``KeyboardInterrupt``) inside ``main``;
- ``api``: GET ``/items`` through the toolkit's client and save the records to
  ``output/items.json`` (the run summary then has real counts);
- ``slow_save``: save ``output/data.jsonl`` whole, print ``first saved``, then save it again
  from a slow generator, printing ``second started`` once the rewrite is under way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests

from utils import exceptions
from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

SLOW_PAGES = 400
SLOW_STEP_SECONDS = 0.02
FIRST_RECORDS = 50
UNREACHABLE_PORT_URL = "http://127.0.0.1:9/x"
CONNECT_TIMEOUT_SECONDS = 0.5


def _library_failure(text: str) -> None:
    """Make a library raise with ``text`` inside its own exception message."""
    requests.get(
        UNREACHABLE_PORT_URL,
        params={"q": text},
        timeout=CONNECT_TIMEOUT_SECONDS,
    )


def _log_everywhere(text: str) -> None:
    logger.info("script: %s", text)
    logger.debug("script debug: %s", text)
    logging.getLogger("urllib3.connectionpool").debug('https://h:443 "GET /?%s HTTP/1.1" 200', text)
    logging.getLogger("urllib3.connectionpool").warning("Retrying after %s", text)
    logging.getLogger(f"late.child.{abs(hash(text))}").warning("child: %s", text)
    logging.warning("root: %s", text)
    warnings.warn(f"warned: {text}", stacklevel=1)
    logger.info("with extra", extra={"detail": text, "nested": {"items": [text]}})
    try:
        int(text)
    except ValueError:
        logger.exception("library refused a value")


def _leak(config: dict[str, Any]) -> None:
    with open(os.environ["CONTRACT_CORPUS"], encoding="utf-8") as handle:
        corpus: list[str] = json.load(handle)
    for text in corpus:
        _log_everywhere(text)
    secrets = [
        str(v)
        for k, v in config.items()
        if k.startswith("_") and k not in ("_org_id", "_env_type") and v
    ]
    for value in secrets:
        logger.info("plain %s; glued x%sx; url %s", value, value, quote(value, safe=""))
        logger.info("json %s", json.dumps({"note": value}))
        logger.warning("two lines: first\n%s\nlast", value)
        logger.info("%r", {"Authorization": f"Bearer {value}"})
        try:
            _library_failure(value)
        except requests.RequestException:
            logger.exception("request failed")
    thread = threading.Thread(target=_fail_in_thread, args=(secrets,), name="worker")
    thread.start()
    thread.join()
    _Finalised(" ".join(secrets))  # dropped at once: its __del__ fails


class _Finalised:
    """An object whose finaliser fails: Python can only report that ("Exception ignored")."""

    def __init__(self, detail: str):
        self.detail = detail

    def __del__(self) -> None:
        raise RuntimeError(f"finaliser failed with {self.detail}")


def _fail_in_thread(secrets: list[str]) -> None:
    raise RuntimeError(f"thread failed with {' '.join(secrets)}")


def _pages(count: int, slow: bool) -> Iterator[list[dict[str, int]]]:
    for number in range(count):
        if slow:
            time.sleep(SLOW_STEP_SECONDS)
        yield [{"page": number, "row": row} for row in range(3)]
        if number == 1 and slow:
            print("second started", flush=True)


def main() -> None:
    """Load the config like any script, then do what ``CONTRACT_ACTION`` says."""
    action = os.environ.get("CONTRACT_ACTION", "")
    require = os.environ.get("CONTRACT_REQUIRE_TOKEN", "1") == "1"
    config = parse_args_and_load_config("Contract test script", require_token=require)
    if action == "leak":
        _leak(config)
    elif action.startswith("raise:"):
        name = action.split(":", 1)[1]
        if name == "RuntimeError":
            raise RuntimeError("unexpected failure in the script")
        if name == "KeyboardInterrupt":
            raise KeyboardInterrupt
        raise getattr(exceptions, name)("contract failure", "contract fix", "contract example")
    elif action == "api":
        records = create_rest_api(config).get_all("items")
        TxoDataHandler().save(records, "output", "items.json")
    elif action == "slow_save":
        handler = TxoDataHandler()
        handler.save([{"page": 0, "row": n} for n in range(FIRST_RECORDS)], "output", "data.jsonl")
        print("first saved", flush=True)
        handler.save(_pages(SLOW_PAGES, slow=True), "output", "data.jsonl")
    print("done", flush=True)


if __name__ == "__main__":
    run_script(main)
