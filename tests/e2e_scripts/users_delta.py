# src/users_delta.py
"""Graph user sync with delta queries: the first run reads every user, later runs the changes.

The delta link the last pull ended with is kept in the state; the next run starts from it.
When Graph has forgotten it (410 Gone), the pull starts over and the output says ``full``:
replace what you hold rather than merge.
"""

from __future__ import annotations

from typing import Any

from utils.api_factory import ApiManager
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script
from utils.state import load_state

logger = setup_logger()

DELTA_PATH = "users/delta"
DELTA_KEY = "users_delta_link"
SELECT = {"$select": "id,displayName,mail,department"}


def main() -> None:
    """Pull the user changes since the saved delta link, save them, keep the new link."""
    config = parse_args_and_load_config("Graph user delta sync")
    state = load_state(config)
    saved_link = state.get(DELTA_KEY)
    changed: list[dict[str, Any]] = []
    removed: list[str] = []
    with ApiManager(config) as manager:
        pull = manager.get_rest_api().delta(DELTA_PATH, saved_link, params=SELECT)
        for page in pull.pages():
            for user in page:
                if "@removed" in user:
                    removed.append(user["id"])
                else:
                    changed.append(user)
    kind = "full" if saved_link is None or pull.resynced else "changes"
    logger.info("Users: %s pull, %d changed, %d removed", kind, len(changed), len(removed))
    TxoDataHandler().save(
        {"kind": kind, "changed": changed, "removed": removed},
        "output",
        timestamped_filename(config, "users-delta", "json"),
    )
    state.set(DELTA_KEY, pull.delta_link)  # committed once main() returns normally


if __name__ == "__main__":
    run_script(main)
