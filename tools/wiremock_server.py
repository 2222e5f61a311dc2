"""Start and drive a real WireMock: in Docker via testcontainers when an engine is reachable,
else the standalone jar (shipped by the PyPI package ``wiremock``) under the machine's Java.

Used by the test suite, the benchmarks and ``make demo`` / ``make mock-api-up``::

    python -m tools.wiremock_server start --root mock-api --port 8089
    python -m tools.wiremock_server stop
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The jar the PyPI package ships is WireMock 2.35.1: Docker runs the same version, so the
# tests, the demo and docker-compose.yml see one WireMock (tests/test_deploy_static.py).
DOCKER_IMAGE = "wiremock/wiremock:2.35.1"
STARTUP_TIMEOUT = 90.0
PID_FILE = PROJECT_ROOT / "tmp" / "wiremock.pid"
LOG_FILE = PROJECT_ROOT / "tmp" / "wiremock.log"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_jar() -> str:
    """Return the WireMock standalone jar: ``$WIREMOCK_JAR`` or the one the PyPI package ships."""
    if os.environ.get("WIREMOCK_JAR"):
        return os.environ["WIREMOCK_JAR"]
    import wiremock  # the PyPI package; only its jar is used

    jars = sorted(glob.glob(os.path.join(os.path.dirname(wiremock.__file__), "server", "*.jar")))
    if not jars:
        raise RuntimeError("No WireMock jar found: pip install wiremock, or set WIREMOCK_JAR.")
    return jars[-1]


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Terminate ``proc`` and wait for it; kill it when it outlives ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def docker_engine_reachable() -> bool:
    """True when a Docker engine answers (then WireMock runs as a container)."""
    if os.environ.get("TXO_WIREMOCK_MODE") == "jar" or not shutil.which("docker"):
        return False
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def wait_healthy(base_url: str, timeout: float = STARTUP_TIMEOUT, proc: Any = None) -> None:
    """Poll the admin API until it answers 200, or raise with what went wrong."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"WireMock exited with code {proc.returncode}; see {LOG_FILE}")
        try:
            if requests.get(f"{base_url}/__admin/mappings", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"WireMock at {base_url} not healthy after {timeout:.0f}s")


class WireMock:
    """A running WireMock and a small admin client for it.

    Args:
        root_dir: Folder with ``mappings/`` and ``__files/`` to serve; an empty one if None.
        port: Port to listen on (127.0.0.1); a free one if None.
    """

    def __init__(self, root_dir: str | Path | None = None, port: int | None = None):
        self.root_dir = Path(root_dir) if root_dir else Path(tempfile.mkdtemp(prefix="wm-"))
        (self.root_dir / "mappings").mkdir(parents=True, exist_ok=True)
        (self.root_dir / "__files").mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._container: Any = None
        self.session = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> WireMock:
        """Start WireMock and wait until it is healthy."""
        if docker_engine_reachable():
            self._start_container()
        else:
            self._start_jar()
        return self

    def _start_jar(self) -> None:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        log = open(LOG_FILE, "ab")  # noqa: SIM115 - handed to the child process
        cmd = [
            os.environ.get("JAVA", "java"),
            "-Xss512k",
            "-jar",
            find_jar(),
            "--port",
            str(self.port),
            "--bind-address",
            "127.0.0.1",
            "--root-dir",
            str(self.root_dir),
            "--disable-banner",
            "--local-response-templating",
            "--container-threads",
            "64",
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        wait_healthy(self.base_url, proc=self._proc)

    def _start_container(self) -> None:
        from testcontainers.core.container import DockerContainer

        container = (
            DockerContainer(DOCKER_IMAGE)
            .with_exposed_ports(8080)
            .with_volume_mapping(str(self.root_dir.resolve()), "/home/wiremock", "ro")
            .with_command("--disable-banner --local-response-templating --container-threads 64")
        )
        container.start()
        self._container = container
        self.port = int(container.get_exposed_port(8080))
        self.base_url = f"http://{container.get_container_host_ip()}:{self.port}"
        wait_healthy(self.base_url)

    def stop(self) -> None:
        """Stop WireMock (idempotent)."""
        self.session.close()
        if self._proc is not None:
            stop_process(self._proc)
        if self._container is not None:
            self._container.stop()
            self._container = None

    def __enter__(self) -> WireMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin API -------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop every stub mapping, the request journal and scenario states."""
        self.session.post(f"{self.base_url}/__admin/reset", timeout=10).raise_for_status()
        # /__admin/reset reloads file mappings; drop those too so each test starts empty.
        self.session.delete(f"{self.base_url}/__admin/mappings", timeout=10).raise_for_status()
        self.session.delete(f"{self.base_url}/__admin/requests", timeout=10).raise_for_status()

    def reset_journal(self) -> None:
        """Forget the requests seen so far, keeping the mappings."""
        self.session.delete(f"{self.base_url}/__admin/requests", timeout=10).raise_for_status()

    def stub(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """Add one stub mapping (WireMock JSON format) and return it as stored."""
        r = self.session.post(f"{self.base_url}/__admin/mappings", json=mapping, timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def requests(self) -> list[dict[str, Any]]:
        """Every request in the journal, oldest first (the server's own record)."""
        r = self.session.get(f"{self.base_url}/__admin/requests", timeout=10)
        r.raise_for_status()
        # The journal lists the newest first; reversed, requests logged within the same
        # millisecond keep the order they arrived in (the sort by loggedDate is stable).
        items = [e["request"] for e in reversed(r.json()["requests"])]
        return sorted(items, key=lambda req: req.get("loggedDate", 0))

    def count(
        self, method: str = "ANY", url_path: str | None = None, url: str | None = None
    ) -> int:
        """How many requests the server received that match ``method`` and path or url."""
        pattern: dict[str, Any] = {"method": method}
        if url_path is not None:
            pattern["urlPath"] = url_path
        if url is not None:
            pattern["url"] = url
        r = self.session.post(f"{self.base_url}/__admin/requests/count", json=pattern, timeout=10)
        r.raise_for_status()
        return int(r.json()["count"])

    def find(self, method: str = "ANY", url_path: str | None = None) -> list[dict[str, Any]]:
        """The journal entries matching ``method`` and ``url_path``, oldest first."""
        pattern: dict[str, Any] = {"method": method}
        if url_path is not None:
            pattern["urlPath"] = url_path
        r = self.session.post(f"{self.base_url}/__admin/requests/find", json=pattern, timeout=10)
        r.raise_for_status()
        return sorted(r.json()["requests"], key=lambda req: req.get("loggedDate", 0))


# -- command line for make demo / mock-api-up ------------------------------------------------
def _cli_pid_alive() -> bool:
    """True when the pid file names a running demo API (a compose service counts as running)."""
    pid = PID_FILE.read_text().strip()
    if pid == "compose":
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cli_start(root: str, port: int) -> int:
    if PID_FILE.exists():
        if _cli_pid_alive():
            print(
                f"WireMock already running (pid file {PID_FILE}); run 'make mock-api-down' first."
            )
            return 1
        PID_FILE.unlink()  # left behind by a run that was killed: the process is gone
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    compose = docker_engine_reachable() and shutil.which("docker")
    if not compose and not _port_free(port):
        print(
            f"Port {port} on 127.0.0.1 is already in use, so the demo API cannot listen there. "
            f"Stop what uses it (e.g. 'ss -ltnp | grep :{port}'), or run the API elsewhere with "
            "DEMO_PORT=… and point config/demo-test-config.json at that port.",
            file=sys.stderr,
        )
        return 1
    if compose:
        done = subprocess.run(["docker", "compose", "up", "-d", "--wait", "wiremock"], check=False)
        if done.returncode == 0:
            PID_FILE.write_text("compose\n")
            print(f"Demo API (docker compose) at http://127.0.0.1:{port}")
            return 0
        print("docker compose failed; falling back to the standalone jar.")
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            [
                os.environ.get("JAVA", "java"),
                "-jar",
                find_jar(),
                "--port",
                str(port),
                "--bind-address",
                "127.0.0.1",
                "--root-dir",
                str(Path(root).resolve()),
                "--disable-banner",
                "--local-response-templating",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    PID_FILE.write_text(f"{proc.pid}\n")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc=proc)
    except RuntimeError as err:
        _cli_stop()
        print(f"Demo API failed to start: {err}", file=sys.stderr)
        return 1
    print(f"Demo API (WireMock jar, pid {proc.pid}) at http://127.0.0.1:{port}")
    return 0


def _cli_stop() -> int:
    if not PID_FILE.exists():
        print("Demo API not running.")
        return 0
    pid = PID_FILE.read_text().strip()
    if pid == "compose":
        subprocess.run(["docker", "compose", "stop", "wiremock"], check=False)
    else:
        try:
            os.kill(int(pid), signal.SIGTERM)
            for _ in range(50):
                os.kill(int(pid), 0)
                time.sleep(0.1)
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    PID_FILE.unlink(missing_ok=True)
    print("Demo API stopped.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``start [--root DIR] [--port N]`` or ``stop``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--root", default=str(PROJECT_ROOT / "mock-api"))
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args(argv)
    if args.action == "start":
        return _cli_start(args.root, args.port)
    if args.action == "stop":
        return _cli_stop()
    print(json.dumps({"running": PID_FILE.exists()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
