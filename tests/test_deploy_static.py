"""The deploy files hold what they promise: Dockerfile, compose file, kustomize overlays, cron.

The tools (hadolint, docker-compose, kubectl kustomize, kubernetes-validate) run in
``make lint-deploy``; these tests check the meaning: the rendered CronJobs run the script,
org and env their overlay names, mount that org's config where the toolkit reads it, and keep
the restricted security context; the compose file and the test harness use one WireMock
image; the crontab locks and logs every job.
"""

from __future__ import annotations

import ast
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.entrypoint import build_command, main
from tests.test_deploy import K8S_CONFIG_MODE, image_spec, runtime_instructions
from tests.wiremock_server import DOCKER_IMAGE
from utils.exceptions import HelpfulError

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
CRONTAB = ROOT / "deploy" / "cron" / "crontab.example"
SCHEMA = ROOT / "schemas" / "org-env-config-schema.json"
RUNTIME_UID = 10001
# Oldest Kubernetes the manifests target (CronJob timeZone, podFailurePolicy) and the newest
# kubernetes-validate knows.
K8S_VERSIONS = ("1.30.0", "1.37.0")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
CRON_FIELDS = 5


def kustomize_bin() -> list[str] | None:
    """The kustomize command of this machine: ``kustomize build`` or ``kubectl kustomize``."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization to its documents."""
    command = kustomize_bin()
    if command is None:
        pytest.skip("kubectl or kustomize needed to render deploy/k8s")
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def cronjobs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "CronJob"]


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    return dict(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])


# -- the entry point ---------------------------------------------------------------------------
def test_entry_point_runs_the_named_script_as_a_module_with_the_rest_of_the_arguments(
    tmp_path: Path,
) -> None:
    (tmp_path / "report.py").write_text("", encoding="utf-8")

    command = build_command(["report", "acme", "prod", "--log-format", "json"], tmp_path, "/py")

    assert command == ["/py", "-m", "src.report", "acme", "prod", "--log-format", "json"]


@pytest.mark.parametrize(
    "name", ["../report", "report.py", "src.report", "/bin/sh", "-m", "", "_private", "nosuch"]
)
def test_entry_point_refuses_anything_but_a_script_in_src(tmp_path: Path, name: str) -> None:
    (tmp_path / "report.py").write_text("", encoding="utf-8")
    (tmp_path / "_private.py").write_text("", encoding="utf-8")

    with pytest.raises(HelpfulError) as caught:
        build_command([name, "acme", "prod"], tmp_path)

    assert caught.value.how_to_fix == "Pick one of: report."


def test_entry_point_without_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "❌ Problem: No script named." in capsys.readouterr().err


def test_entry_point_help_lists_the_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "report" in capsys.readouterr().out.splitlines()[-1]


# -- Dockerfile and .dockerignore --------------------------------------------------------------
def test_every_stage_is_pinned_by_tag_and_digest() -> None:
    froms = [
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("FROM ")
    ]
    assert len(froms) >= 2  # multi-stage
    for ref in froms:
        assert ref.startswith("python:3.11-slim-bookworm@"), ref
        assert DIGEST.search(ref), ref


def test_code_is_copied_as_root_and_the_user_is_dropped_last() -> None:
    """The runtime user can read the code but not change it, and nothing runs as root later."""
    stage = runtime_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    words = [word for word, _ in stage]
    copies = [args for word, args in stage if word == "COPY"]
    assert not any("--chown" in args or "--chmod" in args for args in copies)
    assert words.count("USER") == 1
    after_user = words[words.index("USER") :]
    assert not {"COPY", "ADD", "RUN"} & set(after_user)
    assert ("HEALTHCHECK", "NONE") in stage  # a batch job: its exit code is its health


def test_build_context_holds_the_code_and_never_a_secret(tmp_path: Path) -> None:
    """Docker's .dockerignore rules (as docker-py applies them) on a tree with every trap."""
    build = pytest.importorskip("docker.utils.build")
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    present = [
        "Dockerfile",
        ".dockerignore",
        "requirements-runtime.lock",
        "deploy/entrypoint.py",
        "utils/logger.py",
        "src/report.py",
        "schemas/org-env-config-schema.json",
    ]
    traps = [
        "config/acme-prod-config.json",
        "config/acme-prod-config-secrets.json",
        "src/acme-prod-config-secrets.json",
        "utils/__pycache__/logger.cpython-311.pyc",
        "deploy/k8s/base/cronjob.yaml",
        ".venv/bin/python",
        ".git/config",
        "output/report.xlsx",
        "logs/run.log",
        "tmp/x",
        "tests/test_x.py",
        ".env",
        "key.pem",
    ]
    for rel in present + traps:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")

    context = {f for f in build.exclude_paths(str(tmp_path), patterns) if (tmp_path / f).is_file()}

    assert context == set(present)


# -- docker-compose.yml ------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def test_compose_and_test_harness_use_one_wiremock_image() -> None:
    assert compose()["services"]["wiremock"]["image"] == DOCKER_IMAGE


def test_toolkit_service_reaches_the_demo_api_at_the_demo_configs_address() -> None:
    services = compose()["services"]
    demo = json.loads((ROOT / "config" / "demo-test-config.json").read_text(encoding="utf-8"))
    port = int(re.match(r"http://127\.0\.0\.1:(\d+)/", demo["global"]["api-base-url"])[1])  # type: ignore[index]
    command = services["wiremock"]["command"]
    assert command[command.index("--port") + 1] == str(port)
    assert services["toolkit"]["network_mode"] == "service:wiremock"
    assert f"{port}" in services["wiremock"]["healthcheck"]["test"][-1]


def test_toolkit_service_runs_locked_down_and_only_on_request() -> None:
    toolkit = compose()["services"]["toolkit"]
    assert toolkit["profiles"] == ["toolkit"]
    assert toolkit["read_only"] is True and toolkit["init"] is True
    assert toolkit["tmpfs"] == ["/app/tmp"]
    assert toolkit["user"] == f"${{TXO_UID:-{RUNTIME_UID}}}:${{TXO_GID:-{RUNTIME_UID}}}"
    assert "./config:/app/config:ro" in toolkit["volumes"]
    assert {"./output:/app/output", "./logs:/app/logs"} <= set(toolkit["volumes"])
    assert toolkit["depends_on"]["wiremock"]["condition"] == "service_healthy"
    assert toolkit["cap_drop"] == ["ALL"]
    assert toolkit["security_opt"] == ["no-new-privileges:true"]


# -- Kubernetes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "example", sorted(K8S.glob("overlays/*/secret.example.yaml")), ids=lambda p: p.parent.name
)
def test_secret_example_has_the_name_and_key_the_cronjob_mounts(example: Path) -> None:
    secret = yaml.safe_load(example.read_text(encoding="utf-8"))
    (job,) = cronjobs(render(example.parent))
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "config"]
    _, org, env = example.parent.name.split("-", 2)
    assert secret["metadata"]["name"] == volume["projected"]["sources"][1]["secret"]["name"]
    assert secret["metadata"]["namespace"] == job["metadata"]["namespace"]
    assert list(secret["stringData"]) == [f"{org}-{env}-config-secrets.json"]


def test_there_are_overlays() -> None:
    assert len(OVERLAYS) >= 2  # many CronJobs from one base


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_runs_the_script_org_and_env_it_is_named_for(overlay: Path) -> None:
    docs = render(overlay)
    (job,) = cronjobs(docs)
    script, org, env = overlay.name.split("-", 2)
    container = pod_spec(job)["containers"][0]
    assert container["args"][:3] == [script, org, env]
    assert (ROOT / "src" / f"{script}.py").exists()
    assert job["metadata"]["name"] == f"txo-{overlay.name}"
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert list(config_map["data"]) == [f"{org}-{env}-config.json"]
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "config"]
    sources = volume["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == config_map["metadata"]["name"]
    assert sources[1]["secret"]["name"] == f"txo-secrets-{org}-{env}"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/app/config"
    assert mounts["config"]["readOnly"] is True
    (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    (output,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "output"]
    assert output["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_config_file_is_valid_for_the_toolkit(overlay: Path) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    _, org, env = overlay.name.split("-", 2)
    config = json.loads((overlay / f"{org}-{env}-config.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(config)


def test_every_cronjob_is_locked_down_and_fails_fast_on_exit_2() -> None:
    jobs = cronjobs(render(K8S))
    assert len(jobs) == len(OVERLAYS)
    for job in jobs:
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["timeZone"] == "Etc/UTC"
        assert spec["startingDeadlineSeconds"] > 0
        job_spec = spec["jobTemplate"]["spec"]
        assert job_spec["backoffLimit"] <= 3 and job_spec["activeDeadlineSeconds"] > 0
        rule = job_spec["podFailurePolicy"]["rules"][0]
        assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
        pod = pod_spec(job)
        assert pod["restartPolicy"] == "Never"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == RUNTIME_UID
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        assert rule["onExitCodes"]["containerName"] == container["name"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert {"name": "TXO_LOG_FORMAT", "value": "json"} in container["env"]
        assert container["resources"]["limits"] and container["resources"]["requests"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/app/config", "/app/output", "/app/logs", "/app/tmp"} <= mounts


def test_kubernetes_validate_rejects_a_misspelt_field(tmp_path: Path) -> None:
    """The strict check in make lint-deploy can fail: a typo in a CronJob is caught."""
    (job,) = cronjobs(render(OVERLAYS[0]))
    job["spec"]["jobTemplate"]["spec"]["backofLimit"] = 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(job), encoding="utf-8")
    validate = ROOT / ".venv" / "bin" / "kubernetes-validate"
    if not validate.exists():
        pytest.skip("kubernetes-validate is not installed in .venv")
    done = subprocess.run(
        [str(validate), "--strict", "-k", K8S_VERSIONS[0], str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "backofLimit" in done.stdout + done.stderr


# -- cron --------------------------------------------------------------------------------------
def cron_jobs() -> list[str]:
    """The active job lines of the crontab example (no comments, no variable settings)."""
    return [
        line
        for line in CRONTAB.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not re.match(r"^[A-Z_]+=", line)
    ]


def test_every_cron_job_runs_from_the_project_locked_and_logged() -> None:
    lines = cron_jobs()
    locks = []
    for line in lines:
        fields = line.split(None, CRON_FIELDS)
        assert len(fields) == CRON_FIELDS + 1, line
        command = fields[CRON_FIELDS]
        if " -m src." not in command:
            continue
        assert command.startswith("cd /"), line
        assert "flock -n" in command, line
        assert re.search(r">> logs/cron-[\w-]+\.log 2>&1", command), line
        assert "%" not in command, "cron turns an unescaped % into a newline"
        locks.append(re.search(r"flock -n (?:-E \d+ )?(\S+)", command)[1])  # type: ignore[index]
        script = re.search(r"-m src\.(\w+)", command)[1]  # type: ignore[index]
        assert (ROOT / "src" / f"{script}.py").exists(), line
    assert len(locks) >= 2
    assert len(set(locks)) == len(locks), "each script/org/env needs its own lock"


# -- what a real cluster and a real build would trip on ------------------------------------------
JOB_NAME_SUFFIX = 11  # the CronJob controller appends "-" and a 10-digit schedule time
JOB_NAME_MAX = 63
LABEL_VALUE_MAX = 63
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
BASE_IMAGE_NAME = "registry.example.com/txo/txo-batch-toolkit"
APP_PATHS = ("utils", "src", "schemas", "deploy")


def test_cronjob_names_leave_room_for_the_jobs_they_create() -> None:
    """A CronJob name over 52 characters is refused: its Jobs' names would pass 63."""
    for doc in render(K8S):
        name = doc["metadata"]["name"]
        assert DNS_SUBDOMAIN.match(name), name
        for value in doc["metadata"].get("labels", {}).values():
            assert len(value) <= LABEL_VALUE_MAX, value
        if doc["kind"] == "CronJob":
            assert len(name) + JOB_NAME_SUFFIX <= JOB_NAME_MAX, name


def test_projected_config_mode_is_the_one_the_runtime_test_lays_out() -> None:
    (job,) = cronjobs(render(OVERLAYS[0]))
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "config"]
    assert volume["projected"]["defaultMode"] == K8S_CONFIG_MODE
    assert pod_spec(job)["securityContext"]["fsGroup"] == RUNTIME_UID


def _overlay_with_images(tmp_path: Path, name: str, tag: str) -> list[dict[str, Any]]:
    """Render the first overlay from a copy of deploy/k8s with an ``images:`` entry added."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    overlay = copy / "overlays" / OVERLAYS[0].name
    with open(overlay / "kustomization.yaml", "a", encoding="utf-8") as handle:
        handle.write(f'\nimages:\n  - name: {name}\n    newTag: "{tag}"\n')
    (job,) = cronjobs(render(overlay))
    return [c["image"] for c in pod_spec(job)["containers"]]


def test_an_overlay_pins_another_image_under_the_name_the_base_produces(tmp_path: Path) -> None:
    """docs/deployment.md, "Running on Kubernetes": the override an overlay needs, and the one that fails."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text("utf-8"))
    (entry,) = kustomization["images"]
    assert entry["newName"] == BASE_IMAGE_NAME
    readme = " ".join((ROOT / "docs" / "deployment.md").read_text(encoding="utf-8").split())
    assert "name the base produces (`name: REGISTRY/txo/txo-batch-toolkit`" in readme

    assert _overlay_with_images(tmp_path / "a", BASE_IMAGE_NAME, "9.9.9") == [
        f"{BASE_IMAGE_NAME}:9.9.9"
    ]
    assert _overlay_with_images(tmp_path / "b", "txo-batch-toolkit", "9.9.9") == [
        f"{BASE_IMAGE_NAME}:{entry['newTag']}"
    ]


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    files = [*(ROOT / "utils").glob("*.py"), *(ROOT / "src").glob("*.py")]
    for path in [*files, ROOT / "deploy" / "entrypoint.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(n.split(".")[0] for n in names)
    local = {"utils", "src", "deploy", "__future__"}
    return {n for n in found - local if n not in sys.stdlib_module_names}


def test_the_image_lock_holds_every_package_the_code_imports() -> None:
    """The image installs requirements-runtime.lock only; the tests' .venv has far more."""

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    lock = ROOT / "requirements-runtime.lock"
    locked = {
        canonical(line.split("==")[0])
        for line in lock.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    providers = packages_distributions()
    imports = _third_party_imports()
    assert {"pandas", "requests"} <= imports  # the scan sees the code's imports
    missing = {
        module: providers.get(module)
        for module in imports
        if not {canonical(d) for d in providers.get(module, [])} & locked
    }
    assert not missing, f"imported but not in {lock.name}: {missing}"


def test_runtime_stage_makes_the_copied_code_readable_whatever_the_umask() -> None:
    """A checkout made with umask 077 has 600 files: root-owned, the runtime user could not read
    them unless the image resets the modes."""
    stage = runtime_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    copied = {
        shlex.split(args)[-1].rstrip("/").split("/")[0]
        for word, args in stage
        if word == "COPY" and not args.startswith("--from")
    }
    assert copied == set(APP_PATHS)
    chmods = [
        part.strip()
        for word, args in stage
        if word == "RUN"
        for part in args.split("&&")
        if part.strip().startswith("chmod -R u=rwX,go=rX ")
    ]
    assert len(chmods) == 1
    assert set(chmods[0].split()[3:]) == set(APP_PATHS)


def test_crontab_container_line_runs_the_image_as_the_readme_does() -> None:
    """The commented container line: plain docker run (compose would start the demo API)."""
    lines = [
        line.lstrip("# ")
        for line in CRONTAB.read_text(encoding="utf-8").splitlines()
        if " docker " in line and line.startswith("# ") and line.split()[1][0].isdigit()
    ]
    assert len(lines) == 1
    command = lines[0].split(None, CRON_FIELDS)[CRON_FIELDS]
    assert "docker compose" not in command
    docker = shlex.split(command.split(" flock -n -E 75 ")[1].split(" >> ")[0])[1:]
    assert docker[:2] == ["docker", "run"]
    readme = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    block = readme.split("```bash\ndocker build -t txo-batch-toolkit .\n")[1].split("```")[0]
    documented = shlex.split(block.replace("\\\n", " "))
    assert (
        docker[: docker.index("txo-batch-toolkit")]
        == documented[: documented.index("txo-batch-toolkit")]
    )
    for flag in ("--read-only", "--init", "--rm", "--user"):
        assert flag in docker
    assert "$PWD/config:/app/config:ro" in docker


def test_documented_cron_line_is_the_examples_line() -> None:
    readme = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    block = readme.split("```cron\n")[1].split("```")[0].strip()
    assert block == cron_jobs()[0]


def test_logrotate_rotates_the_cron_logs_and_leaves_the_run_logs(tmp_path: Path) -> None:
    """deploy/cron/logrotate.conf as installed (path and user changed), forced once."""
    logrotate = shutil.which("logrotate") or shutil.which("/usr/sbin/logrotate")
    if logrotate is None:
        pytest.skip("logrotate is not installed")
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    logs = tmp_path / "project" / "logs"
    logs.mkdir(parents=True)
    logs.chmod(0o755)  # logrotate refuses a group- or world-writable folder without su
    text = (ROOT / "deploy" / "cron" / "logrotate.conf").read_text(encoding="utf-8")
    text = text.replace("/opt/txo-batch-toolkit", str(tmp_path / "project"))
    conf = tmp_path / "txo.conf"
    conf.write_text(text.replace("txo txo", f"{user} {group}"), encoding="utf-8")
    (logs / "cron-report-acme-prod.log").write_text("run 1\n", encoding="utf-8")
    (logs / "acme-prod-report_2026-01-01T0000Z.log").write_text("debug\n", encoding="utf-8")

    done = subprocess.run(
        [logrotate, "--force", "--state", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in logs.iterdir()) == [
        "acme-prod-report_2026-01-01T0000Z.log",
        "cron-report-acme-prod.log",
        "cron-report-acme-prod.log.1",  # compressed at the next rotation (delaycompress)
    ]
    assert (logs / "cron-report-acme-prod.log.1").read_text(encoding="utf-8") == "run 1\n"
    assert (logs / "cron-report-acme-prod.log").stat().st_size == 0


# Volume types the "restricted" Pod Security Standard admits (kubernetes.io/docs, Pod Security
# Standards): a CronJob with any other is refused by the txo-batch namespace.
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def test_every_pod_uses_only_volume_types_the_restricted_standard_admits() -> None:
    for job in cronjobs(render(K8S)):
        pod = pod_spec(job)
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, volume
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
        for container in pod["containers"]:
            assert "ports" not in container
            assert not container["securityContext"].get("privileged", False)
            assert "add" not in container["securityContext"]["capabilities"]


def test_image_compose_and_cronjob_agree_on_the_runtime_user() -> None:
    assert image_spec().ids == (RUNTIME_UID, RUNTIME_UID)
    (job,) = cronjobs(render(OVERLAYS[0]))
    context = pod_spec(job)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (RUNTIME_UID,) * 3
    assert compose()["services"]["toolkit"]["user"].endswith(f":-{RUNTIME_UID}}}")


def test_crontab_prune_line_deletes_only_old_run_logs(tmp_path: Path) -> None:
    """The weekly line, run by bash as cron would: old per-run logs go, the rest stays."""
    (prune,) = [line for line in cron_jobs() if " find logs " in line]
    command = prune.split(None, CRON_FIELDS)[CRON_FIELDS]
    logs = tmp_path / "logs"
    logs.mkdir()
    old, new = "acme-prod-report_2026-01-01T0000Z.log", "acme-prod-report_2026-03-01T0000Z.log"
    kept_old = ["cron-report-acme-prod.log", "cron-report-acme-prod.log.2.gz", "x.lock"]
    for name in [old, new, *kept_old]:
        (logs / name).write_text("x\n", encoding="utf-8")
    for name in [old, *kept_old]:
        os.utime(logs / name, (0, 0))  # 1970: far past 30 days

    done = subprocess.run(
        ["/bin/bash", "-c", command.replace("/opt/txo-batch-toolkit", str(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in logs.iterdir()) == sorted([new, *kept_old])
