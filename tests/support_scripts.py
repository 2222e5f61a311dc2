"""Run the scripts in ``tests/scripts/`` as real subprocesses in a scratch copy of the project.

Shared by the script runner, config and logging tests: :func:`make_project` copies the
toolkit, :class:`Project` writes its config and secrets and runs a script, :class:`Run` is
the outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tools.wiremock_server import WireMock

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 60
SIGNAL_WAIT = 30
# Variables the scripts read: the child sees only what a test passes on purpose.
SCRIPT_ENV_PREFIXES = ("TXO_", "PROBE_", "CONTRACT_")
# Each HelpfulError class a script can raise, and the exit code the run must end with.
ERROR_EXIT_CODES = [
    ("ConfigurationError", 2),
    ("ValidationError", 2),
    ("ApiAuthenticationError", 3),
    ("ApiOperationError", 4),
    ("ApiTimeoutError", 4),
    ("ApiRateLimitError", 4),
    ("CircuitOpenError", 4),
    ("FileOperationError", 5),
    ("PartialWriteError", 6),
    ("StateLockedError", 75),
    ("HelpfulError", 1),
]


class Project:
    """A scratch copy of the toolkit with its own config/, output/ and logs/."""

    def __init__(self, root: Path):
        self.root = root

    def write_config(self, data: Any, org: str = "acme", env: str = "test") -> Path:
        """Write ``data`` (bytes or text as given, else as JSON) as the org/env config."""
        path = self.root / "config" / f"{org}-{env}-config.json"
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    def write_secrets(
        self, data: Any, org: str = "acme", env: str = "test", mode: int = 0o600
    ) -> Path:
        """Write ``data`` (text as given, else as JSON) as the secrets file, with ``mode``."""
        path = self.root / "config" / f"{org}-{env}-config-secrets.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        path.chmod(mode)
        return path

    def command(self, script: str, *args: str) -> list[str]:
        return [sys.executable, "-m", f"tests.scripts.{script}", *args]

    def environment(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SCRIPT_ENV_PREFIXES)}
        env.pop("PYTHONPATH", None)
        env.update(extra or {})
        return env

    def run(self, script: str, *args: str, env: dict[str, str] | None = None) -> Run:
        """Run ``tests.scripts.<script>`` to its end in the project folder."""
        done = subprocess.run(
            self.command(script, *args),
            cwd=self.root,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr, self)

    def start(
        self, script: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start ``tests.scripts.<script>`` with piped output (for signal tests)."""
        return subprocess.Popen(
            self.command(script, *args),
            cwd=self.root,
            env=self.environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def log_text(self) -> str:
        return "".join(p.read_text() for p in sorted((self.root / "logs").glob("**/*.log")))

    def outputs(self) -> list[str]:
        folder = self.root / "output"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Run:
    """Outcome of one script run."""

    def __init__(self, code: int, stdout: str, stderr: str, project: Project):
        self.code, self.stdout, self.stderr, self.project = code, stdout, stderr, project

    def report(self) -> dict[str, Any]:
        """The JSON object the script printed last on stdout."""
        return dict(json.loads(self.stdout.strip().splitlines()[-1]))

    def __repr__(self) -> str:
        return f"Run(code={self.code}, stderr=\n{self.stderr})"


def make_project(root: Path) -> Project:
    """Copy utils/, schemas/, the test scripts and the example configs to ``root``."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "utils", root / "utils", ignore=skip)
    shutil.copytree(ROOT / "schemas", root / "schemas", ignore=skip)
    shutil.copytree(ROOT / "tests" / "scripts", root / "tests" / "scripts", ignore=skip)
    (root / "tests" / "__init__.py").touch()
    (root / "config").mkdir()
    for example in ROOT.joinpath("config").glob("*_example.json"):
        shutil.copy(example, root / "config" / example.name)
    return Project(root)


def wait_for_line(proc: subprocess.Popen[str], text: str) -> None:
    """Read ``proc``'s stdout until a line holds ``text``; fail the test if it never comes."""
    assert proc.stdout is not None
    deadline = time.monotonic() + SIGNAL_WAIT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"script never printed {text!r}: {proc.communicate()[1]}")


# -- a client-credentials config and its token endpoint (script-run tests) ----------------
CONTRACT_TOKEN_PATH = "/tenant-x/oauth2/v2.0/token"


def client_config(
    token_url: str | None, api_url: str = "https://api.example.com"
) -> dict[str, Any]:
    """A small config with client credentials and fast settings."""
    config: dict[str, Any] = {
        "global": {
            "api-base-url": api_url,
            "tenant-id": "tenant-x",
            "client-id": "client-42",
            "oauth-scope": "https://api.example.com/.default",
        },
        "script-behavior": {
            "api-delay-seconds": 0,
            "api-timeouts": {"rest-timeout-seconds": 1},
            "retry-strategy": {"max-retries": 2, "backoff-factor": 0.01},
            "jitter": {"min-factor": 1.0, "max-factor": 1.0},
        },
    }
    if token_url:
        config["global"]["oauth-token-url"] = token_url
    return config


def stub_contract_token(wm: WireMock, token: str, expires_in: Any = 3599, **extra: Any) -> None:
    wm.stub(
        {
            "request": {"method": "POST", "urlPath": CONTRACT_TOKEN_PATH},
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json"},
                "jsonBody": {
                    "token_type": "Bearer",
                    "expires_in": expires_in,
                    "access_token": token,
                },
            },
            **extra,
        }
    )
