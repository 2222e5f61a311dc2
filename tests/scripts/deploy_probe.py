# tests/scripts/deploy_probe.py
"""The smallest toolkit script: load the config, save one JSON file of facts about the run
(in output/, and a copy in state/).

tests/test_deploy.py copies it into src/ of a container-like tree and runs it through the
container's entry point. With ``TXO_PROBE_WAIT_SECONDS`` set it then waits (after writing
``tmp/probe.ready``) so the test can send SIGTERM and check the exit code.
"""

from __future__ import annotations

import os
import sys
import time

from utils.load_n_save import TxoDataHandler
from utils.path_helpers import get_path
from utils.script_runner import parse_args_and_load_config, run_script

WAIT_ENV = "TXO_PROBE_WAIT_SECONDS"
READY_FILE = "probe.ready"


def main() -> None:
    """Save ``output/{org}-{env}-probe.json``; optionally wait to be terminated."""
    config = parse_args_and_load_config("Deploy probe", require_token=False)
    org, env = config["_org_id"], config["_env_type"]
    facts = {
        "org_id": org,
        "env_type": env,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "python": sys.executable,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "api_base_url": config["global"]["api-base-url"],
    }
    TxoDataHandler().save(facts, "output", f"{org}-{env}-probe.json")
    # state/ is a mount of its own (a volume, a PersistentVolumeClaim): show it is writable.
    TxoDataHandler().save(facts, "state", f"{org}-{env}-deploy_probe.json")
    wait = float(os.environ.get(WAIT_ENV, "0"))
    if wait > 0:
        get_path("tmp", READY_FILE).write_text("ready\n", encoding="utf-8")
        time.sleep(wait)


if __name__ == "__main__":
    run_script(main)
