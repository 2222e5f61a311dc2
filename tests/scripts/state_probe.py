"""Test script: the incremental state through a real run, ended in the way a test asks.

Prints ``{"read": {...}}`` (the entries ``w``, ``a``, ``b``, ``c`` as loaded) on stdout, then sets the entries of
``PROBE_STATE_SET`` (a JSON object). Knobs: ``PROBE_CHECKPOINT=1`` commits them, prints
``checkpointed`` and then sets ``PROBE_STATE_AFTER``; ``PROBE_END`` ends the run: ``ok``
(default), ``HelpfulError`` / ``ValidationError`` (raised), ``api`` (a GET of ``missing`` on
the configured API, answered 404 there), ``wait`` (prints ``waiting``, sleeps for a signal).
"""

from __future__ import annotations

import json
import os
import time

from utils import exceptions
from utils.api_factory import create_rest_api
from utils.script_runner import parse_args_and_load_config, run_script
from utils.state import load_state

WAIT_SECONDS = 30
READ_KEYS = ("w", "a", "b", "c")


def _set_all(state: object, variable: str) -> None:
    for key, value in json.loads(os.environ.get(variable, "{}")).items():
        state.set(key, value)  # type: ignore[attr-defined]


def main() -> None:
    """Load the state, change it, and end as ``PROBE_END`` says."""
    config = parse_args_and_load_config("Probe the state store", require_token=False)
    state = load_state(config)
    print(json.dumps({"read": {k: state.get(k) for k in READ_KEYS}}), flush=True)
    _set_all(state, "PROBE_STATE_SET")
    if os.environ.get("PROBE_CHECKPOINT") == "1":
        state.commit()
        print("checkpointed", flush=True)
        _set_all(state, "PROBE_STATE_AFTER")
    end = os.environ.get("PROBE_END", "ok")
    if end == "api":
        with create_rest_api(config, require_auth=False) as api:
            api.get("missing")
    elif end == "wait":
        print("waiting", flush=True)
        time.sleep(WAIT_SECONDS)
    elif end != "ok":
        raise getattr(exceptions, end)("probe failure", "probe fix", "probe example")


if __name__ == "__main__":
    run_script(main)
