"""Run metrics for a Prometheus Pushgateway (DESIGN §9): one push at the end of every run.

Nothing happens unless ``TXO_PUSHGATEWAY_URL`` is set. The metrics of one script for one
org/env form one Pushgateway group, grouping key ``script``/``org``/``env`` under job
:data:`JOB`:

* ``txo_run_duration_seconds``, ``txo_run_exit_code``, ``txo_run_api_calls``,
  ``txo_run_files_written``, and ``txo_run_counter{name="…"}`` for each counter a script
  counted with ``run_stats``;
* ``txo_run_last_success_timestamp_seconds``, only when the run succeeded.

Decisions:

* A successful run replaces its whole group (HTTP PUT): counters it no longer counts go.
  A failed run only replaces the metrics it pushes (HTTP POST), so the last success
  timestamp of an earlier run stays in place: "no success in 26 hours" stays visible however
  many failures follow.
* All metrics are gauges: each value belongs to the last run, not to a running total.
* The push waits at most :data:`PUSH_TIMEOUT_SECONDS`; a failure is one WARNING and never
  changes the run's exit code. ``prometheus_client`` is imported only when a push happens, so
  runs without a gateway start as fast as before.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
from collections.abc import Callable, Mapping

from utils import _run_control as run_control, logger as txo_logger, run_stats

log = logging.getLogger(__name__)

ENV_PUSHGATEWAY_URL = "TXO_PUSHGATEWAY_URL"
JOB = "txo"
PUSH_TIMEOUT_SECONDS = 5.0
EXIT_OK = 0


def grouping_key() -> dict[str, str] | None:
    """``{"script", "org", "env"}`` of this run, or None before the org and env are known.

    The logger holds the run's org and env (it names the log file after them) and
    ``run_control`` the script's name, so the metrics read them there instead of keeping a
    second copy.
    """
    context = txo_logger.run_context()
    org, env = context["org"], context["env"]
    if not org or not env:
        return None
    return {"script": run_control.script_name(), "org": org, "env": env}


def push_run_metrics(
    exit_code: int,
    duration_s: float,
    counts: Mapping[str, int],
    counters: Mapping[str, int],
    *,
    url: str | None = None,
    clock: Callable[[], float] = time.time,
    timeout: float = PUSH_TIMEOUT_SECONDS,
) -> bool:
    """Push this run's metrics when a Pushgateway is configured; never raise.

    Args:
        exit_code: The run's final exit code.
        duration_s: How long the run took, in seconds.
        counts: ``run_stats.snapshot()`` at the end of the run (the built-in counters).
        counters: ``run_stats.script_counters()``: the script's own, one
            ``txo_run_counter{name=…}`` each.
        url: The Pushgateway; ``$TXO_PUSHGATEWAY_URL`` when None. Empty: nothing is pushed.
        clock: Wall clock for the last-success timestamp (seconds since the epoch).
        timeout: Seconds the push may take before it is given up.

    Returns:
        True when the gateway accepted the push; False when none is configured, the run's
        org/env are unknown (a usage error before they were read), or the push failed (one
        WARNING is logged).
    """
    gateway = os.environ.get(ENV_PUSHGATEWAY_URL, "") if url is None else url
    if not gateway.strip():
        return False
    key = grouping_key()
    if key is None:
        log.debug("Metrics not pushed: the run ended before its org and env were known.")
        return False

    from prometheus_client import CollectorRegistry, Gauge
    from prometheus_client.exposition import push_to_gateway, pushadd_to_gateway

    registry = CollectorRegistry()

    def gauge(name: str, help_text: str, value: float) -> None:
        Gauge(name, help_text, registry=registry).set(value)

    gauge("txo_run_duration_seconds", "Duration of the last run.", duration_s)
    gauge("txo_run_exit_code", "Exit code of the last run (0 is success).", exit_code)
    gauge("txo_run_api_calls", "API calls of the last run.", counts.get(run_stats.API_CALLS, 0))
    gauge(
        "txo_run_files_written",
        "Files written by the last run.",
        counts.get(run_stats.FILES_WRITTEN, 0),
    )
    if counters:
        counter = Gauge(
            "txo_run_counter",
            "The script's own counters in the last run.",
            ["name"],
            registry=registry,
        )
        for name, value in counters.items():
            counter.labels(name=name).set(value)
    success = exit_code == EXIT_OK
    if success:
        gauge(
            "txo_run_last_success_timestamp_seconds",
            "When the last successful run ended (seconds since the epoch).",
            clock(),
        )
    # PUT replaces the group; POST replaces only the metrics sent, keeping the last success.
    push = push_to_gateway if success else pushadd_to_gateway
    try:
        push(gateway, job=JOB, registry=registry, grouping_key=key, timeout=timeout)
    except (OSError, ValueError, http.client.HTTPException) as err:
        log.warning("Run metrics not pushed to the Pushgateway at %s: %s", gateway, err)
        return False
    log.debug("Run metrics pushed to %s for %s", gateway, key)
    return True
