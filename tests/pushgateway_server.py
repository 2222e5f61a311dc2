"""Start a real Prometheus Pushgateway for the metrics tests, fetching it when it is missing.

The binary comes from Debian's ``prometheus-pushgateway`` package, without root:
``apt-get download`` fetches the .deb and ``dpkg-deb -x`` unpacks it under
``.venv/debian/`` (:mod:`tools.debian_fetch`; a fresh machine fetches it once).
``$TXO_PUSHGATEWAY_BIN`` or a ``prometheus-pushgateway`` on ``PATH`` is used instead when
present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import requests

from tools import debian_fetch
from tools.wiremock_server import free_port, stop_process

PACKAGE = "prometheus-pushgateway"
BINARY = Path("usr") / "bin" / PACKAGE
ENV_BIN = "TXO_PUSHGATEWAY_BIN"
STARTUP_TIMEOUT = 30.0


class PushgatewayUnavailable(RuntimeError):
    """No binary here and no Debian tooling to fetch one."""


def find_binary() -> Path:
    """The Pushgateway binary: ``$TXO_PUSHGATEWAY_BIN``, on ``PATH``, or Debian's, unpacked.

    Raises:
        PushgatewayUnavailable: None here, and not a Debian-family machine to fetch it.
    """
    if os.environ.get(ENV_BIN):
        return Path(os.environ[ENV_BIN])
    on_path = shutil.which(PACKAGE)
    if on_path:
        return Path(on_path)
    try:
        return debian_fetch.unpacked(PACKAGE) / BINARY
    except debian_fetch.DebianToolsMissing as err:
        raise PushgatewayUnavailable(f"{err}; install {PACKAGE} or set {ENV_BIN}") from err


class Pushgateway:
    """A Pushgateway on a free port of 127.0.0.1, in memory (no persistence file), with its
    admin API on so tests can wipe it."""

    def __init__(self, binary: Path | None = None):
        self.binary = binary or find_binary()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Pushgateway:
        self._proc = subprocess.Popen(
            [
                str(self.binary),
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-admin-api",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"Pushgateway exited with {self._proc.returncode}: {err}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"Pushgateway at {self.url} not ready after {STARTUP_TIMEOUT:.0f}s")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            if self._proc.stderr:
                self._proc.stderr.close()

    def metrics(self) -> str:
        """The gateway's ``/metrics`` page, as Prometheus scrapes it."""
        response = requests.get(f"{self.url}/metrics", timeout=5)
        response.raise_for_status()
        return response.text

    def delete_all(self) -> None:
        """Forget every pushed group (between tests)."""
        requests.put(f"{self.url}/api/v1/admin/wipe", timeout=5).raise_for_status()
