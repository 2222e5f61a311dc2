"""Test script: load the config like a real script and print what it got as JSON on stdout.

Environment knobs (tests only): ``PROBE_REQUIRE_TOKEN=0`` loads without a token,
``PROBE_TOKEN_CALLS=N`` asks the shared provider N more times, ``PROBE_REFRESH=1`` refreshes
once, ``PROBE_RAISE=ClassName`` raises that exception from ``utils.exceptions`` (or
``RuntimeError`` / ``SystemExit7``) after loading, ``PROBE_OPTIONS=1`` gives the script its
own ``--limit N`` option, ``PROBE_COUNT=name=N,other=M`` counts into script counters,
``PROBE_API=name`` GETs ``PROBE_API_PATH`` (default ``ping``) from the named API.
"""

from __future__ import annotations

import argparse
import json
import os

from utils import _auth as auth, exceptions, run_stats
from utils.api_factory import create_rest_api
from utils.script_runner import parse_args_and_load_config, run_script


def add_options(parser: argparse.ArgumentParser) -> None:
    """The probe's own option, when ``PROBE_OPTIONS=1``."""
    parser.add_argument("--limit", type=int, default=0, help="process at most N records")


def main() -> None:
    """Load, exercise the token provider, report, and optionally fail."""
    require = os.environ.get("PROBE_REQUIRE_TOKEN", "1") == "1"
    own = add_options if os.environ.get("PROBE_OPTIONS") == "1" else None
    config = parse_args_and_load_config(
        "Probe the config loader", require_token=require, arguments=own
    )
    report = {"config": config, "tokens": []}
    if require:
        provider = auth.get_token_provider(config)
        report["tokens"] = [
            provider.get_token() for _ in range(int(os.environ.get("PROBE_TOKEN_CALLS", "0")))
        ]
        if os.environ.get("PROBE_REFRESH") == "1":
            report["refreshed"] = provider.refresh()
            report["after_refresh"] = provider.get_token()
    for item in filter(None, os.environ.get("PROBE_COUNT", "").split(",")):
        name, _, amount = item.partition("=")
        run_stats.count(name, int(amount or "1"))
    if os.environ.get("PROBE_API"):
        with create_rest_api(config, api=os.environ["PROBE_API"]) as api:
            report["api_answer"] = api.get(os.environ.get("PROBE_API_PATH", "ping"))
    print(json.dumps(report), flush=True)
    raise_name = os.environ.get("PROBE_RAISE")
    if raise_name == "RuntimeError":
        raise RuntimeError("boom from the probe")
    if raise_name == "SystemExit7":
        raise SystemExit(7)
    if raise_name:
        raise getattr(exceptions, raise_name)("probe failure", "probe fix", "probe example")


if __name__ == "__main__":
    run_script(main)
