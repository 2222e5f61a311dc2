"""tools/image_test.py's pure parts; the whole of it runs in CI as ``make image-test``."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
import tomllib

from tools import image_test


def test_podman_config_uses_runc_tini_and_ulimits_this_machine_can_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_test, "WORK", tmp_path)

    conf = tomllib.loads(image_test.podman_conf().read_text(encoding="utf-8"))

    assert conf["engine"]["runtime"] == "runc"
    assert conf["containers"]["init_path"] == "/usr/bin/tini-static"
    limits = dict(item.split("=") for item in conf["containers"]["default_ulimits"])
    assert set(limits) == {"nofile", "nproc"}
    for name, kind in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = (int(v) for v in limits[name].split(":"))
        assert soft == hard <= image_test.ULIMIT_CAP
        assert (
            resource.getrlimit(kind)[1] in (resource.RLIM_INFINITY,)
            or hard <= resource.getrlimit(kind)[1]
        )


def test_the_default_base_is_the_dockerfiles_pinned_one() -> None:
    base = image_test.default_base()
    assert base.startswith("python:3.11-slim-bookworm@sha256:")
    assert f"ARG BASE_IMAGE={base}\n" in (image_test.ROOT / "Dockerfile").read_text("utf-8")
