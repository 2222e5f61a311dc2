# TXO batch toolkit: one image runs every script in src/.
#
#   docker build -t txo-batch-toolkit .
#   docker run --rm --init --read-only --tmpfs /app/tmp:mode=1777 --cap-drop ALL \
#     --security-opt no-new-privileges --user "$(id -u):$(id -g)" \
#     -v "$PWD/config:/app/config:ro" -v "$PWD/output:/app/output" -v "$PWD/logs:/app/logs" \
#     -v "$PWD/state:/app/state" txo-batch-toolkit report acme prod
#
# The base is a build argument, pinned by tag (readable) and digest (reproducible) by default.
# Refresh both together:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# and keep the Python minor in step with requirements-runtime.lock (locked on Python 3.11).
# Another base must be Debian-like with Python 3.11 as `python` (make image-test builds one
# from Debian's packages when the registry cannot be reached):
#   docker build --build-arg BASE_IMAGE=registry.example.com/python:3.11-slim-bookworm .
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# ---- build: a virtual environment with the locked runtime dependencies ---------------------
FROM ${BASE_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY requirements-runtime.lock /tmp/requirements-runtime.lock
# Wheels only: every locked package ships one for this platform, so no compiler is needed and
# a missing wheel fails the build instead of compiling something nobody tested.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: \
        -r /tmp/requirements-runtime.lock \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---- runtime: code owned by root, run as an unprivileged numeric user ----------------------
FROM ${BASE_IMAGE} AS runtime

ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="txo-batch-toolkit" \
      org.opencontainers.image.description="Batch REST-API integration scripts: docker run IMAGE SCRIPT ORG_ID ENV_TYPE" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# HOME and TMPDIR point at the one scratch mount (a tmpfs in compose, an emptyDir in
# Kubernetes): the root filesystem can then be read-only. /app/tmp is world-writable and
# sticky (1777, like /tmp) because a tmpfs mounted there belongs to root: some engines give it
# the folder's mode, so a folder owned by 10001 with 0750 would lock every user out of it. No bytecode is written at run time;
# it is compiled below, at build time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/app/tmp \
    TMPDIR=/app/tmp \
    XDG_CACHE_HOME=/app/tmp/.cache

RUN groupadd --system --gid 10001 txo \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /app/tmp --shell /usr/sbin/nologin txo

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Copied as root; the modes are then set to 644/755 whatever the build machine's umask gave
# the checkout (a 600 file would be unreadable for the runtime user): the user can read the
# code but not change it. config/ is never copied: it is mounted read-only at run time.
COPY utils/ utils/
COPY src/ src/
COPY schemas/ schemas/
COPY deploy/entrypoint.py deploy/entrypoint.py

# Bytecode by source hash (checked-hash), not timestamp: it stays valid when a build tool
# rewrites file times (SOURCE_DATE_EPOCH), so no run compiles in memory. output/, logs/,
# state/ and tmp/ are where the toolkit writes (mount points in compose and Kubernetes; state/
# must persist between runs); config/ and data/ are read-only inputs.
RUN python -m compileall -q --invalidation-mode checked-hash utils src deploy \
    && chmod -R u=rwX,go=rX utils src schemas deploy \
    && mkdir -p config data output logs state tmp \
    && chown 10001:10001 output logs state \
    && chmod 0750 output logs state \
    && chmod 1777 tmp

USER 10001:10001

# A batch job reports its health through its exit code (see the README); there is no
# long-running process to probe.
HEALTHCHECK NONE

# exec form: the script replaces the entry point (os.execv) and is the process that receives
# SIGTERM, so an interrupted run exits 143 with its files whole.
ENTRYPOINT ["python", "-m", "deploy.entrypoint"]
CMD ["--help"]
