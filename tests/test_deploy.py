"""Run scripts the way the container image does, for real, without a container engine.

The image's runtime stage is read from the Dockerfile: the files it copies, its ``ENV``, its
``USER`` and its ``ENTRYPOINT``. A tree with those files is built (owned by root, modes
755/644), then each run happens in a private mount namespace where, as in
``docker run --read-only``, the whole root filesystem is read-only except the mounted
``output/``, ``logs/`` and ``tmp/``; the process runs as uid/gid 10001 with no capabilities
and ``no_new_privs`` (the Kubernetes security context), from a virtual environment holding
the project's locked dependencies, with the image's environment and nothing else. The
config folder is also laid out as the CronJob's projected volume (kubelet's links, root-owned
files readable through ``fsGroup``), and a run as another uid stands for ``docker run --user``.
The crontab example's first line runs the same way, with cron's environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tools.wiremock_server import WireMock

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
PROBE = ROOT / "tests" / "scripts" / "deploy_probe.py"
CRONTAB = ROOT / "deploy" / "cron" / "crontab.example"
CRON_PROJECT = "/opt/txo-batch-toolkit"
CRON_FIELDS = 5
EXIT_LOCKED = 75  # flock -E in the crontab: skipped, the previous run still holds the lock
IMAGE_APP = "/app"
IMAGE_VENV = "/opt/venv"
# Docker's PATH for the python:3.11-slim images, which the Dockerfile's PATH extends.
BASE_IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
WRITABLE = ("output", "logs", "state", "tmp")
RUN_TIMEOUT = 60.0
TERM_WAIT = 30.0
PROBE_CONFIG = {"global": {"api-base-url": "http://127.0.0.1:9/api"}}
EXIT_USAGE = 2
EXIT_TERMINATED = 143
K8S_CONFIG_MODE = 0o440  # the projected volume's defaultMode in deploy/k8s/base/cronjob.yaml
OWNER_ONLY_MODE = 0o400
OTHER_UID = 12345  # a uid with no account in the image, as `docker run --user` gives one

# Runs inside `unshare --mount`: mount the writable folders, make / read-only, drop to the
# image's user and exec the image's entry point (so the test's PID is the script's PID).
NAMESPACE_SCRIPT = r"""
set -eu
tree="$1"; rw="$2"; user="$3"; deps="$4"; deps_at="$5"; shift 5
mount --bind "$deps" "$deps_at"
mount -o remount,bind,ro "$deps_at"
for d in output logs state tmp; do mount --bind "$rw/$d" "$tree/$d"; done
mount --bind "$tree/config" "$tree/config"
mount -o remount,bind,ro "$tree/config"
mount -o remount,bind,ro /
exec setpriv --reuid "${user%%:*}" --regid "${user##*:}" --clear-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
    reason="needs root, unshare and setpriv to run as the image's user on a read-only tree",
)


# -- the image's runtime stage, read from the Dockerfile ---------------------------------------
def runtime_instructions(text: str) -> list[tuple[str, str]]:
    """Return ``(INSTRUCTION, arguments)`` of the Dockerfile's last stage, continuations joined."""
    joined = text.replace("\\\n", " ")
    stages: list[list[tuple[str, str]]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word.upper(), rest.strip()))
    return stages[-1]


@dataclass
class Image:
    """The image's runtime stage as the Dockerfile declares it, and its stand-in on this host."""

    env: dict[str, str] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)
    user: str = ""
    entrypoint: list[str] = field(default_factory=list)
    tree: Path = Path()  # stands in for /app
    venv: Path = Path()  # stands in for /opt/venv
    deps: Path = Path()  # the project's site-packages, read by the venv ...
    deps_at: Path = Path()  # ... through a bind mount here, where the image's user can enter

    @property
    def ids(self) -> tuple[int, int]:
        """The numeric uid and gid of ``USER``."""
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid)


def image_spec() -> Image:
    """The runtime stage's environment, user, entry point and copied paths."""
    image = Image()
    for word, args in runtime_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                image.env[key] = value
        elif word == "USER":
            image.user = args
        elif word == "ENTRYPOINT":
            image.entrypoint = json.loads(args)
        elif word == "COPY" and not args.startswith("--from"):
            image.copies.append(shlex.split(args)[0].rstrip("/"))
    return image


def host_python() -> str | None:
    """A Python with this environment's minor version whose files any user can read."""
    wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/local/bin/{wanted}", f"/usr/bin/{wanted}"):
        if os.path.exists(candidate) and os.stat(candidate).st_mode & 0o005 == 0o005:
            return candidate
    return None


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """A container-like tree and venv, laid out as the Dockerfile lays out the image."""
    python = host_python()
    if python is None:
        pytest.skip("no world-readable python3.x matching .venv to build the test venv from")
    spec = image_spec()
    base = Path(tempfile.mkdtemp(prefix="txo-image-"))
    base.chmod(0o755)
    tree, venv = base / "app", base / "venv"
    tree.mkdir()
    for rel in spec.copies:
        if rel == "requirements-runtime.lock":
            continue
        src, dst = ROOT / rel, tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    shutil.copy2(PROBE, tree / "src" / "deploy_probe.py")
    (tree / ".venv").symlink_to(venv)  # a checkout's .venv, for the crontab's command
    for d in ("config", "data", *WRITABLE):
        (tree / d).mkdir(exist_ok=True)
    subprocess.run(["chmod", "-R", "u=rwX,go=rX", str(tree)], check=True)
    # The image's venv holds the locked runtime dependencies; here a venv of the same
    # Python reads them from the project's .venv.
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The checkout may sit under a folder the image's user cannot enter (mktemp -d is 0700):
    # each run bind-mounts the project's site-packages at base/deps, which it can.
    site = next((venv / "lib").glob("python3*/site-packages"))
    spec.deps = ROOT / ".venv" / "lib" / site.parent.name / "site-packages"
    spec.deps_at = base / "deps"
    spec.deps_at.mkdir(mode=0o755)
    (site / "project-deps.pth").write_text(f"{spec.deps_at}\n", encoding="utf-8")
    spec.tree, spec.venv = tree, venv
    try:
        yield spec
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def run_dirs(image: Image) -> Iterator[Path]:
    """Fresh writable output/, logs/, tmp/ owned by the image's user, and an empty config/."""
    uid, gid = image.ids
    rw = Path(tempfile.mkdtemp(prefix="txo-rw-"))
    rw.chmod(0o755)
    for d in WRITABLE:
        (rw / d).mkdir()
        os.chown(rw / d, uid, gid)
    for f in (image.tree / "config").iterdir():
        if f.is_dir() and not f.is_symlink():
            shutil.rmtree(f)
        else:
            f.unlink()
    try:
        yield rw
    finally:
        shutil.rmtree(rw, ignore_errors=True)


def container_env(image: Image, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The image's ENV with /app and /opt/venv mapped to the test's tree and venv."""
    env = {}
    for key, value in image.env.items():
        value = value.replace("$PATH", BASE_IMAGE_PATH)
        value = value.replace(IMAGE_VENV, str(image.venv)).replace(IMAGE_APP, str(image.tree))
        env[key] = value
    env.update(extra or {})
    return env


def namespace_command(
    image: Image, rw: Path, argv: list[str], user: str | None = None
) -> list[str]:
    """The command running ``argv`` as ``user`` (the image's by default) on the read-only tree."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        NAMESPACE_SCRIPT,
        "sh",
        str(image.tree),
        str(rw),
        user or image.user,
        str(image.deps),
        str(image.deps_at),
        *argv,
    ]


def start(
    image: Image,
    rw: Path,
    args: list[str],
    extra_env: dict[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[str]:
    """Start ``ENTRYPOINT args`` as ``user`` (the image's by default) on the read-only tree."""
    return subprocess.Popen(
        namespace_command(image, rw, [*image.entrypoint, *args], user),
        cwd=str(image.tree),
        env=container_env(image, extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(
    image: Image,
    rw: Path,
    args: list[str],
    extra_env: dict[str, str] | None = None,
    user: str | None = None,
) -> tuple[int, str]:
    """Run to completion; return the exit code and the combined console output."""
    proc = start(image, rw, args, extra_env, user)
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    return proc.returncode, out + err


def write_config(image: Image, name: str, data: dict[str, Any]) -> None:
    """Write ``config/name`` into the tree (root-owned, mounted read-only during runs)."""
    path = image.tree / "config" / name
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o644)


# -- the runtime contract ----------------------------------------------------------------------
def test_image_runs_as_numeric_non_root_user() -> None:
    user = image_spec().user
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0


def test_script_runs_through_entry_point_as_image_user_on_read_only_tree(
    image: Image, run_dirs: Path
) -> None:
    write_config(image, "probe-ci-config.json", PROBE_CONFIG)

    code, console = run(image, run_dirs, ["deploy_probe", "probe", "ci"])

    assert code == 0, console
    saved = run_dirs / "output" / "probe-ci-probe.json"
    facts = json.loads(saved.read_text(encoding="utf-8"))
    assert (facts["uid"], facts["gid"]) == image.ids
    assert (saved.stat().st_uid, saved.stat().st_gid) == image.ids
    assert facts["python"] == str(image.venv / "bin" / "python")
    assert facts["dont_write_bytecode"] is True
    assert facts["api_base_url"] == PROBE_CONFIG["global"]["api-base-url"]
    assert sorted(p.name for p in (run_dirs / "output").iterdir()) == ["probe-ci-probe.json"]
    assert "Traceback" not in console


def test_console_is_one_json_object_per_line_as_the_cronjob_sets_it(
    image: Image, run_dirs: Path
) -> None:
    write_config(image, "probe-ci-config.json", PROBE_CONFIG)

    code, console = run(
        image, run_dirs, ["deploy_probe", "probe", "ci"], extra_env={"TXO_LOG_FORMAT": "json"}
    )

    assert code == 0, console
    lines = [line for line in console.splitlines() if line.strip()]
    assert lines, "the run logged nothing"
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    assert len(list((run_dirs / "logs").iterdir())) == 1  # the run's DEBUG log file


def test_code_tree_is_read_only_for_the_run(image: Image, run_dirs: Path) -> None:
    tree = image.tree
    probe = subprocess.run(
        namespace_command(image, run_dirs, ["touch", str(tree / "utils" / "x")]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0
    assert "Read-only file system" in probe.stderr
    assert not (tree / "utils" / "x").exists()


def test_sigterm_reaches_the_script_and_exits_143(image: Image, run_dirs: Path) -> None:
    write_config(image, "probe-ci-config.json", PROBE_CONFIG)
    proc = start(image, run_dirs, ["deploy_probe", "probe", "ci"], {"TXO_PROBE_WAIT_SECONDS": "30"})
    ready = run_dirs / "tmp" / "probe.ready"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.communicate(timeout=RUN_TIMEOUT)

    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=TERM_WAIT)

    assert proc.returncode == EXIT_TERMINATED, out + err
    assert time.monotonic() - sent < TERM_WAIT / 2
    files = sorted(p.name for p in (run_dirs / "output").iterdir())
    assert files == ["probe-ci-probe.json"]  # written before the wait, whole; no temp file
    json.loads((run_dirs / "output" / files[0]).read_text(encoding="utf-8"))


def test_missing_config_exits_2_with_a_helpful_message(image: Image, run_dirs: Path) -> None:
    code, console = run(image, run_dirs, ["deploy_probe", "nosuch", "prod"])

    assert code == EXIT_USAGE
    assert "❌ Problem:" in console
    assert "nosuch-prod-config.json" in console
    assert "Traceback" not in console


def write_projected_config(
    image: Image, files: dict[str, dict[str, Any]], modes: dict[str, int]
) -> None:
    """Lay ``config/`` out as the kubelet lays out the CronJob's projected volume.

    The files live in a timestamped folder reached through the ``..data`` link, each name in
    ``config/`` is a link into it, and everything is owned by root with the pod's ``fsGroup``
    (the image's gid) as group, the files with the volume's ``defaultMode`` unless ``modes``
    names another.
    """
    _, gid = image.ids
    config = image.tree / "config"
    stamp = config / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir()
    os.chown(stamp, 0, gid)
    stamp.chmod(0o755)
    (config / "..data").symlink_to(stamp.name)
    for name, data in files.items():
        (stamp / name).write_text(json.dumps(data), encoding="utf-8")
        os.chown(stamp / name, 0, gid)
        (stamp / name).chmod(modes.get(name, K8S_CONFIG_MODE))
        (config / name).symlink_to(f"..data/{name}")


@pytest.mark.parametrize(
    ("mode", "readable"),
    [(K8S_CONFIG_MODE, True), (OWNER_ONLY_MODE, False)],
    ids=["defaultMode-0440", "mode-0400-control"],
)
def test_config_reads_from_the_cronjobs_projected_volume_layout(
    image: Image, run_dirs: Path, mode: int, readable: bool
) -> None:
    """Root-owned files readable through fsGroup, behind kubelet's links: the run reads both."""
    write_projected_config(
        image,
        {
            "probe-ci-config.json": PROBE_CONFIG,
            "probe-ci-config-secrets.json": {"client-secret": "projected-secret-value"},
        },
        {"probe-ci-config-secrets.json": mode},
    )

    code, console = run(image, run_dirs, ["deploy_probe", "probe", "ci"])

    assert (code == 0) is readable, console
    assert ("probe-ci-config-secrets.json" in console) is not readable, console
    assert (run_dirs / "output" / "probe-ci-probe.json").exists() is readable
    assert "projected-secret-value" not in console
    assert "Traceback" not in console


def test_runs_as_the_invoking_user_as_docker_run_user_sets_it(image: Image, run_dirs: Path) -> None:
    """``--user "$(id -u):$(id -g)"`` (README, crontab, compose's TXO_UID): an unknown uid."""
    for d in WRITABLE:
        os.chown(run_dirs / d, OTHER_UID, OTHER_UID)
    write_config(image, "probe-ci-config.json", PROBE_CONFIG)
    secrets = image.tree / "config" / "probe-ci-config-secrets.json"
    secrets.write_text(json.dumps({"client-secret": "own-secret-value"}), encoding="utf-8")
    os.chown(secrets, OTHER_UID, OTHER_UID)
    secrets.chmod(0o600)

    code, console = run(
        image, run_dirs, ["deploy_probe", "probe", "ci"], user=f"{OTHER_UID}:{OTHER_UID}"
    )

    assert code == 0, console
    saved = run_dirs / "output" / "probe-ci-probe.json"
    facts = json.loads(saved.read_text(encoding="utf-8"))
    assert (facts["uid"], facts["gid"]) == (OTHER_UID, OTHER_UID)
    assert saved.stat().st_uid == OTHER_UID
    assert "accessible by group or others" not in console


def test_unknown_script_exits_2_naming_the_scripts(image: Image, run_dirs: Path) -> None:
    code, console = run(image, run_dirs, ["nosuch", "acme", "prod"])

    assert code == EXIT_USAGE
    assert "❌ Problem: No script 'nosuch' in src/." in console
    assert "deploy_probe" in console


@pytest.mark.integration
def test_report_for_demo_runs_in_the_image_layout_against_the_demo_api(
    image: Image, run_dirs: Path
) -> None:
    demo = json.loads((ROOT / "config" / "demo-test-config.json").read_text(encoding="utf-8"))
    secrets = ROOT / "config" / "demo-test-config-secrets_example.json"
    with WireMock(root_dir=ROOT / "mock-api") as mock:
        text = json.dumps(demo).replace("http://127.0.0.1:8089", mock.base_url)
        write_config(image, "demo-test-config.json", json.loads(text))
        write_config(
            image,
            "demo-test-config-secrets.json",
            json.loads(secrets.read_text(encoding="utf-8")),
        )

        code, console = run(image, run_dirs, ["report", "demo", "test"])

        assert code == 0, console
        assert mock.count("POST", url_path="/demo-tenant/oauth2/v2.0/token") == 1
    saved = sorted(p.name for p in (run_dirs / "output").iterdir())
    assert [n for n in saved if n.endswith(".xlsx")], saved
    assert [n for n in saved if n.endswith(".json")], saved
    assert all(n.startswith("demo-test-report") for n in saved), saved
    assert list((run_dirs / "logs").iterdir()), "the run's DEBUG log file is missing"


def crontab() -> tuple[dict[str, str], list[str]]:
    """The crontab example's variables (cron's whole environment) and its job commands."""
    env: dict[str, str] = {}
    commands = []
    for line in CRONTAB.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if match := re.match(r"^([A-Z_]+)=(.*)$", line):
            env[match[1]] = match[2].strip('"')
        else:
            commands.append(line.split(None, CRON_FIELDS)[CRON_FIELDS])
    return env, commands


def test_crontab_line_runs_the_script_from_the_project_locked_and_logged(
    image: Image, run_dirs: Path
) -> None:
    env, commands = crontab()
    first = commands[0]
    script_args = re.search(r"-m src\.\w+ \w+ \w+", first)[0]  # type: ignore[index]
    lock = re.search(r"flock -n -E \d+ (\S+)", first)[1]  # type: ignore[index]
    log = re.search(r">> (\S+) 2>&1", first)[1]  # type: ignore[index]
    # The same line for the probe in the test's tree; the syslog alert after || is cron's.
    command = first.split(" || ")[0].replace(CRON_PROJECT, str(image.tree))
    command = command.replace(script_args, "-m src.deploy_probe probe ci")
    write_config(image, "probe-ci-config.json", PROBE_CONFIG)
    argv = [env["SHELL"], "-c", command]

    done = subprocess.run(
        namespace_command(image, run_dirs, argv), env=env, capture_output=True, check=False
    )

    assert done.returncode == 0, done
    assert (run_dirs / "output" / "probe-ci-probe.json").exists()
    logged = (run_dirs / log).read_text(encoding="utf-8")
    assert "Run summary: exit 0" in logged, logged  # the console output, appended

    with open(run_dirs / lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a run still going
        skipped = subprocess.run(
            namespace_command(image, run_dirs, argv), env=env, capture_output=True, check=False
        )

    assert skipped.returncode == EXIT_LOCKED
    assert (run_dirs / log).read_text(encoding="utf-8") == logged  # the skipped run wrote nothing
