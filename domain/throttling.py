"""Throttling failed client authentications (issue 6, part 8): keyed token buckets.

Each source IP and each presented client id has a bucket of `burst` failures that refills
at `burst / window` per second; a failure spends one. While a key's bucket is empty the
token endpoint answers 429 with `Retry-After`, except to a client that presents its right
credentials from a network it has been issued tokens from before (or, with no such history
yet, from anywhere): an attacker hammering a client id cannot lock the client out.

Pure: the caller passes the time (monotonic seconds). Budgets are per process; with P
processes the cluster admits up to P x burst failures per key before every one throttles,
so set the burst to the cluster-wide figure divided by P.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_KEYS = 100_000
MAX_NETWORKS_PER_CLIENT = 16


class TokenBuckets:
    """Keyed buckets of `burst` tokens refilled at `burst / window` tokens per second.

    At most `max_keys` buckets, kept in the order they were last spent from. A full table
    drops every bucket that has refilled (it knows nothing), then, until a tenth is free, the
    least recently seen keys that are not throttled, then the least recently seen: an attacker
    failing from many addresses cannot wipe the throttle of the ones it spent.
    """

    def __init__(self, burst: int, window: float, max_keys: int = MAX_KEYS) -> None:
        self.burst = float(burst)
        self.rate = burst / window
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return self.burst
        tokens, at = found
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, key: str, now: float) -> float | None:
        """Seconds until the key may fail again, or None while it has tokens left."""
        level = self._level(key, now)
        return None if level >= 1 else (1 - level) / self.rate

    def spend(self, key: str, now: float) -> None:
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._make_room(now)
        self._buckets[key] = (max(0.0, self._level(key, now) - 1), now)
        self._buckets.move_to_end(key)

    def _make_room(self, now: float) -> None:
        """Bounded memory in one pass per tenth of the table, least recently seen first."""
        levels = {k: self._level(k, now) for k in self._buckets}
        for key in [k for k, level in levels.items() if level >= self.burst]:
            del self._buckets[key]  # refilled: as good as never seen
        keep = self._max_keys - max(1, self._max_keys // 10)
        not_throttled = [k for k in self._buckets if levels[k] >= 1]
        for key in [*not_throttled, *self._buckets]:
            if len(self._buckets) <= keep:
                return
            self._buckets.pop(key, None)


class FailureThrottle:
    """Failed authentications per source IP and per client id, and each client's networks."""

    def __init__(self, burst: int, window: float) -> None:
        self._buckets = TokenBuckets(burst, window)
        self._networks: OrderedDict[str, set[str]] = OrderedDict()

    def wait(self, source_ip: str | None, client_id: str | None, now: float) -> float | None:
        waits = [
            w
            for key in (
                f"ip:{source_ip}" if source_ip else None,
                f"client:{client_id}" if client_id else None,
            )
            if key is not None and (w := self._buckets.wait(key, now)) is not None
        ]
        return max(waits) if waits else None

    def failed(self, source_ip: str | None, client_id: str | None, now: float) -> None:
        if source_ip:
            self._buckets.spend(f"ip:{source_ip}", now)
        if client_id:
            self._buckets.spend(f"client:{client_id}", now)

    def succeeded(self, client_id: str, network: str | None) -> None:
        """Remember a network the client got a token from (its usual networks)."""
        if network is None:
            return
        networks = self._networks.setdefault(client_id, set())
        self._networks.move_to_end(client_id)
        if len(networks) < MAX_NETWORKS_PER_CLIENT:
            networks.add(network)
        if len(self._networks) > MAX_KEYS:
            self._networks.popitem(last=False)

    def usual(self, client_id: str, network: str | None) -> bool:
        """A network the client got tokens from, or any network for a client with no history."""
        networks = self._networks.get(client_id)
        return not networks or network in networks
