"""Configuration, read from `KEYLEDGER_*` environment variables (the README's table)."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

from adapters.kafka import IDEMPOTENCE_CHOICES
from adapters.kafka_security import KafkaSecurity
from adapters.metrics import ClientLabelPolicy
from adapters.signing import SUPPORTED_ALGORITHMS
from adapters.tracing import TRACING_CHOICES, otlp_headers
from api.kafka_settings import kafka_security
from api.tls_settings import ServerTls, server_tls
from domain.forwarded import TrustedProxies
from domain.signing_keys import MAX_PREPUBLICATION

KAFKA_OFF = "off"
# `keyledger serve` runs the work that follows the log (the audit relay, the analytics table,
# the ledger's tree and checkpoints, scheduled retention) in one process of its own beside the
# request workers ("process"), or as threads inside each worker ("workers"); "auto", the
# default, is the process, whatever the worker count (measured: api/background.py).
BACKGROUND_PLACES = ("auto", "workers", "process")


class SettingsError(ValueError):
    """A configuration value keyledger cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Every setting with its default; `KEYLEDGER_<NAME>` overrides each."""

    database_url: str = "sqlite:///var/keyledger.db"
    issuer: str | None = None
    keys_dir: Path = Path("var/keys")
    signing_alg: str = "ES256"
    secret_pepper: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    follow_interval: float = 0.1
    write_batch_max: int = 128
    write_queue_max: int = 10_000
    write_gather_wait: float = 0.001
    db_pool_size: int = 5
    log_level: str = "info"
    log_format: str = "json"
    access_log: bool = True
    metrics_client_labels: str = "top:20"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    tracing: str = "off"
    otlp_endpoint: str | None = None
    otlp_headers: str | None = field(default=None, repr=False)
    trace_sample_ratio: float = 1.0
    bench_skip_event_write: bool = False
    kafka_bootstrap: str | None = None
    embedded_broker_port: int = 9092
    kafka_idempotence: str = "auto"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_sasl_password_file: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_check_hostname: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    audit_topic: str = "keyledger.audit.v1"
    audit_topic_partitions: int = 6
    audit_topic_replicas: int = 1
    relay_in_serve: bool = True
    background_jobs: str = "auto"  # where serve runs relay, analytics, ledger, retention
    relay_batch_max: int = 1000
    relay_backoff_max: float = 30.0
    observation_buffer: int = 10_000
    max_header_bytes: int = 16_384
    max_headers: int = 100
    abuse_failure_burst: int = 20
    abuse_failure_window: float = 60.0
    trusted_proxies: str = ""
    quota_processes: int = 0
    alerts_topic: str = "keyledger.alerts.v1"
    detect_group: str = "keyledger-detector"
    detect_brute_force_failures: int = 10
    detect_brute_force_window: int = 60
    detect_spike_factor: float = 50.0
    detect_spike_floor: int = 100
    detect_spike_bucket: int = 60
    detect_spike_min_history: int = 5
    detect_spike_alpha: float = 0.2
    detect_retired_window: int = 3600
    detect_inactive_window: int = 3600
    detect_probe_rejections: int = 5
    detect_probe_window: int = 300
    detect_network_learning: int = 86_400
    detect_revoke_on_retired_secret: bool = False
    detect_session_timeout_ms: int = 10_000
    detect_ledger_audit_interval: int = 3600
    analytics_in_serve: bool = True
    analytics_interval: float = 1.0
    rotation_policy_days: int = 90
    dormant_days: int = 30
    assertion_max_lifetime: int = 3600
    assertion_leeway: int = 60
    key_encryption_key: str | None = field(default=None, repr=False)
    key_rotation_days: int = 90
    key_prepublish_seconds: int = 600
    ledger_in_serve: bool = True
    ledger_origin: str | None = None
    ledger_checkpoint_interval: float = 60.0
    token_event_retention: int = 400
    archive_dir: Path = Path("var/archives")
    archive_url: str | None = None  # s3://bucket/prefix: archives in an S3-compatible store
    retention_in_serve: bool = False
    retention_interval: float = 86_400.0

    @property
    def jobs_in_own_process(self) -> bool:
        """Whether `serve` runs the background jobs in a process of their own."""
        return self.background_jobs in ("auto", "process")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        _refuse_unknown(env, {f"KEYLEDGER_{f.name.upper()}" for f in fields(cls)})
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"KEYLEDGER_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw, f.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.signing_alg not in SUPPORTED_ALGORITHMS:
            raise SettingsError(
                f"KEYLEDGER_SIGNING_ALG must be one of {', '.join(SUPPORTED_ALGORITHMS)}"
            )
        if not self.issuer_url.startswith(("https://", "http://")) or "#" in self.issuer_url:
            raise SettingsError("KEYLEDGER_ISSUER must be an http(s) URL without fragment")
        if not 1 <= self.workers <= 64:
            raise SettingsError("KEYLEDGER_WORKERS must be 1 to 64")
        if self.follow_interval <= 0 or self.write_batch_max < 1 or self.write_queue_max < 1:
            raise SettingsError("follow interval, batch and queue sizes must be positive")
        if not 0 <= self.write_gather_wait <= 0.1:
            raise SettingsError("KEYLEDGER_WRITE_GATHER_WAIT must be 0 to 0.1 seconds")
        if self.kafka_idempotence not in IDEMPOTENCE_CHOICES:
            raise SettingsError(
                f"KEYLEDGER_KAFKA_IDEMPOTENCE must be one of {', '.join(IDEMPOTENCE_CHOICES)}"
            )
        if min(self.audit_topic_partitions, self.audit_topic_replicas, self.relay_batch_max) < 1:
            raise SettingsError("topic partitions, replicas and the relay batch must be positive")
        if self.background_jobs not in BACKGROUND_PLACES:
            raise SettingsError(
                f"KEYLEDGER_BACKGROUND_JOBS must be one of {', '.join(BACKGROUND_PLACES)}"
            )
        if self.log_format not in ("json", "console"):
            raise SettingsError("KEYLEDGER_LOG_FORMAT must be json or console")
        if self.analytics_interval <= 0:
            raise SettingsError("KEYLEDGER_ANALYTICS_INTERVAL must be positive")
        if self.rotation_policy_days < 1 or self.dormant_days < 1:
            raise SettingsError(
                "KEYLEDGER_ROTATION_POLICY_DAYS and KEYLEDGER_DORMANT_DAYS must be at least 1"
            )
        if self.quota_processes < 0:
            raise SettingsError(
                "KEYLEDGER_QUOTA_PROCESSES must be 0 (this server's workers) or more"
            )
        if self.abuse_failure_burst < 0 or self.abuse_failure_window <= 0:
            raise SettingsError("KEYLEDGER_ABUSE_FAILURE_BURST >= 0 (0: off), WINDOW > 0")
        try:
            TrustedProxies.parse(self.trusted_proxies)
        except ValueError as bad:
            raise SettingsError(f"KEYLEDGER_TRUSTED_PROXIES: {bad}") from None
        if self.observation_buffer < 1 or self.relay_backoff_max <= 0:
            raise SettingsError("the observation buffer and relay backoff must be positive")
        if not 1024 <= self.max_header_bytes <= 1_048_576 or not 8 <= self.max_headers <= 1000:
            raise SettingsError(
                "KEYLEDGER_MAX_HEADER_BYTES must be 1024 to 1048576, "
                "KEYLEDGER_MAX_HEADERS 8 to 1000"
            )
        detection = [getattr(self, f.name) for f in fields(self) if f.name.startswith("detect_")]
        if any(
            isinstance(v, int | float) and not isinstance(v, bool) and v <= 0 for v in detection
        ):
            raise SettingsError("every KEYLEDGER_DETECT_* threshold must be positive")
        if not 0 < self.detect_spike_alpha <= 1:
            raise SettingsError("KEYLEDGER_DETECT_SPIKE_ALPHA must be above 0 and at most 1")
        if not 1 <= self.assertion_max_lifetime <= 86_400 or not 0 <= self.assertion_leeway <= 600:
            raise SettingsError(
                "KEYLEDGER_ASSERTION_MAX_LIFETIME must be 1 to 86400 seconds and "
                "KEYLEDGER_ASSERTION_LEEWAY 0 to 600"
            )
        if self.key_rotation_days < 0 or not (
            0 <= self.key_prepublish_seconds <= MAX_PREPUBLICATION.total_seconds()
        ):
            raise SettingsError(
                "KEYLEDGER_KEY_ROTATION_DAYS (0: never) must not be negative, "
                "KEYLEDGER_KEY_PREPUBLISH_SECONDS 0 to "
                f"{int(MAX_PREPUBLICATION.total_seconds())} ({MAX_PREPUBLICATION.days} days)"
            )
        if self.ledger_checkpoint_interval <= 0:
            raise SettingsError("KEYLEDGER_LEDGER_CHECKPOINT_INTERVAL must be positive (seconds)")
        if not 1 <= self.token_event_retention <= 36_500:
            raise SettingsError("KEYLEDGER_TOKEN_EVENT_RETENTION must be 1 to 36500 (days)")
        if str(self.archive_dir).startswith("s3:"):
            raise SettingsError(
                "KEYLEDGER_ARCHIVE_DIR is a directory; an S3 bucket goes in KEYLEDGER_ARCHIVE_URL"
            )
        if self.archive_url is not None and not re.fullmatch(
            r"s3://[^/?#]+(/[^?#]*)?", self.archive_url
        ):
            raise SettingsError("KEYLEDGER_ARCHIVE_URL must be s3://bucket or s3://bucket/prefix")
        if self.retention_interval <= 0:
            raise SettingsError("KEYLEDGER_RETENTION_INTERVAL must be positive (seconds)")
        if self.ledger_origin is not None and (
            not self.ledger_origin
            or "+" in self.ledger_origin
            or any(c.isspace() for c in self.ledger_origin)
        ):
            raise SettingsError(
                "KEYLEDGER_LEDGER_ORIGIN must be a name without spaces or '+' "
                "(a schema-less URL such as auth.example.com/ledger)"
            )
        if not 1 <= self.embedded_broker_port <= 65535:
            raise SettingsError("KEYLEDGER_EMBEDDED_BROKER_PORT must be a TCP port")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError("KEYLEDGER_METRICS_PORT must be a TCP port (0: off)")
        self._check_tracing()
        self.client_labels  # noqa: B018 - parsing it checks KEYLEDGER_METRICS_CLIENT_LABELS
        self.kafka_security  # noqa: B018 - building it checks the TLS and SASL settings
        self.server_tls  # noqa: B018 - loading it checks the certificate and key files

    def _check_tracing(self) -> None:
        if self.tracing not in TRACING_CHOICES:
            raise SettingsError(f"KEYLEDGER_TRACING must be one of {', '.join(TRACING_CHOICES)}")
        if not 0 <= self.trace_sample_ratio <= 1:
            raise SettingsError("KEYLEDGER_TRACE_SAMPLE_RATIO must be 0 to 1")
        if self.otlp_endpoint is not None and not self.otlp_endpoint.startswith(
            ("http://", "https://")
        ):
            raise SettingsError("KEYLEDGER_OTLP_ENDPOINT must be an http(s) URL")
        try:
            otlp_headers(self.otlp_headers)
        except ValueError as bad:  # the message never repeats the value: it holds secrets
            raise SettingsError(f"KEYLEDGER_OTLP_HEADERS: {bad}") from None

    @property
    def archive_location(self) -> str:
        """Where retention writes its archives: the bucket if one is set, else the directory."""
        return self.archive_url or str(self.archive_dir)

    @property
    def kafka_enabled(self) -> bool:
        return self.kafka_bootstrap != KAFKA_OFF

    @property
    def embedded_broker(self) -> bool:
        """Unset bootstrap: `serve` starts the embedded broker and publishes there."""
        return self.kafka_bootstrap is None

    @property
    def kafka_address(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.embedded_broker_port}"

    @property
    def kafka_security(self) -> KafkaSecurity:
        """TLS and SASL for every Kafka client (api/kafka_settings.py checks the combinations)."""
        try:
            return kafka_security(self)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @cached_property
    def server_tls(self) -> ServerTls | None:
        """TLS for `serve` (api/tls_settings.py checks the files), None for plain HTTP."""
        try:
            return server_tls(self)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @cached_property
    def client_labels(self) -> ClientLabelPolicy:
        """`KEYLEDGER_METRICS_CLIENT_LABELS`: which clients get metric series of their own."""
        try:
            return ClientLabelPolicy.parse(self.metrics_client_labels)
        except ValueError as exc:
            raise SettingsError(f"KEYLEDGER_METRICS_CLIENT_LABELS: {exc}") from None

    @cached_property
    def proxies(self) -> TrustedProxies:
        """`KEYLEDGER_TRUSTED_PROXIES`, parsed once: whose forwarding headers count."""
        return TrustedProxies.parse(self.trusted_proxies)

    @property
    def issuer_url(self) -> str:
        """`KEYLEDGER_ISSUER`, else the URL the server listens on (https with TLS)."""
        scheme = "https" if self.tls_cert_file else "http"
        return (self.issuer or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def ledger_name(self) -> str:
        """The checkpoints' origin and key name: KEYLEDGER_LEDGER_ORIGIN, else from the issuer."""
        if self.ledger_origin:
            return self.ledger_origin
        return self.issuer_url.split("://", 1)[1].replace("+", "-") + "/ledger"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer_url}/oauth2/token"


def _convert(name: str, raw: str, kind: object) -> object:
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        if kind in ("bool", bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
        if kind in ("Path", Path):
            return Path(raw)
    except ValueError:
        raise SettingsError(f"KEYLEDGER_{name.upper()} has an invalid value: {raw!r}") from None
    return raw


# Variables of the keyledger family that are not server settings: the admin CLI's (which
# server, which admin client, which profile), the examples' client side (`KEYLEDGER_URL`),
# the test suite's and the benches' own.
CLI_VARIABLES = frozenset(
    {
        "KEYLEDGER_SERVER",
        "KEYLEDGER_ADMIN_CLIENT_ID",
        "KEYLEDGER_ADMIN_CLIENT_SECRET",
        "KEYLEDGER_ADMIN_KEY_FILE",
        "KEYLEDGER_PROFILE",
    }
)
# serve's own hand-over to the processes it starts (api/background_status.py), not a setting
BACKGROUND_STATUS = "KEYLEDGER_BACKGROUND_STATUS"
NOT_SETTINGS = CLI_VARIABLES | {"KEYLEDGER_URL", "KEYLEDGER_BENCH_PG", BACKGROUND_STATUS}
NOT_SETTINGS_PREFIXES = ("KEYLEDGER_TEST_",)


def _refuse_unknown(env: Mapping[str, str], known: set[str]) -> None:
    """A misspelled setting is an error naming the closest known one, never silently unset."""
    for name in sorted(env):
        if not name.startswith("KEYLEDGER_") or name in known or name in NOT_SETTINGS:
            continue
        if name.startswith(NOT_SETTINGS_PREFIXES):
            continue
        prefix = len("KEYLEDGER_")  # shared by all: compare what follows it
        close = difflib.get_close_matches(name[prefix:], [k[prefix:] for k in sorted(known)], n=1)
        hint = f"; did you mean KEYLEDGER_{close[0]}?" if close else ""
        raise SettingsError(f"unknown setting {name}{hint}")
