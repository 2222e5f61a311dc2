# src/two_threads.py
"""Two worker threads share one client from ApiManager: the rate limit holds for both."""

from __future__ import annotations

import threading

from utils.api_factory import ApiManager
from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()

CALLS_PER_THREAD = 15


def main() -> None:
    """Each thread GETs its own pings; the results are saved as JSON."""
    config = parse_args_and_load_config("Two threads")
    results: dict[str, list[object]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    with ApiManager(config) as manager:
        api = manager.get_rest_api()
        same = manager.get_rest_api() is api

        def work(name: str) -> None:
            """GET this thread's pings in order."""
            try:
                for number in range(CALLS_PER_THREAD):
                    results[name].append(api.get(f"ping/{name}/{number}"))
            except Exception as err:  # reported by the main thread below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(n,)) for n in results]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    TxoDataHandler().save({"same_client": same, **results}, "output", "pings.json")


if __name__ == "__main__":
    run_script(main)
