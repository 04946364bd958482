"""The client's address behind reverse proxies: RFC 7239 `Forwarded` and `X-Forwarded-For`.

Only the operator's own proxies are believed (`TrustedProxies`). RFC 7239 §8.1: "The
'Forwarded' HTTP header field cannot be relied upon to be correct, as it may be modified,
whether mistakenly or for malicious reasons, by every node on the way to the server,
including the client making the request." So the headers count only when the TCP peer is
a trusted proxy, and then only what trusted proxies appended. RFC 7239 §4: "A proxy server
that wants to add a new "Forwarded" header field value can either append it to the last
existing "Forwarded" header field after a comma separator or add a new field at the end of
the header block." So the chain is walked from the right, over trusted addresses, to the
first one that is not trusted. Anything malformed gives the peer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 7230 §3.2.6: the characters of a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# RFC 7239 §6.3 and §6: an obfuscated node name or port, and a port.
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
_PORT = re.compile(r"[0-9]{1,5}|_[A-Za-z0-9._-]+")
_OWS = " \t"


class MalformedHeader(ValueError):
    """A forwarding header keyledger cannot read: the peer address is used instead."""


def _parsed(text: str) -> tuple[int, Address, str] | None:
    """The IP version `text` is written in, the address it names (an IPv4-mapped one as
    IPv4, as a dual-stack socket reports an IPv4 peer) and how that address is spelt."""
    # No address is longer (45 characters, and a scope id): the cache keeps no long strings.
    return _parsed_address(text) if len(text) <= 64 else None


@lru_cache(maxsize=4096)
def _parsed_address(text: str) -> tuple[int, Address, str] | None:
    try:
        written = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = written.ipv4_mapped if isinstance(written, ipaddress.IPv6Address) else None
    address = mapped or written
    return written.version, address, str(address)


@dataclass(frozen=True, eq=False)  # parsed once; hashed by identity in the cache
class TrustedProxies:
    """The addresses and networks of the reverse proxies whose forwarding headers count."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """Comma-separated addresses and CIDRs (`10.0.0.0/8, 2001:db8::1`); empty: none."""
        networks = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError as bad:
                raise ValueError(f"{entry!r} is not an address or CIDR network ({bad})") from None
        return cls(tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and _trusts(self, address)


@lru_cache(maxsize=4096)
def _trusts(trusted: TrustedProxies, text: str) -> bool:
    parsed = _parsed(text)
    return parsed is not None and any(parsed[1] in network for network in trusted.networks)


def client_address(
    peer: str | None,
    forwarded: Sequence[str],
    x_forwarded_for: Sequence[str],
    trusted: TrustedProxies,
) -> str | None:
    """The address a request came from: the peer's, unless a trusted peer forwarded it.

    `forwarded` and `x_forwarded_for` are the values of every field of that name, in order.
    When both headers name a client and the two differ, one of them did not come from the
    operator's proxies (a proxy that writes only one passes the other through from the
    client) and nothing tells which: the peer address is used, so a client never picks the
    address it is counted under.
    """
    if peer is None or not trusted or peer not in trusted:
        return peer
    try:
        chains = [
            _forwarded_chain(forwarded) if forwarded else [],
            _x_forwarded_for_chain(x_forwarded_for) if x_forwarded_for else [],
        ]
    except MalformedHeader:
        return peer
    walked = [_walk(chain, peer, trusted) for chain in chains if chain]
    named = {address for address, untrusted in walked if untrusted}
    if len(named) == 1:
        return named.pop()
    if not named and len({address for address, _ in walked}) == 1:
        return walked[0][0]  # every hop a trusted proxy: the first of them
    return peer


def _walk(chain: list[str | None], peer: str, trusted: TrustedProxies) -> tuple[str, bool]:
    """The rightmost untrusted address (and True); or, when the chain holds none, the last
    address known before an unknown or obfuscated node or the chain's start (and False)."""
    known = peer
    for hop in reversed(chain):
        if hop is None:
            return known, False
        if hop not in trusted:
            return hop, True
        known = hop
    return known, False


def _x_forwarded_for_chain(values: Iterable[str]) -> list[str | None]:
    """`X-Forwarded-For: client, proxy1, proxy2`: addresses, some with a port; `unknown`."""
    chain: list[str | None] = []
    for value in values:
        for entry in value.split(","):
            entry = entry.strip(_OWS)
            if not entry:
                continue  # RFC 7230 §7: empty list elements do not count
            if entry.lower() == "unknown":
                chain.append(None)
            elif (parsed := _parsed(entry)) is not None:
                chain.append(parsed[2])
            else:
                chain.append(_node_address(entry))
    return chain


def _forwarded_chain(values: Iterable[str]) -> list[str | None]:
    """The `for` node of each forwarded-element (RFC 7239 §4), in order; None for an
    element without one, `unknown` (§6.2) or an obfuscated identifier (§6.3)."""
    chain: list[str | None] = []
    for value in values:
        for element in _elements(value):
            node = element.get("for")
            chain.append(None if node is None else _node(node))
    return chain


def _elements(value: str) -> Iterable[dict[str, str]]:
    """RFC 7239 §4: `Forwarded = 1#forwarded-element`, `forwarded-element = [ forwarded-pair ]
    *( ";" [ forwarded-pair ] )`, `forwarded-pair = token "=" value`, value a token or a
    quoted-string (which may hold `,` and `;`)."""
    element: dict[str, str] = {}
    at, end = 0, len(value)
    while True:
        while at < end and value[at] in _OWS:
            at += 1
        if at < end and value[at] not in ",;":
            at = _pair(value, at, element)
            while at < end and value[at] in _OWS:
                at += 1
        if at >= end:
            if element:
                yield element
            return
        if value[at] == ",":
            if element:
                yield element
            element = {}
        elif value[at] != ";":
            raise MalformedHeader("expected ',' or ';' between forwarded pairs")
        at += 1


def _pair(value: str, at: int, element: dict[str, str]) -> int:
    name = _TOKEN.match(value, at)
    if name is None or name.end() >= len(value) or value[name.end()] != "=":
        raise MalformedHeader("a forwarded pair is token=value")
    key = name.group().lower()
    if key in element:
        # RFC 7239 §4: "Each parameter MUST NOT occur more than once per forwarded-element."
        raise MalformedHeader(f"{key} twice in one forwarded-element")
    at = name.end() + 1
    if (quoted := _QUOTED.match(value, at)) is not None:
        element[key] = re.sub(r"\\(.)", r"\1", quoted.group(1))
        return quoted.end()
    if (token := _TOKEN.match(value, at)) is not None:
        element[key] = token.group()
        return token.end()
    raise MalformedHeader("a forwarded value is a token or a quoted-string")


def _node(node: str) -> str | None:
    """RFC 7239 §6: `node = nodename [ ":" node-port ]`, `nodename = IPv4address / "["
    IPv6address "]" / "unknown" / obfnode`; the address, or None when it is withheld."""
    if node.count(":") > 1 and not node.startswith("["):
        return _ip(node, 6)  # unbracketed, as some proxies write it
    name, colon, port = node.partition(":")
    if name.lower() == "unknown" or _OBFUSCATED.fullmatch(name):
        if colon and not _PORT.fullmatch(port):
            raise MalformedHeader("a node's port is digits or an obfuscated identifier")
        return None
    return _node_address(node)


def _node_address(node: str) -> str:
    """An IPv4 address with an optional port, or a bracketed IPv6 address with one."""
    if node.startswith("["):
        host, bracket, rest = node[1:].partition("]")
        if not bracket:
            raise MalformedHeader("an IPv6 node is in brackets")
        version = 6
    else:
        host, colon, port = node.partition(":")
        rest, version = colon + port, 4
    if rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:])):
        raise MalformedHeader("a node's port is digits or an obfuscated identifier")
    return _ip(host, version)


def _ip(text: str, version: int) -> str:
    parsed = _parsed(text)
    if parsed is None or parsed[0] != version:
        raise MalformedHeader(f"not an IPv{version} address")
    return parsed[2]
