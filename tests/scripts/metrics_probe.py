"""Test script for the run metrics: save one file, count the script's own counters, maybe fail.

``PROBE_COUNTERS="rows_exported=3,skipped=1"`` counts those; ``PROBE_FAIL=1`` then raises an
``ApiOperationError`` (exit 4) after the file is saved.
"""

from __future__ import annotations

import os

from utils import run_stats
from utils.exceptions import ApiOperationError
from utils.load_n_save import TxoDataHandler
from utils.script_runner import parse_args_and_load_config, run_script


def main() -> None:
    """Save ``output/{org}-{env}-metrics.json``, count, and fail when asked to."""
    config = parse_args_and_load_config("Metrics probe", require_token=False)
    TxoDataHandler().save(
        {"ok": True}, "output", f"{config['_org_id']}-{config['_env_type']}-metrics.json"
    )
    for pair in filter(None, os.environ.get("PROBE_COUNTERS", "").split(",")):
        name, _, amount = pair.partition("=")
        run_stats.count(name, int(amount))
    if os.environ.get("PROBE_FAIL") == "1":
        raise ApiOperationError(
            "probe failure", "probe fix", status_code=503, url="x", method="GET"
        )


if __name__ == "__main__":
    run_script(main)
