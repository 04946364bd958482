# syntax=docker/dockerfile:1
# The keyledger image: `keyledger serve` by default; the same image runs `keyledger relay`,
# `keyledger detect` and the installation commands (compose.yaml, deploy/kubernetes).
#
# builder: a virtual environment holding the runtime dependencies exactly as requirements.lock
#          pins them (`make lock`; every file checked against its hash, wheels only) and
#          keyledger's own wheel, built from this checkout.
# runtime: that environment on a slim Python, as an unprivileged numeric user, with nothing
#          written at run time but /tmp (multi-worker metrics) and, without PostgreSQL or the
#          secret variables, /var/lib/keyledger: it runs with a read-only root filesystem.
#          No pip cache, no build tools, and no embedded Kafka broker (the `embedded` extra,
#          for development): set KEYLEDGER_KAFKA_BOOTSTRAP (or `off`).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/keyledger
WORKDIR /src
COPY requirements.lock ./
RUN /opt/keyledger/bin/pip install --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY domain domain
COPY adapters adapters
COPY projections projections
COPY api api
RUN /opt/keyledger/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && /opt/keyledger/bin/pip install --no-deps --no-index /tmp/wheels/keyledger-*.whl

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="keyledger" \
      org.opencontainers.image.description="An event-sourced OAuth 2.0 authorization server for machine-to-machine clients" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 keyledger \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/keyledger --shell /usr/sbin/nologin keyledger \
    && mkdir -p /var/lib/keyledger/keys \
    && chown -R 10001:10001 /var/lib/keyledger \
    && chmod 0700 /var/lib/keyledger/keys
COPY --from=builder /opt/keyledger /opt/keyledger
ENV PATH=/opt/keyledger/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEYLEDGER_KEYS_DIR=/var/lib/keyledger/keys
WORKDIR /var/lib/keyledger
USER 10001:10001
EXPOSE 8000
# /readyz of `keyledger serve` (KEYLEDGER_HOST and KEYLEDGER_PORT, default 8000), standard
# library only. Containers running relay or detect set their own (compose.yaml does).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "api.http.ops.readiness_probe"]
CMD ["keyledger", "serve", "--host", "0.0.0.0"]
