"""Source networks: the unit in which a client's usual whereabouts are learnt."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65_536)
def source_network(ip: str | None) -> str | None:
    """The /24 (IPv4) or /64 (IPv6) network of an address, or None for no or bad address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
