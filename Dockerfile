# migrate-bot: `docker build -t migrate-bot .` then see docs/deploy.md.
# The base is pinned to a patch release; pin it by digest too in your fork:
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm  ->  FROM python:3.11.13-slim-bookworm@sha256:…

# --- builder: build the wheel and a venv holding it and its dependencies --------------------------
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
COPY providers ./providers

# The venv gets no pip of its own: the base image's pip installs into it (`--python`), so the
# app's venv carries no package installer. Every dependency ships binary wheels for amd64 and
# arm64, so no compiler is needed here either. Bytecode is compiled once, checked by hash rather
# than mtime, since the root filesystem is read-only at run time.
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/migrate-bot \
 && pip --python /opt/migrate-bot/bin/python install --no-compile /wheels/migrate_bot-*.whl \
 && /opt/migrate-bot/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/migrate-bot/lib

# --- runtime: the interpreter, the venv, a non-root user; no compiler, no build tools -------------
FROM python:3.11.13-slim-bookworm

LABEL org.opencontainers.image.title="migrate-bot" \
      org.opencontainers.image.description="Slack ChatOps bot: NGINX Ingress to Alibaba Cloud MSE cutover" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric UID/GID, so Kubernetes can check runAsNonRoot; the Helm chart uses the same.
RUN groupadd --system --gid 10001 migrate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin migrate

COPY --from=builder /opt/migrate-bot /opt/migrate-bot

ENV PATH=/opt/migrate-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    MIGRATE_CONFIG=/etc/migrate-bot/config.yaml

# Works with a read-only root filesystem: only /tmp is written (an emptyDir in the chart).
WORKDIR /tmp
USER 10001:10001
EXPOSE 3000

# No curl in slim images: the stdlib asks /healthz; any error or non-2xx status exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

ENTRYPOINT ["migrate-bot", "serve"]
