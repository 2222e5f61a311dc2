"""The deploy files hold what they promise: Dockerfile, compose file, Kubernetes manifests, cron.

``make lint-deploy`` runs hadolint, the compose schema check and ``tools/render_k8s.py
--check``; these tests check the meaning: the manifests are a fresh render of
``deploy/schedules.yaml``, each schedule is one Indexed Job over its org/env pairs that mounts
their configs where the toolkit reads them and keeps the restricted security context; the
compose file and the test harness use one WireMock image; the crontab locks and logs every
job.
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
import kubernetes_validate.utils
import pytest
import yaml

from deploy.entrypoint import build_command, indexed_pair, main
from tests.support_scripts import make_project
from tests.test_deploy import K8S_CONFIG_MODE, image_spec, runtime_instructions
from tools import check_compose, render_k8s
from tools.wiremock_server import DOCKER_IMAGE, find_jar
from utils.exceptions import ConfigurationError, HelpfulError

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
SCHEDULES = yaml.safe_load((ROOT / "deploy" / "schedules.yaml").read_text(encoding="utf-8"))
CRONTAB = ROOT / "deploy" / "cron" / "crontab.example"
SCHEMA = ROOT / "schemas" / "org-env-config-schema.json"
RUNTIME_UID = 10001
# Oldest Kubernetes the manifests target (CronJob timeZone, podFailurePolicy) and the newest
# kubernetes-validate knows.
K8S_VERSIONS = (render_k8s.OLDEST_K8S, kubernetes_validate.utils.latest_version())
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
CRON_FIELDS = 5


def documents() -> list[dict[str, Any]]:
    """The committed Kubernetes objects of deploy/k8s/."""
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name not in ("kustomization.yaml", "secrets.example.yaml")
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


def env_of(cronjob: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod_spec(cronjob)["containers"][0]["env"]}


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


@pytest.mark.parametrize(
    ("environ", "pair"),
    [
        ({}, None),
        ({"TXO_RUNS": "acme/prod globex/test", "JOB_COMPLETION_INDEX": "0"}, ("acme", "prod")),
        ({"TXO_RUNS": "acme/prod globex/test", "JOB_COMPLETION_INDEX": "1"}, ("globex", "test")),
        ({"TXO_RUNS": " acme/prod\n", "JOB_COMPLETION_INDEX": "0"}, ("acme", "prod")),
    ],
)
def test_entry_point_picks_the_pair_of_the_completion_index(
    environ: dict[str, str], pair: tuple[str, str] | None
) -> None:
    assert indexed_pair(environ) == pair


@pytest.mark.parametrize(
    "environ",
    [
        {"TXO_RUNS": "acme/prod"},
        {"TXO_RUNS": "acme/prod", "JOB_COMPLETION_INDEX": "1"},
        {"TXO_RUNS": "acme/prod", "JOB_COMPLETION_INDEX": "-1"},
        {"TXO_RUNS": "acme-prod", "JOB_COMPLETION_INDEX": "0"},
        {"TXO_RUNS": "acme/../prod", "JOB_COMPLETION_INDEX": "0"},
    ],
)
def test_entry_point_refuses_an_index_that_picks_no_run(environ: dict[str, str]) -> None:
    with pytest.raises(HelpfulError):
        indexed_pair(environ)


@pytest.fixture
def indexed_project(tmp_path: Path) -> Path:
    """A scratch toolkit with the entry point, the deploy probe as a script, and a config for
    every run of the report schedule."""
    root = make_project(tmp_path / "proj").root
    (root / "deploy").mkdir()
    shutil.copy(ROOT / "deploy" / "entrypoint.py", root / "deploy" / "entrypoint.py")
    (root / "src").mkdir()
    (root / "src" / "__init__.py").touch()
    shutil.copy(ROOT / "tests" / "scripts" / "deploy_probe.py", root / "src" / "deploy_probe.py")
    for run in SCHEDULES["schedules"]["report"]["runs"]:
        name = f"{run.replace('/', '-')}-config.json"
        (root / "config" / name).write_text(
            json.dumps({"global": {"api-base-url": "http://127.0.0.1:9/api"}}), encoding="utf-8"
        )
    return root


def test_each_pod_of_the_indexed_job_runs_its_own_pair(indexed_project: Path) -> None:
    """The committed CronJob's TXO_RUNS, every JOB_COMPLETION_INDEX, real processes."""
    job = next(j for j in cronjobs(documents()) if j["metadata"]["name"] == "txo-report")
    runs = env_of(job)["TXO_RUNS"]
    pairs = [tuple(r.split("/")) for r in runs.split()]
    for index, (org, env) in enumerate(pairs):
        done = subprocess.run(
            [sys.executable, "-m", "deploy.entrypoint", "deploy_probe"],
            cwd=indexed_project,
            env={"PATH": "/usr/bin:/bin", "TXO_RUNS": runs, "JOB_COMPLETION_INDEX": str(index)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        facts = json.loads((indexed_project / "output" / f"{org}-{env}-probe.json").read_text())
        assert (facts["org_id"], facts["env_type"]) == (org, env)
    assert len(list((indexed_project / "output").iterdir())) == len(pairs)

    past_end = subprocess.run(
        [sys.executable, "-m", "deploy.entrypoint", "deploy_probe"],
        cwd=indexed_project,
        env={"PATH": "/usr/bin:/bin", "TXO_RUNS": runs, "JOB_COMPLETION_INDEX": str(len(pairs))},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert past_end.returncode == 2  # podFailurePolicy: FailIndex at once
    assert f"JOB_COMPLETION_INDEX={len(pairs)} does not pick one of the" in past_end.stderr


# -- Dockerfile and .dockerignore --------------------------------------------------------------
def test_base_image_is_a_build_argument_pinned_by_tag_and_digest() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert default.startswith("python:3.11-slim-bookworm@"), default
    assert DIGEST.search(default), default
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2  # multi-stage
    assert set(froms) == {"${BASE_IMAGE}"}


def test_tmp_is_usable_by_any_user_and_state_is_a_mount_point() -> None:
    """A tmpfs on /app/tmp may get the folder's mode and root as owner: 1777 lets any uid in."""
    stage = runtime_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    steps = [part.strip() for word, args in stage if word == "RUN" for part in args.split("&&")]
    assert "chmod 1777 tmp" in steps
    made = next(step for step in steps if step.startswith("mkdir -p "))
    assert {"output", "logs", "state", "tmp"} <= set(made.split()[2:])


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


def test_compose_tests_and_demo_use_one_wiremock_major_version() -> None:
    """The jar (tests without Docker, make demo) and the image (testcontainers, compose)."""
    assert compose()["services"]["wiremock"]["image"] == DOCKER_IMAGE
    jar = Path(find_jar()).name  # wiremock-standalone-2.35.1.jar
    (jar_version,) = re.findall(r"-(\d+\.\d+\.\d+)\.jar$", jar)
    image_version = DOCKER_IMAGE.rsplit(":", 1)[1]
    assert jar_version.split(".")[0] == image_version.split(".")[0], (jar, DOCKER_IMAGE)
    health = compose()["services"]["wiremock"]["healthcheck"]["test"][-1]
    if jar_version.startswith("2."):
        assert "/__admin/health" not in health  # WireMock 3 only


def test_compose_file_is_valid_and_a_misspelt_key_is_caught() -> None:
    schema = json.loads(check_compose.schema_path().read_text(encoding="utf-8"))
    assert check_compose.problems(compose(), schema) == []
    bad = compose()
    bad["services"]["toolkit"]["read_onyl"] = True
    (problem,) = check_compose.problems(bad, schema)
    assert "read_onyl" in problem


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
    assert toolkit["tmpfs"] == ["/app/tmp:mode=1777"]
    assert toolkit["user"] == f"${{TXO_UID:-{RUNTIME_UID}}}:${{TXO_GID:-{RUNTIME_UID}}}"
    assert "./config:/app/config:ro" in toolkit["volumes"]
    assert {"./output:/app/output", "./logs:/app/logs"} <= set(toolkit["volumes"])
    assert "state:/app/state" in toolkit["volumes"] and "state" in compose()["volumes"]
    assert toolkit["environment"]["TXO_PUSHGATEWAY_URL"] == "${TXO_PUSHGATEWAY_URL:-}"
    assert toolkit["depends_on"]["wiremock"]["condition"] == "service_healthy"
    assert toolkit["cap_drop"] == ["ALL"]
    assert toolkit["security_opt"] == ["no-new-privileges:true"]


# -- Kubernetes --------------------------------------------------------------------------------
def test_committed_manifests_are_a_fresh_render_of_the_schedules_file() -> None:
    """deploy/k8s/ is made from deploy/schedules.yaml: an edit of one without the other fails."""
    files = render_k8s.render()
    assert {p.name for p in files} == {p.name for p in K8S.glob("*.yaml")}
    for path, text in files.items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, f"run make k8s: {path}"
    assert render_k8s.main(["--check"]) == 0


def test_adding_an_org_is_one_line_in_the_schedules_file(tmp_path: Path) -> None:
    copy = tmp_path / "proj"
    for rel in ("deploy", "schemas", "src"):
        shutil.copytree(ROOT / rel, copy / rel)
    schedules = copy / "deploy" / "schedules.yaml"
    text = schedules.read_text(encoding="utf-8")
    last = SCHEDULES["schedules"]["report"]["runs"][-1]
    schedules.write_text(text.replace(f"- {last}\n", f"- {last}\n      - initech/prod\n"))
    config = copy / "deploy" / "k8s" / "config" / "initech-prod-config.json"
    config.write_text(json.dumps({"global": {"api-base-url": "https://api.example.com"}}))

    (job,) = cronjobs(render_k8s.manifests(render_k8s.render(copy)))

    runs = [*SCHEDULES["schedules"]["report"]["runs"], "initech/prod"]
    assert job["spec"]["jobTemplate"]["spec"]["completions"] == len(runs)
    assert env_of(job)["TXO_RUNS"] == " ".join(runs)
    (configs,) = [
        d for d in render_k8s.manifests(render_k8s.render(copy)) if d["kind"] == "ConfigMap"
    ]
    assert "initech-prod-config.json" in configs["data"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("- globex/test", "- globex-test"), "is not ORG/ENV"),
        (("- globex/test", "- nosuch/prod"), "has no config file"),
        (("  report:", "  nosuch:"), "names no script in src/"),
        (("- globex/test", "- acme/prod"), "lists a run twice"),
    ],
)
def test_a_bad_schedules_file_is_a_helpful_error(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    copy = tmp_path / "proj"
    for rel in ("deploy", "schemas", "src"):
        shutil.copytree(ROOT / rel, copy / rel)
    schedules = copy / "deploy" / "schedules.yaml"
    schedules.write_text(schedules.read_text(encoding="utf-8").replace(*edit), encoding="utf-8")

    with pytest.raises(ConfigurationError, match=message):
        render_k8s.render(copy)


def test_secret_examples_have_the_names_and_keys_the_cronjobs_mount() -> None:
    examples = list(yaml.safe_load_all((K8S / "secrets.example.yaml").read_text("utf-8")))
    mounted = set()
    for job in cronjobs(documents()):
        (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "config"]
        mounted |= {s["secret"]["name"] for s in volume["projected"]["sources"] if "secret" in s}
        assert all(s["secret"]["optional"] for s in volume["projected"]["sources"] if "secret" in s)
    assert {e["metadata"]["name"] for e in examples} == mounted
    for example in examples:
        org_env = example["metadata"]["name"].removeprefix("txo-secrets-")
        assert list(example["stringData"]) == [f"{org_env}-config-secrets.json"]
        assert example["metadata"]["namespace"] == SCHEDULES["namespace"]


@pytest.mark.parametrize("script", sorted(SCHEDULES["schedules"]))
def test_each_schedule_is_one_indexed_job_over_its_org_env_pairs(script: str) -> None:
    entry = SCHEDULES["schedules"][script]
    (job,) = [j for j in cronjobs(documents()) if j["metadata"]["name"] == f"txo-{script}"]
    spec = job["spec"]["jobTemplate"]["spec"]
    runs = entry["runs"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == len(runs)
    assert 1 <= spec["parallelism"] <= len(runs)
    assert spec["backoffLimitPerIndex"] == entry.get("retries-per-org", 2)
    assert spec["maxFailedIndexes"] == len(runs)  # one failing org never stops the others
    assert "backoffLimit" not in spec
    fail_index, ignore = spec["podFailurePolicy"]["rules"]
    assert fail_index["action"] == "FailIndex"
    assert fail_index["onExitCodes"] == {
        "containerName": "toolkit",
        "operator": "In",
        "values": [2, 6],
    }
    assert ignore == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    container = pod_spec(job)["containers"][0]
    assert container["args"][0] == script and (ROOT / "src" / f"{script}.py").exists()
    assert env_of(job)["TXO_RUNS"].split() == runs
    assert env_of(job)["TXO_PUSHGATEWAY_URL"] == SCHEDULES["pushgateway-url"]
    (configs,) = [d for d in documents() if d["kind"] == "ConfigMap"]
    for run in runs:
        name = f"{run.replace('/', '-')}-config.json"
        assert configs["data"][name] == (K8S / "config" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("config", sorted((K8S / "config").glob("*.json")), ids=lambda p: p.name)
def test_cluster_config_files_are_valid_for_the_toolkit(config: Path) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(config.read_text("utf-8")))


def test_state_and_output_are_persistent_volume_claims() -> None:
    claims = {d["metadata"]["name"] for d in documents() if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"txo-output", "txo-state"}
    for job in cronjobs(documents()):
        volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in pod_spec(job)["containers"][0]["volumeMounts"]}
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "txo-state"
        assert volumes["output"]["persistentVolumeClaim"]["claimName"] == "txo-output"
        assert mounts["state"] == "/app/state" and mounts["output"] == "/app/output"


def test_every_cronjob_is_locked_down() -> None:
    jobs = cronjobs(documents())
    assert len(jobs) == len(SCHEDULES["schedules"])
    for job in jobs:
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["timeZone"] == "Etc/UTC"
        assert spec["startingDeadlineSeconds"] > 0
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        pod = pod_spec(job)
        assert pod["restartPolicy"] == "Never"  # podFailurePolicy needs it
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == RUNTIME_UID
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert env_of(job)["TXO_LOG_FORMAT"] == "json"
        assert container["resources"]["limits"] and container["resources"]["requests"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/app/config", "/app/output", "/app/state", "/app/logs", "/app/tmp"} <= mounts


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_strictly_and_a_misspelt_field_is_caught(version: str) -> None:
    """The strict check of make lint-deploy, for the oldest and the newest version, can fail."""
    files = render_k8s.render()
    assert render_k8s.validate(files, [version]) == []
    (job,) = cronjobs(render_k8s.manifests(files))
    job["spec"]["jobTemplate"]["spec"]["backofLimitPerIndex"] = 1
    bad = {Path("bad.yaml"): yaml.safe_dump(job)}
    (problem,) = render_k8s.validate(bad, [version])
    assert "backofLimitPerIndex" in problem


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
APP_PATHS = ("utils", "src", "schemas", "deploy")


def test_cronjob_names_leave_room_for_the_jobs_they_create() -> None:
    """A CronJob name over 52 characters is refused: its Jobs' names would pass 63."""
    for doc in documents():
        name = doc["metadata"]["name"]
        assert DNS_SUBDOMAIN.match(name), name
        for value in doc["metadata"].get("labels", {}).values():
            assert len(value) <= LABEL_VALUE_MAX, value
        if doc["kind"] == "CronJob":
            assert len(name) + JOB_NAME_SUFFIX <= JOB_NAME_MAX, name


def test_projected_config_mode_is_the_one_the_runtime_test_lays_out() -> None:
    job = cronjobs(documents())[0]
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "config"]
    assert volume["projected"]["defaultMode"] == K8S_CONFIG_MODE
    assert pod_spec(job)["securityContext"]["fsGroup"] == RUNTIME_UID


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
    for job in cronjobs(documents()):
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
    job = cronjobs(documents())[0]
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
