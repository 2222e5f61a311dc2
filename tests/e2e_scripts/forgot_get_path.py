# src/forgot_get_path.py
"""A script that builds its output name from input and lets '..' slip in."""

from __future__ import annotations

from utils.load_n_save import TxoDataHandler
from utils.logger import setup_logger
from utils.script_runner import parse_args_and_load_config, run_script

logger = setup_logger()


def main() -> None:
    """Save a small file under a name that escapes output/."""
    parse_args_and_load_config("Forgot get_path", require_token=False)
    TxoDataHandler().save({"x": 1}, "output", "../x.json")


if __name__ == "__main__":
    run_script(main)
