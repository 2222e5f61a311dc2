# src/users_report.py
"""Users report: every user of the API, saved as CSV (the README's first script, for users)."""

from __future__ import annotations

from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()


def main() -> None:
    """Read every user and save them as output/{org}-{env}-users_{UTC}.csv."""
    config = parse_args_and_load_config("Users report")
    with create_rest_api(config) as api:
        users = api.get_all("users")
    logger.info("Read %d users", len(users))
    TxoDataHandler().save(users, "output", timestamped_filename(config, "users", "csv"))


if __name__ == "__main__":
    run_script(main)
