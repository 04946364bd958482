"""The composition root: builds the real adapters from `Settings` and wires the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from adapters import metrics
from adapters.alert_store import AlertStore
from adapters.archived_log import ArchivedLog, LogWithArchives
from adapters.assertion_ids import UsedAssertionIds
from adapters.async_group_commit import AsyncPostgresGroupCommitter
from adapters.client_assertion import AssertionRules, AssertionVerifier
from adapters.client_secrets import SecretHasher
from adapters.clock import PostgresClock, SystemClock
from adapters.event_store import Ledger, NotInstalled
from adapters.group_commit import GroupCommitter
from adapters.installation import InstallationSecrets, read_secrets
from adapters.kafka import KafkaConfig, ensure_topic, start_producer
from adapters.key_vault import KeyVault
from adapters.ledger_signer import ed25519_verify, note_key
from adapters.ledger_sources import StoreEntries
from adapters.ledger_store import LedgerTables
from adapters.log_changes import ChangeListener, LogChanges
from adapters.named_lock import exclusive, sqlite_path
from adapters.observation_buffer import ObservationBuffer
from adapters.postgres_recorder import GroupCommitPostgresApplicationRecorder, changes_channel
from adapters.projection_tables import clients_table
from adapters.relay_store import relay_store
from adapters.removed_archives import archived_log, every_archived_row
from adapters.signing import JwtSigner, JwtVerifier, KeyRing
from adapters.token_archives import open_archives
from adapters.token_event_rows import TokenEventRows
from adapters.tracing import NoTracing, Tracing, otlp_headers, otlp_tracing
from api import shutdown
from api.background import BackgroundJobs, keeper_health
from api.background_status import reported_failures
from api.http import server
from api.settings import Settings, SettingsError
from api.usecases.access_tokens import AccessTokenValidator
from api.usecases.admin_access import AccessTokenVerifier
from api.usecases.alerts import AlertQueries
from api.usecases.analytics import AnalyticsKeeper, AnalyticsReports
from api.usecases.client_admin import ClientAdmin
from api.usecases.client_authentication import ClientAuthenticator
from api.usecases.introspection import TokenIntrospector
from api.usecases.issuance import TokenIssuer
from api.usecases.ledger_proofs import LedgerAdmin, LedgerQueries
from api.usecases.ledger_verification import found_tampering, tamper_alert, verify_ledger
from api.usecases.ports import Clock, DatabaseClock
from api.usecases.projection_status import relay_lag
from api.usecases.revocation import TokenRevoker
from api.usecases.signing_keys import SigningKeyAdmin, SigningKeysKeeper
from api.usecases.token_retention import RetentionSchedule, TokenRetentionRun, removed_periods
from domain.admin_scopes import TOKENS, Admin
from domain.anomaly_detection import RULES, Alert, Thresholds
from domain.installation import Installation
from domain.observations import AUTHENTICATION_FAILURE_REASONS, SecurityObservation
from domain.quotas import IssuanceQuotas
from domain.throttling import FailureThrottle
from projections.alert_format import alert_message
from projections.audit_format import security_message
from projections.audit_relay import AuditRelay, RelayConfig
from projections.clients import ClientsFollower, ClientsView
from projections.detector_service import DetectorConfig, DetectorService
from projections.ledger import LedgerBuilder
from projections.ledger_service import LedgerConfig, LedgerKeyring, LedgerService
from projections.tokens import RevokedTokensFollower, RevokedTokensView, revoked_tokens_table

log = logging.getLogger("keyledger")


class SkipEventWrite:
    """Benchmark-only writer that records nothing: it breaks DESIGN.md invariant 1."""

    def submit(self, events: Sequence[Any]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def open_ledger(settings: Settings, *, create: bool = False) -> Ledger:
    """The event store of an existing installation; with `create` (only `serve` and
    `admin bootstrap`), its database file and tables are created when missing."""
    ledger = Ledger(settings.database_url, pool_size=settings.db_pool_size, create=create)
    if not create and ledger.get_installation() is None:
        ledger.close()
        raise NotInstalled(settings.database_url)
    return ledger


def installation_secrets(settings: Settings, ledger: Ledger) -> InstallationSecrets:
    """This process's key-encryption key and pepper, refused (naming the variable) unless
    they are the ones the installation recorded; generated only for a new installation."""
    installation = ledger.get_installation()
    secrets = read_secrets(
        settings.keys_dir,
        settings.key_encryption_key,
        settings.secret_pepper,
        create=installation is None,
    )
    if installation is not None:
        installation.check(
            kek_fingerprint=secrets.kek_fingerprint, pepper_fingerprint=secrets.pepper_fingerprint
        )
    return secrets


def record_installation(ledger: Ledger, secrets: InstallationSecrets, clock: Clock) -> None:
    """Record the installation's fingerprints once; a racing process's record must match."""
    if ledger.get_installation() is None:
        installation = Installation(
            kek_fingerprint=secrets.kek_fingerprint,
            pepper_fingerprint=secrets.pepper_fingerprint,
            at=clock.now(),
        )
        with contextlib.suppress(IntegrityError):
            ledger.save(installation)
    recorded = ledger.get_installation()
    assert recorded is not None
    recorded.check(
        kek_fingerprint=secrets.kek_fingerprint, pepper_fingerprint=secrets.pepper_fingerprint
    )


def kafka_config(settings: Settings) -> KafkaConfig:
    """How every Kafka client reaches the broker: address, idempotence, TLS and SASL."""
    return KafkaConfig(
        settings.kafka_address,
        idempotence=settings.kafka_idempotence,
        security=settings.kafka_security,
    )


async def topic_producer(settings: Settings, topic: str) -> Any:
    """A started producer for `topic`, the topic created if missing."""
    config = kafka_config(settings)
    await ensure_topic(
        config, topic, settings.audit_topic_partitions, settings.audit_topic_replicas
    )
    return await start_producer(config)


def relay_name(settings: Settings) -> str:
    return f"audit:{settings.audit_topic}"


def tracing_for(settings: Settings, process: str) -> Tracing:
    """KEYLEDGER_TRACING: off, or spans to the OTLP collector, named for `process`."""
    if settings.tracing == "off":
        return NoTracing()
    return otlp_tracing(
        process,
        settings.otlp_endpoint,
        otlp_headers(settings.otlp_headers),
        settings.trace_sample_ratio,
    )


def build_relay(settings: Settings, ledger: Ledger, tracing: Tracing | None = None) -> AuditRelay:
    """The audit relay over this event store, publishing to the configured broker; its own
    tracing (`keyledger relay`) unless it runs inside `serve`, which shares the server's."""
    return AuditRelay(
        ledger.compact_mapper,
        relay_store(ledger, relay_name(settings)),
        lambda: topic_producer(settings, settings.audit_topic),
        RelayConfig(
            topic=settings.audit_topic,
            source=settings.issuer_url,
            batch_max=settings.relay_batch_max,
            interval=settings.follow_interval,
            backoff_max=settings.relay_backoff_max,
        ),
        tracing or tracing_for(settings, "relay"),
    )


def serve_metrics(
    settings: Settings, ledger: Ledger, service: object
) -> metrics.MetricsServer | None:
    """`keyledger relay` and `keyledger detect` have no HTTP server: their `GET /metrics` is
    on KEYLEDGER_METRICS_HOST:KEYLEDGER_METRICS_PORT (0: none)."""
    metrics.configure(settings.client_labels)
    collectors: list[Any] = [metrics.BuildInfo(type(service).__name__)]
    if isinstance(service, AuditRelay):
        name = relay_name(settings)
        lag = metrics.LagCollector(
            lambda: [relay_lag(ledger, name, datetime.now(UTC))], relay_only=True
        )
        collectors = [metrics.BuildInfo("relay"), lag]
    elif isinstance(service, DetectorService):
        detector = service
        metrics.start_at_zero(metrics.DETECTOR_ALERTS, RULES)
        state = metrics.ConsumerLagCollector(lambda: (detector.assigned, detector.lag))
        collectors = [metrics.BuildInfo("detect"), state]
    if not settings.metrics_port:
        return None
    try:
        return metrics.MetricsServer(settings.metrics_host, settings.metrics_port, *collectors)
    except OSError as exc:
        raise SettingsError(
            f"KEYLEDGER_METRICS_PORT: cannot listen on {settings.metrics_host}:"
            f"{settings.metrics_port}: {exc.strerror or exc}"
        ) from None


def build_ledger_service(
    settings: Settings, ledger: Ledger, clock: Clock, secrets: InstallationSecrets
) -> LedgerService:
    """The ledger's builder and checkpoint signer; one is active across every process."""
    tables = ledger_tables(ledger)
    return LedgerService(
        LedgerBuilder(tables),
        tables,
        LedgerKeyring(ledger, KeyVault(secrets.kek), clock.now),
        LedgerConfig(
            origin=settings.ledger_name,
            checkpoint_interval=settings.ledger_checkpoint_interval,
            interval=max(settings.follow_interval, 1.0),
            standby_interval=5.0,
        ),
        lambda: exclusive(settings.database_url, "ledger-builder"),
    )


def ledger_tables(ledger: Ledger) -> LedgerTables:
    return LedgerTables(
        ledger.datastore,
        postgres=sqlite_path(ledger.database_url) is None,
        events_table=getattr(ledger.recorder, "events_table_name", None),
    )


def build_observations(settings: Settings) -> ObservationBuffer:
    source = settings.issuer_url

    def encode(observation: SecurityObservation) -> tuple[bytes, bytes]:
        return security_message(observation, source)

    return ObservationBuffer(
        (lambda: topic_producer(settings, settings.audit_topic))
        if settings.kafka_enabled
        else None,
        encode=encode,
        topic=settings.audit_topic,
        capacity=settings.observation_buffer,
        backoff_max=settings.relay_backoff_max,
    )


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        brute_force_failures=settings.detect_brute_force_failures,
        brute_force_window=settings.detect_brute_force_window,
        spike_factor=settings.detect_spike_factor,
        spike_floor=settings.detect_spike_floor,
        spike_bucket=settings.detect_spike_bucket,
        spike_min_history=settings.detect_spike_min_history,
        spike_alpha=settings.detect_spike_alpha,
        retired_window=settings.detect_retired_window,
        inactive_window=settings.detect_inactive_window,
        probe_rejections=settings.detect_probe_rejections,
        probe_window=settings.detect_probe_window,
        network_learning=settings.detect_network_learning,
    )


def build_detector(settings: Settings, ledger: Ledger) -> DetectorService:
    """`keyledger detect`: the consumer, its store, the alerts producer, the opt-in responses."""
    source = settings.issuer_url
    respond = None
    if settings.detect_revoke_on_retired_secret:
        pepper = installation_secrets(settings, ledger).pepper
        admin = ClientAdmin(ledger, SecretHasher(pepper), SystemClock())
        respond = revoke_on_retired_secret(admin)

    def encode(alert: Alert) -> tuple[bytes, bytes]:
        return alert_message(alert, source)

    return DetectorService(
        DetectorConfig(
            bootstrap=settings.kafka_address,
            security=settings.kafka_security,
            audit_topic=settings.audit_topic,
            alerts_topic=settings.alerts_topic,
            group=settings.detect_group,
            thresholds=thresholds(settings),
            backoff_max=settings.relay_backoff_max,
            session_timeout_ms=settings.detect_session_timeout_ms,
            verify_note=ed25519_verify,
            ledger_audit_interval=settings.detect_ledger_audit_interval,
        ),
        AlertStore(settings.database_url),
        lambda: topic_producer(settings, settings.alerts_topic),
        encode,
        respond,
        ledger_audit=ledger_audit(settings, ledger),
    )


def ledger_audit(settings: Settings, ledger: Ledger) -> Callable[[], list[Alert]]:
    """The detector's periodic `ledger verify` of the store against its own checkpoints."""
    tables = ledger_tables(ledger)

    def audit() -> list[Alert]:
        stored = tables.checkpoints(limit=1_000_000)
        if not stored:
            return []  # nothing signed yet: nothing to hold the store against
        keys = [note_key(k) for k in LedgerQueries(ledger, tables).public_keys()]
        notes = [(f"stored checkpoint {c.size}", c.note) for c in stored]
        # The months retention removed are read from their archives (an archive that cannot
        # be read fails the audit with its reason, logged; it raises no tampering alert).
        archived = every_archived_row(removed_periods(ledger))
        report = verify_ledger(
            StoreEntries(ledger_tables(ledger), archived), notes, keys, ed25519_verify, tables
        )
        summary = found_tampering(report)
        if summary is None:
            return []
        at = SystemClock().now()
        return [tamper_alert(summary, settings.ledger_name, stored[-1].size, at)]

    return audit


def revoke_on_retired_secret(admin: ClientAdmin) -> Callable[[Alert], Awaitable[None]]:
    """The opt-in response: void the tokens minted with a secret that is being misused.
    The detector acts with the token-revocation scope only, recorded as actor `detector`."""
    detector = Admin("detector", frozenset({TOKENS}))

    async def respond(alert: Alert) -> None:
        if alert.rule != "retired_secret_use" or alert.secret_generation is None:
            return
        generation = alert.secret_generation
        try:
            await asyncio.to_thread(
                admin.revoke_tokens,
                alert.subject,
                by=detector,
                secret_generation=generation,
                reason=f"alert {alert.id}: {alert.summary}",
            )
            log.warning(
                "detector revoked %s's tokens of secret generation %d", alert.subject, generation
            )
        except Exception as exc:
            log.error("detector could not revoke tokens for alert %s: %s", alert.id, exc)

    return respond


def prepare(settings: Settings, *, create: bool = False) -> None:
    """Create the read-model tables once, before any worker process starts; with `create`
    (`serve`, `admin bootstrap`), also a new installation: its keys, first signing key and
    fingerprints. Without it, the installation must exist."""
    ledger = open_ledger(settings, create=create)
    try:
        clients_table(ledger.datastore)
        revoked_tokens_table(ledger.datastore)
        ledger_tables(ledger).create()
        used_assertions(settings, ledger)
        AlertStore(settings.database_url)  # its tables, before any worker races for them
        if create:
            clock = SystemClock()
            secrets = installation_secrets(settings, ledger)
            # The first key is sealed (or an old store's keys opened) before the fingerprints
            # are recorded: a key-encryption key that cannot open them is never recorded.
            key_admin(settings, ledger, clock, secrets).ensure(settings.keys_dir)
            record_installation(ledger, secrets, clock)
    finally:
        ledger.close()


def key_admin(
    settings: Settings, ledger: Ledger, clock: Clock, secrets: InstallationSecrets | None = None
) -> SigningKeyAdmin:
    secrets = secrets or installation_secrets(settings, ledger)
    return SigningKeyAdmin(ledger, KeyVault(secrets.kek), clock, settings.signing_alg)


def key_keeper(
    settings: Settings,
    ledger: Ledger,
    clock: Clock,
    secrets: InstallationSecrets | None = None,
    changes: LogChanges | None = None,
) -> SigningKeysKeeper:
    """A ring loaded with the current keys (created on the very first start), kept in step;
    refused (`SigningKeyUnavailable`) when the key that signs now cannot be opened."""
    admin = key_admin(settings, ledger, clock, secrets)
    keeper = SigningKeysKeeper(
        ledger,
        admin,
        KeyRing([]),
        clock,
        interval=settings.follow_interval,
        rotate_every=(
            timedelta(days=settings.key_rotation_days) if settings.key_rotation_days else None
        ),
        lead=timedelta(seconds=settings.key_prepublish_seconds),
        changes=changes,
    )
    keys = admin.ensure(settings.keys_dir)
    admin.check_signer(keys)
    keeper.load(keys)
    return keeper


def used_assertions(settings: Settings, ledger: Ledger) -> UsedAssertionIds:
    """The shared single-use `jti` table, kept past expiry by the leeway `exp` is allowed."""
    return UsedAssertionIds(ledger.datastore, keep_after_expiry=settings.assertion_leeway + 1)


def assertion_verifier(settings: Settings) -> AssertionVerifier:
    return AssertionVerifier(
        AssertionRules(
            issuer=settings.issuer_url,
            token_endpoint=settings.token_endpoint,
            max_lifetime=settings.assertion_max_lifetime,
            leeway=settings.assertion_leeway,
        )
    )


@dataclass
class Runtime:
    """Everything a server process runs, started and stopped together."""

    settings: Settings
    ledger: Ledger
    keys: KeyRing
    hasher: SecretHasher
    view: ClientsView
    follower: ClientsFollower
    committer: GroupCommitter | AsyncPostgresGroupCommitter
    issuer: TokenIssuer
    admin: ClientAdmin
    admin_verifier: AccessTokenVerifier
    clock: Clock
    revoked_view: RevokedTokensView
    revoked_follower: RevokedTokensFollower
    introspector: TokenIntrospector
    revoker: TokenRevoker
    observations: ObservationBuffer
    relay: AuditRelay | None
    alerts: AlertStore
    key_admin: SigningKeyAdmin
    authenticator: ClientAuthenticator
    analytics: AnalyticsKeeper | None = None
    key_keeper: SigningKeysKeeper | None = None
    ledger_service: LedgerService | None = None
    ledger_admin: LedgerAdmin | None = None
    retention: RetentionSchedule | None = None
    listener: ChangeListener | None = None
    tracing: Tracing = field(default_factory=NoTracing)
    reports: AnalyticsReports = field(init=False)
    ledger_queries: LedgerQueries = field(init=False)
    alert_queries: AlertQueries = field(init=False)
    jobs: BackgroundJobs = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.jobs = BackgroundJobs(self.relay, self.analytics, self.ledger_service, self.retention)
        self.reports = AnalyticsReports(self.ledger)
        self.ledger_queries = LedgerQueries(self.ledger, ledger_tables(self.ledger))
        self.alert_queries = AlertQueries(self.alerts)

    async def start(self) -> None:
        if self.listener is not None:
            self.listener.start()
        try:
            self.follower.load()
        except Exception:
            log.exception("clients read model not loaded yet; the follower keeps trying")
        self.follower.start()
        try:
            self.revoked_follower.load()
        except Exception:
            log.exception("revoked-tokens read model not loaded yet; the follower keeps trying")
        self.revoked_follower.start()
        if self.key_keeper is not None:
            self.key_keeper.start()
        if isinstance(self.committer, AsyncPostgresGroupCommitter):
            await self.committer.start()
        else:
            self.committer.start()
        await self.jobs.start()
        if not self.settings.kafka_enabled:
            log.warning(
                "KEYLEDGER_KAFKA_BOOTSTRAP=off: the audit stream is disabled; no events or "
                "security observations are published to Kafka"
            )
            return
        self._tasks.append(asyncio.create_task(self.observations.run(), name="observations"))

    async def stop(self) -> None:
        """Stop every loop, each step bounded whatever the database or broker is doing
        (api/shutdown.py); the connections are closed only once nothing uses them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(self.jobs.stop(), shutdown.finish_or_cancel(self._tasks))
        stops: list[Callable[[], object]] = [
            self.follower.stop,
            self.revoked_follower.stop,
            self.tracing.shutdown,
        ]
        stops += [*self.jobs.thread_stops, *([self.key_keeper.stop] if self.key_keeper else [])]
        stops += [self.listener.stop] if self.listener is not None else []
        if isinstance(self.committer, AsyncPostgresGroupCommitter):
            try:  # what is queued is committed, unless the database does not answer
                await asyncio.wait_for(self.committer.stop(), shutdown.GRACE)
            except Exception as exc:
                log.warning("token writer not stopped: %s: %s", type(exc).__name__, exc)
        else:
            stops.append(self.committer.stop)
        if shutdown.call_all_within(stops):
            self.ledger.close()

    @property
    def ready(self) -> bool:
        followers = (self.follower, self.revoked_follower)
        loaded = all(f.ready.is_set() for f in followers) and self.committer.alive
        return loaded and not self.failing

    @property
    def failing(self) -> dict[str, str]:
        """The background loops failing now, each with its last error."""
        loops = [self.follower.health, self.revoked_follower.health]
        loops += [k.health for k in (self.key_keeper, self.analytics) if k is not None]
        if self.key_keeper is not None:
            loops.append(self.key_keeper.signer_health)
        # serve's background process, beside its single worker: uvicorn builds the worker
        # from a factory string, so the keeper cannot be handed to it.
        if (process := keeper_health()) is not None:
            loops.append(process)
        failing = {h.name: h.failure for h in loops if h.failure is not None}
        # and what that process reports of its jobs, to any worker of the same serve
        return {**reported_failures(), **failing}


def _committer(ledger: Ledger, settings: Settings) -> GroupCommitter | AsyncPostgresGroupCommitter:
    """PostgreSQL batches on the event loop; SQLite (no async driver) on a writer thread."""
    recorder = ledger.recorder
    if isinstance(recorder, GroupCommitPostgresApplicationRecorder):
        return AsyncPostgresGroupCommitter(
            settings.database_url,
            recorder.append_statement,
            ledger.mapper,
            max_batch=settings.write_batch_max,
            max_pending=settings.write_queue_max,
            gather_wait=settings.write_gather_wait,
        )
    return GroupCommitter(
        ledger.append, max_batch=settings.write_batch_max, max_pending=settings.write_queue_max
    )


def _change_listener(ledger: Ledger, settings: Settings) -> ChangeListener | None:
    """PostgreSQL's word of each change the workers' followers fold; none on SQLite (they
    poll)."""
    recorder = ledger.recorder
    if not isinstance(recorder, GroupCommitPostgresApplicationRecorder):
        return None
    channel = changes_channel(recorder.events_table_name)
    return ChangeListener(settings.database_url, channel, LogChanges())


def build(
    settings: Settings,
    clock: Clock | None = None,
    tracing: Tracing | None = None,
    *,
    with_jobs: bool = True,
) -> Runtime:
    """Wire a server process from settings; nothing runs until `Runtime.start()`. With
    `with_jobs`, it also runs the background jobs (`background_jobs`) the settings turn on."""
    metrics.configure(settings.client_labels)
    metrics.start_at_zero(
        metrics.AUTHENTICATION_FAILURES, (*AUTHENTICATION_FAILURE_REASONS, "other")
    )
    ledger = open_ledger(settings, create=True)
    clock = clock or SystemClock()
    listener = _change_listener(ledger, settings)
    changes = listener.changes if listener is not None else None
    try:
        secrets = installation_secrets(settings, ledger)
        keeper = key_keeper(settings, ledger, clock, secrets, changes)
        record_installation(ledger, secrets, clock)
        ledger_tables(ledger).create()
    except Exception:
        ledger.close()  # a refused start leaves no connection pool behind
        raise
    keys = keeper.ring
    tracing = tracing or tracing_for(settings, "serve")
    hasher = SecretHasher(secrets.pepper)
    view = ClientsView()
    follower = ClientsFollower(
        ledger,
        clients_table(ledger.datastore),
        view,
        interval=settings.follow_interval,
        changes=changes,
    )
    committer = _committer(ledger, settings)
    authenticator = ClientAuthenticator(
        view,
        hasher,
        assertion_verifier(settings),
        used_assertions(settings, ledger),
        throttle=(
            FailureThrottle(settings.abuse_failure_burst, settings.abuse_failure_window)
            if settings.abuse_failure_burst
            else None
        ),
    )
    if settings.bench_skip_event_write:
        log.warning("KEYLEDGER_BENCH_SKIP_EVENT_WRITE is on: tokens are NOT recorded")
    issuer = TokenIssuer(
        authenticator=authenticator,
        signer=JwtSigner(keys),
        writer=SkipEventWrite() if settings.bench_skip_event_write else committer,
        clock=clock,
        issuer=settings.issuer_url,
        quotas=IssuanceQuotas(settings.quota_processes or settings.workers),
        tracer=tracing,
    )
    revoked_view = RevokedTokensView()
    revoked_follower = RevokedTokensFollower(
        ledger,
        revoked_tokens_table(ledger.datastore),
        revoked_view,
        interval=settings.follow_interval,
        clock=clock,
        changes=changes,
    )
    verifier = JwtVerifier(keys, settings.issuer_url)
    tokens = AccessTokenValidator(verifier, view, revoked_view, clock)
    jobs = background_jobs(settings, ledger, clock, tracing, secrets) if with_jobs else None
    ledger_service = jobs.ledger_service if jobs else None
    return Runtime(
        settings,
        ledger,
        keys,
        hasher,
        view,
        follower,
        committer,
        issuer,
        admin=ClientAdmin(ledger, hasher, clock),
        admin_verifier=AccessTokenVerifier(tokens, settings.issuer_url),
        clock=clock,
        revoked_view=revoked_view,
        revoked_follower=revoked_follower,
        introspector=TokenIntrospector(tokens),
        revoker=TokenRevoker(ledger, verifier, view, clock, revoked_follower),
        observations=build_observations(settings),
        relay=jobs.relay if jobs else None,
        alerts=AlertStore(settings.database_url),
        key_admin=keeper.admin,
        analytics=jobs.analytics if jobs else None,
        key_keeper=keeper,
        authenticator=authenticator,
        ledger_service=ledger_service,
        ledger_admin=LedgerAdmin(
            ledger,
            ledger_tables(ledger),
            KeyVault(secrets.kek),
            clock,
            settings.ledger_name,
            nudge=ledger_service.nudge if ledger_service is not None else None,
        ),
        retention=jobs.retention if jobs else None,
        listener=listener,
        tracing=tracing,
    )


def background_jobs(
    settings: Settings,
    ledger: Ledger,
    clock: Clock | None = None,
    tracing: Tracing | None = None,
    secrets: InstallationSecrets | None = None,
) -> BackgroundJobs:
    """The jobs that follow the log, as the settings turn them on (`api/background.py`)."""
    clock = clock or SystemClock()
    ledger_service = None
    if settings.ledger_in_serve:
        secrets = secrets or installation_secrets(settings, ledger)
        ledger_service = build_ledger_service(settings, ledger, clock, secrets)
    return BackgroundJobs(
        relay=(
            build_relay(settings, ledger, tracing)
            if settings.kafka_enabled and settings.relay_in_serve
            else None
        ),
        analytics=(
            AnalyticsKeeper(
                ledger, lambda: log_with_archives(ledger), interval=settings.analytics_interval
            )
            if settings.analytics_in_serve
            else None
        ),
        ledger_service=ledger_service,
        retention=(
            RetentionSchedule(
                token_retention(ledger, settings, clock=clock),
                settings.retention_interval,
                first_after=min(5.0, settings.retention_interval),
            )
            if settings.retention_in_serve
            else None
        ),
    )


def serve(settings: Settings) -> None:
    """`keyledger serve`: the HTTP application, after `prepare(settings, create=True)`.
    A key that signs now but cannot be opened stops it here, with one clear message, before
    any worker starts (each worker's own start would refuse too, with a traceback)."""
    ledger = open_ledger(settings)
    try:
        admin = key_admin(settings, ledger, SystemClock())
        admin.check_signer(admin.ensure(settings.keys_dir))
    finally:
        ledger.close()
    server.run(settings)


def retention_followers(ledger: Ledger, settings: Settings) -> Callable[[int], list[str]]:
    """Which followers have not yet passed a position: the audit relay (unless the audit
    stream is off), the read models that fold token events, and the ledger's tree."""
    from adapters.relay_store import relay_status
    from api.usecases.analytics import analytics_table
    from projections.analytics import ANALYTICS_TOPICS
    from projections.tokens import REVOKED_TOPICS, revoked_tokens_table

    def behind(position: int) -> list[str]:
        names = []
        relay = relay_status(ledger, relay_name(settings)) if settings.kafka_enabled else None
        if relay is not None and relay["position"] < position:
            names.append("the audit relay")
        for name, table, topics in (
            ("revoked-tokens", revoked_tokens_table(ledger.datastore), REVOKED_TOPICS),
            ("analytics", analytics_table(ledger), ANALYTICS_TOPICS),
        ):
            if ledger.read(table.position(), 1, stop=position, topics=topics):
                names.append(f"the {name} read model")
        tables = ledger_tables(ledger)
        if tables.exist() and tables.tree().position < position:
            names.append("the ledger's tree")
        return names

    return behind


def token_retention(
    ledger: Ledger,
    settings: Settings,
    archives: str | Path | None = None,
    *,
    clock: Clock | None = None,
    database_clock: DatabaseClock | None = None,
) -> TokenRetentionRun:
    """The retention run over this store, archiving to `archives` (a directory or an
    `s3://bucket/prefix`; KEYLEDGER_ARCHIVE_URL, else KEYLEDGER_ARCHIVE_DIR, by default). It
    goes by `clock` (this machine's) checked against the database's: PostgreSQL's own, or on
    SQLite, which has no server, the machine's."""
    postgres = sqlite_path(ledger.database_url) is None
    rows = TokenEventRows(
        ledger.datastore,
        postgres=postgres,
        events_table=getattr(ledger.recorder, "events_table_name", "stored_events"),
    )
    clock = clock or SystemClock()
    if database_clock is None:
        database_clock = PostgresClock(ledger.datastore) if postgres else clock
    return TokenRetentionRun(
        ledger,
        rows,
        open_archives(archives or settings.archive_location),
        retention_followers(ledger, settings),
        lambda: exclusive(ledger.database_url, "token-retention"),
        timedelta(days=settings.token_event_retention),
        clock=clock,
        database_clock=database_clock,
    )


def archived_events(ledger: Ledger, archives: str | Path | None = None) -> ArchivedLog:
    """The events retention has removed from this store so far, read back from their archives:
    each where its removal recorded it, or under `archives` (a directory or an
    `s3://bucket/prefix`: the operator's `--archives`)."""
    return archived_log(removed_periods(ledger), archives)


def log_with_archives(ledger: Ledger) -> LogWithArchives:
    """The store's log with the events retention removed merged back in, for a follower that
    may start from the first event (a new analytics table)."""
    return LogWithArchives(ledger, archived_events(ledger))
