# The keyledger image compose.yaml builds: the API (`keyledger serve`), the audit relay
# (`keyledger relay`) and the admin CLI, from this checkout.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    KEYLEDGER_KEYS_DIR=/var/lib/keyledger/keys
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY adapters adapters
COPY projections projections
COPY api api
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 keyledger \
    && mkdir -p /var/lib/keyledger/keys \
    && chown -R keyledger /var/lib/keyledger
USER keyledger
EXPOSE 8000
CMD ["keyledger", "serve", "--host", "0.0.0.0"]
