"""``make image-test``: build the container image and run it for real against the demo API.

What it proves (DESIGN §9): the image builds from the Dockerfile with its base as a build
argument; run with a read-only root, no capabilities, a tmpfs on ``/app/tmp`` and config
mounted read-only, as uid 10001 and as the caller's uid (``--user``; root's stand-in is uid
12345), the demo report is written to the output mount and a script's state to the state
mount; SIGTERM ends a run with 143; a missing config ends it with 2. Then it prints the
image's size and what makes it up.

The engine is Docker when one answers, else podman. Without podman, as root on a Debian
machine, it installs ``podman buildah runc fuse-overlayfs uidmap`` (and ``tini``,
``debootstrap`` when needed) with apt-get, and says so. Podman runs with its own
``containers.conf`` (``tmp/image-test/containers.conf``): runtime ``runc``, ulimits within
this machine's hard limits, ``init_path`` ``/usr/bin/tini-static``. When the base image
cannot be pulled (no registry access), a stand-in base is built from Debian bookworm's
packages with debootstrap (Python 3.11 as ``python``, this machine's CA bundle so pip works
behind its TLS proxy) and the output says so. Any step that cannot run fails the target: it
never skips.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.wiremock_server import WireMock

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "tmp" / "image-test"
IMAGE = "localhost/txo-batch-toolkit:image-test"
STANDIN = "localhost/txo-standin-base:bookworm"
STANDIN_SUITE = "bookworm"
STANDIN_MIRROR = "http://deb.debian.org/debian"
STANDIN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PODMAN_PACKAGES = ["podman", "buildah", "runc", "fuse-overlayfs", "uidmap"]
TINI = Path("/usr/bin/tini-static")
ULIMIT_CAP = 16384  # runc cannot set a container's limit to the host's own hard limit here
RUNTIME_USER = "10001:10001"
ROOT_STAND_IN_UID = 12345  # `--user $(id -u)` when the caller is root: an unknown uid instead
PROBE = ROOT / "tests" / "scripts" / "deploy_probe.py"
PULL_TIMEOUT = 120
BUILD_TIMEOUT = 1800
RUN_TIMEOUT = 180
EXIT_TERMINATED = 143
EXIT_USAGE = 2
SITE = "/opt/venv/lib/python3.11/site-packages"
PARTS = ("pandas", "pyarrow", "numpy", "numpy.libs")


class Failed(Exception):
    """A check or a step failed: the message says which, and the target fails."""


def say(message: str) -> None:
    print(f"image-test: {message}", flush=True)


def run(
    command: Sequence[str], timeout: float = RUN_TIMEOUT, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload]
        list(command), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages as root, saying which; fail loudly when that is impossible."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Failed(
            f"{', '.join(packages)} needed and not installed; only root on Debian can install "
            f"them here. Install them: sudo apt-get install -y {' '.join(packages)}"
        )
    say(f"installing with apt-get: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1"}
    run(["apt-get", "update", "-qq"], timeout=600, env=env)
    done = run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        timeout=1200,
        env=env,
    )
    if done.returncode != 0:
        raise Failed(f"apt-get install {' '.join(packages)} failed:\n{done.stdout}{done.stderr}")


# -- the engine --------------------------------------------------------------------------------
def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        done = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=15)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def podman_conf() -> Path:
    """A containers.conf for this machine: runc, ulimits it can set, tini as --init."""
    limits = []
    for name, kind in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(kind)[1]
        value = ULIMIT_CAP if hard == resource.RLIM_INFINITY else min(hard, ULIMIT_CAP)
        limits.append(f'"{name}={value}:{value}"')
    conf = WORK / "containers.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "# Written by tools/image_test.py for this machine.\n"
        "[containers]\n"
        f"default_ulimits = [{', '.join(limits)}]\n"
        f'init_path = "{TINI}"\n'
        "[engine]\n"
        'runtime = "runc"\n',
        encoding="utf-8",
    )
    return conf


def engine() -> str:
    """``docker`` when an engine answers, else a working ``podman`` (installed if need be)."""
    if docker_answers():
        say("engine: Docker")
        return "docker"
    missing = [p for p in PODMAN_PACKAGES if not shutil.which(p if p != "uidmap" else "newuidmap")]
    if not TINI.exists():
        missing.append("tini")
    if missing:
        say("no Docker engine answers: using podman")
        apt_install(missing)
    os.environ["CONTAINERS_CONF"] = str(podman_conf())
    done = run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"], timeout=60)
    if done.returncode != 0:
        raise Failed(f"podman cannot run on this machine:\n{done.stderr}")
    say(f"engine: podman (runtime {done.stdout.strip()}, config {os.environ['CONTAINERS_CONF']})")
    return "podman"


# -- the base image ----------------------------------------------------------------------------
def default_base() -> str:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    if match is None:
        raise Failed("the Dockerfile has no ARG BASE_IMAGE=... default")
    return match[1]


def standin_base(tool: str) -> str:
    """Build (once) a Python 3.11 base from Debian bookworm's packages; return its name."""
    if run([tool, "image", "inspect", STANDIN]).returncode == 0:
        say(f"using the stand-in base {STANDIN} built earlier from Debian {STANDIN_SUITE}")
        return STANDIN
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"])
    if os.geteuid() != 0:
        raise Failed("building the stand-in base needs root (debootstrap)")
    rootfs = Path(tempfile.mkdtemp(prefix="standin-", dir=WORK))
    try:
        say(f"debootstrap --variant=minbase --include={STANDIN_PACKAGES} {STANDIN_SUITE}")
        done = run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={STANDIN_PACKAGES}",
                STANDIN_SUITE,
                str(rootfs),
                STANDIN_MIRROR,
            ],
            timeout=1200,
        )
        if done.returncode != 0:
            raise Failed(f"debootstrap failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        for junk in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
        ):
            for item in (rootfs / junk).glob("*"):
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item)
                else:
                    item.unlink()
        # This machine reaches PyPI through a TLS proxy its own CA bundle trusts: pip in the
        # build must trust the same, and pip reads PIP_CERT, not the system store.
        shutil.copy(HOST_CA_BUNDLE, rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [tool, "import", "--change", f"ENV PIP_CERT={HOST_CA_BUNDLE}", "-", STANDIN],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0:
            raise Failed(f"{tool} import failed: {imported.stderr}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return STANDIN


def base_image(tool: str) -> str:
    """The Dockerfile's pinned base when it can be pulled, else the Debian stand-in."""
    base = default_base()
    say(f"pulling the base {base}")
    try:
        pulled = run([tool, "pull", base], timeout=PULL_TIMEOUT)
        reason = pulled.stderr.strip().splitlines()[-1] if pulled.stderr.strip() else "failed"
        if pulled.returncode == 0:
            return base
    except subprocess.TimeoutExpired:
        reason = f"no answer in {PULL_TIMEOUT}s"
    say(f"NOTE: the base image cannot be pulled ({reason}).")
    say(
        "NOTE: building a STAND-IN base from Debian bookworm packages instead (python3 3.11, "
        "python3-venv): the image below is NOT built on python:3.11-slim-bookworm."
    )
    return standin_base(tool)


# -- runs --------------------------------------------------------------------------------------
class Mounts:
    """Fresh config/, output/, logs/, state/ folders for one run, owned by its user."""

    def __init__(self, uid: int, gid: int):
        self.base = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
        self.base.chmod(0o755)
        self.uid, self.gid = uid, gid
        for name in ("config", "output", "logs", "state"):
            (self.base / name).mkdir()
            self.own(self.base / name, 0o755 if name == "config" else 0o700)

    def own(self, path: Path, mode: int) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)
            path.chmod(mode)
        else:  # a caller that cannot chown: open the folder to the container's user
            path.chmod(mode | 0o077 if path.is_dir() else mode | 0o044)

    def config(self, name: str, data: object, mode: int = 0o644) -> None:
        path = self.base / "config" / name
        path.write_text(json.dumps(data), encoding="utf-8")
        self.own(path, mode)

    def __getitem__(self, name: str) -> Path:
        return self.base / name

    def volumes(self) -> list[str]:
        return [
            "-v", f"{self['config']}:/app/config:ro",
            "-v", f"{self['output']}:/app/output",
            "-v", f"{self['logs']}:/app/logs",
            "-v", f"{self['state']}:/app/state",
            "-v", f"{PROBE}:/app/src/deploy_probe.py:ro",
        ]  # fmt: skip


def run_command(
    tool: str, user: str, mounts: Mounts, args: Sequence[str], name: str, tmpfs: str
) -> list[str]:
    return [
        tool, "run", "--rm", "--name", name, "--init",
        "--read-only", "--tmpfs", tmpfs,
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--network", "host", "--user", user,
        *mounts.volumes(), IMAGE, *args,
    ]  # fmt: skip


def check(condition: bool, what: str, detail: str = "") -> None:
    if not condition:
        raise Failed(f"{what}\n{detail}".rstrip())
    say(f"ok: {what}")


def demo_config(mock: WireMock) -> tuple[dict[str, object], dict[str, object]]:
    text = (ROOT / "config" / "demo-test-config.json").read_text(encoding="utf-8")
    config = json.loads(text.replace("http://127.0.0.1:8089", mock.base_url))
    secrets = json.loads(
        (ROOT / "config" / "demo-test-config-secrets_example.json").read_text(encoding="utf-8")
    )
    return config, secrets


def runs_as(tool: str, user: str, mock: WireMock, full: bool, tmpfs: str) -> None:
    """The report and the state-writing probe as ``user``; with ``full``, SIGTERM and exit 2.

    The report writes its Excel file through temporary files in ``$TMPDIR`` (``/app/tmp``), so
    it fails when the tmpfs there is not writable for ``user``.
    """
    uid, gid = (int(x) for x in user.split(":"))
    mounts = Mounts(uid, gid)
    config, secrets = demo_config(mock)
    mounts.config("demo-test-config.json", config)
    mounts.config("demo-test-config-secrets.json", secrets, 0o600)
    mounts.config("probe-ci-config.json", {"global": {"api-base-url": mock.base_url}})
    tag = user.replace(":", "-")
    say(f"runs as --user {user} with --tmpfs {tmpfs}")

    mock.reset_journal()
    done = run(
        run_command(tool, user, mounts, ["report", "demo", "test"], f"txo-it-report-{tag}", tmpfs)
    )
    outputs = sorted(p.name for p in mounts["output"].iterdir())
    check(done.returncode == 0, f"as {user}: report demo test exits 0", done.stderr[-4000:])
    check(
        any(n.endswith(".xlsx") for n in outputs) and any(n.endswith(".json") for n in outputs),
        f"as {user}: report written to the output mount ({', '.join(outputs)})",
    )
    check(mock.count("POST", url_path="/demo-tenant/oauth2/v2.0/token") == 1, "one token request")
    check(bool(list(mounts["logs"].iterdir())), f"as {user}: the run's log file is in logs/")

    done = run(
        run_command(
            tool, user, mounts, ["deploy_probe", "probe", "ci"], f"txo-it-probe-{tag}", tmpfs
        )
    )
    state = mounts["state"] / "probe-ci-deploy_probe.json"
    check(done.returncode == 0, f"as {user}: the state probe exits 0", done.stderr[-4000:])
    check(state.exists(), f"as {user}: state written to the state mount ({state.name})")
    facts = json.loads(state.read_text(encoding="utf-8"))
    check((facts["uid"], state.stat().st_uid) == (uid, uid), f"as {user}: files owned by uid {uid}")
    if not full:
        return

    name = f"txo-it-term-{tag}"
    for stale in mounts["output"].glob("probe-*"):
        stale.unlink()
    command = run_command(tool, user, mounts, ["deploy_probe", "probe", "ci"], name, tmpfs)
    command[command.index(IMAGE) : command.index(IMAGE)] = ["-e", "TXO_PROBE_WAIT_SECONDS=300"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = mounts["output"] / "probe-ci-probe.json"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not written.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # written before the wait; the script now sleeps inside main()
    sent = time.monotonic()
    run([tool, "kill", "--signal", "TERM", name])
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failed("SIGTERM did not end the run within 60 s") from None
    check(proc.returncode == EXIT_TERMINATED, f"SIGTERM -> exit {proc.returncode}", err[-3000:])
    json.loads(written.read_text(encoding="utf-8"))
    say(f"ok: stopped {time.monotonic() - sent:.1f}s after SIGTERM; the file written is whole")

    done = run(
        run_command(tool, user, mounts, ["report", "nosuch", "prod"], f"txo-it-nocfg-{tag}", tmpfs)
    )
    check(done.returncode == EXIT_USAGE, f"missing config -> exit {done.returncode}", done.stderr)
    check("nosuch-prod-config.json" in done.stderr, "the message names the missing file")
    check("Traceback" not in done.stderr, "no traceback on the console")


def sizes(tool: str) -> None:
    """The image's size and its biggest parts, for bench/RESULTS.md."""
    inspect = run([tool, "image", "inspect", "--format", "{{.Size}}", IMAGE])
    total = int(inspect.stdout.strip()) / 1e6
    paths = [f"{SITE}/{p}" for p in PARTS]
    du = run([tool, "run", "--rm", "--entrypoint", "du", IMAGE, "-sm", *paths, "/opt/venv", "/usr"])
    say(f"image {IMAGE}: {total:.0f} MB")
    for line in du.stdout.splitlines():
        size, path = line.split(None, 1)
        label = "rest of /opt/venv" if path == "/opt/venv" else path
        say(f"  {size:>5} MB  {label}")


def main() -> int:
    """Build, run every check, print the sizes; 0 when all passed, 1 otherwise."""
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        tool = engine()
        base = base_image(tool)
        say(f"building {IMAGE} with BASE_IMAGE={base}")
        built = run(
            [
                tool,
                "build",
                "--network=host",
                "--build-arg",
                f"BASE_IMAGE={base}",
                "-t",
                IMAGE,
                ".",
            ],
            timeout=BUILD_TIMEOUT,
            cwd=ROOT,
        )
        check(built.returncode == 0, "image built", built.stdout[-4000:] + built.stderr[-4000:])
        caller_uid = os.getuid() or ROOT_STAND_IN_UID
        caller_gid = os.getgid() if os.getuid() else ROOT_STAND_IN_UID
        if os.getuid() == 0:
            say(f"the caller is root: --user {caller_uid}:{caller_gid} stands in for $(id -u)")
        with WireMock(root_dir=ROOT / "mock-api") as mock:
            say(f"demo API (WireMock) at {mock.base_url}")
            runs_as(tool, RUNTIME_USER, mock, full=True, tmpfs="/app/tmp:mode=1777")
            # A bare --tmpfs: the engine picks mode and owner; the image's 1777 must carry it.
            runs_as(tool, f"{caller_uid}:{caller_gid}", mock, full=False, tmpfs="/app/tmp")
        sizes(tool)
    except (Failed, OSError, subprocess.TimeoutExpired) as err:
        say(f"FAILED: {err}")
        return 1
    finally:
        for leftover in WORK.glob("run-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    say(f"all checks passed in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
