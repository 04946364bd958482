"""`make bench`: what the inline abuse limits add to each token request (issue 6, part 8).

The token endpoint's additions for a successful request: the throttle's wait check for the
source IP and the client id, the source network of the address, and learning that network as
usual for the client. Timed over 1,000,000 requests spread across 10,000 clients and 50,000
addresses, beside the same loop without them.
"""

from __future__ import annotations

import sys
import time

from domain.networks import source_network
from domain.throttling import FailureThrottle

REQUESTS = 1_000_000


def main() -> int:
    clients = [f"client-{i}" for i in range(10_000)]
    addresses = [f"10.{i % 200}.{(i // 200) % 250}.{i % 250}" for i in range(50_000)]
    throttle = FailureThrottle(burst=20, window=60)
    for i in range(0, 50_000, 7):  # some keys have failures on record
        throttle.failed(addresses[i], clients[i % 10_000], 0.0)

    start = time.perf_counter()
    for i in range(REQUESTS):
        ip, client = addresses[i % 50_000], clients[i % 10_000]
    bare = time.perf_counter() - start

    start = time.perf_counter()
    monotonic = time.monotonic
    for i in range(REQUESTS):
        ip, client = addresses[i % 50_000], clients[i % 10_000]
        if throttle.wait(ip, client, monotonic()) is None:
            throttle.succeeded(client, source_network(ip))
    limited = time.perf_counter() - start

    per_request = (limited - bare) / REQUESTS * 1e6
    print(
        f"\nabuse limits on the token path: {per_request:.2f} µs per request "
        f"({REQUESTS:,} requests, 10,000 clients, 50,000 addresses; target well under 50 µs)"
    )
    return 0 if per_request < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
