"""Real TCP faults on loopback for the shutdown tests: a peer that accepts connections and
never answers, and a forwarder in front of a real server that can be cut (the port closes,
open connections are reset) or hung (connections stay open, nothing is forwarded)."""

from __future__ import annotations

import select
import socket
import threading
from contextlib import suppress


class SilentPeer:
    """Listens on a free loopback port, accepts every connection, never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        return len(self._accepted)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._accepted.append(conn)

    def close(self) -> None:
        _close_listener(self._sock)
        for conn in self._accepted:
            conn.close()


class Forwarder:
    """Forwards a free loopback port to `target` until `cut()` or `hang()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._open: list[socket.socket] = []
        self._hung = threading.Event()
        self._cut = threading.Event()
        self.unanswered = 0  # bytes sent to a hung server
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """The server is gone: the port refuses connections, open ones are reset."""
        self._cut.set()
        _close_listener(self._sock)
        for conn in list(self._open):
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def hang(self) -> None:
        """The server stops answering: connections are accepted and held, nothing flows."""
        self._hung.set()

    def close(self) -> None:
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self._open.append(client)
            if self._hung.is_set():
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            upstream = socket.create_connection(self._target)
            self._open.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        with suppress(OSError, ValueError):
            while not self._cut.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.2)
                if self._hung.is_set():
                    self._swallow(a)
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)

    def _swallow(self, client: socket.socket) -> None:
        """Read what the client sends to the hung server, answer nothing, until cut."""
        while not self._cut.is_set():
            readable, _, _ = select.select([client], [], [], 0.2)
            if readable:
                data = client.recv(65536)
                if not data:
                    return
                self.unanswered += len(data)


def _close_listener(sock: socket.socket) -> None:
    # shutdown() first: close() alone leaves a port listening while accept() blocks on it.
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
