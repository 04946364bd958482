"""The client address behind proxies (domain/forwarded.py), for generated headers: what a
client writes into `Forwarded` or `X-Forwarded-For` never lets it choose its address."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from domain.forwarded import TrustedProxies, client_address

PROXIES = TrustedProxies.parse("10.0.0.0/8, fd00::/8")
NOBODY = TrustedProxies.parse("")

addresses = st.ip_addresses().map(str)
trusted_addresses = st.one_of(
    st.ip_addresses(network="10.0.0.0/8"), st.ip_addresses(network="fd00::/8")
).map(str)
untrusted_addresses = addresses.filter(lambda a: a not in PROXIES)
ports = st.integers(0, 65535).map(str)


def canonical(address: str) -> str:
    """How the rule spells an address: compressed, an IPv4-mapped one as IPv4."""
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


@st.composite
def forwarded_nodes(draw: st.DrawFn, address: str | None = None) -> str:
    """One `for=` pair as RFC 7239 §6 writes it: quoted when it holds ':' or '[]'."""
    node = draw(addresses) if address is None else address
    port = draw(st.none() | ports)
    if ":" in node:
        node = f"[{node}]"
    if port is None and not node.startswith("["):
        return f"for={node}"
    return f'for="{node}{"" if port is None else ":" + port}"'


@st.composite
def xff_entries(draw: st.DrawFn, address: str | None = None) -> str:
    node = draw(addresses) if address is None else address
    if draw(st.booleans()):
        return node
    return f"[{node}]:{draw(ports)}" if ":" in node else f"{node}:{draw(ports)}"


# What a client can send: well-formed lists, RFC 7239 oddities, and any text at all.
noise = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
forwarded_values = st.one_of(
    st.lists(forwarded_nodes(), max_size=4).map(", ".join),
    st.sampled_from(['for="_gazonk"', "for=unknown", "proto=https", 'for="[::1', ";;,"]),
    noise,
)
xff_values = st.one_of(st.lists(xff_entries(), max_size=4).map(", ".join), noise)
forged = st.lists(forwarded_values, max_size=2), st.lists(xff_values, max_size=2)


@given(addresses, *forged)
def test_with_no_trusted_proxies_the_address_is_always_the_peer(
    peer: str, forwarded: list[str], xff: list[str]
) -> None:
    assert client_address(peer, forwarded, xff, NOBODY) == peer


@given(untrusted_addresses, *forged)
def test_headers_from_an_untrusted_peer_never_change_the_address(
    peer: str, forwarded: list[str], xff: list[str]
) -> None:
    assert client_address(peer, forwarded, xff, PROXIES) == peer


@given(trusted_addresses, *forged)
def test_any_header_from_a_trusted_proxy_gives_the_peer_or_an_address_never_an_error(
    peer: str, forwarded: list[str], xff: list[str]
) -> None:
    address = client_address(peer, forwarded, xff, PROXIES)
    assert address is not None
    assert address == peer or ipaddress.ip_address(address)


@given(
    trusted_addresses,
    untrusted_addresses,
    st.lists(trusted_addresses, max_size=2),
    forwarded_values,
    xff_values,
    st.booleans(),
    st.data(),
)
def test_a_client_behind_trusted_proxies_never_chooses_its_address(
    peer: str,
    client: str,
    inner_proxies: list[str],
    client_forwarded: str,
    client_xff: str,
    proxies_write_forwarded: bool,
    data: st.DataObject,
) -> None:
    """The proxies append the client and then each other to X-Forwarded-For (as nginx's
    `$proxy_add_x_forwarded_for` does) and, perhaps, to `Forwarded`; whatever the client put
    in either header itself, the answer is the client's real address or the proxy's."""
    xff = ", ".join(
        [
            client_xff,
            data.draw(xff_entries(client)),
            *[data.draw(xff_entries(p)) for p in inner_proxies],
        ]
    )
    forwarded = client_forwarded
    if proxies_write_forwarded:
        appended = [data.draw(forwarded_nodes(a)) for a in [client, *inner_proxies]]
        forwarded = ", ".join([client_forwarded, *appended])
    address = client_address(peer, [forwarded], [xff], PROXIES)
    assert address in (canonical(client), peer)


@given(
    trusted_addresses,
    untrusted_addresses,
    st.lists(addresses, max_size=3),
    st.lists(addresses, max_size=3),
    st.lists(trusted_addresses, max_size=2),
    st.data(),
)
def test_proxies_writing_both_headers_name_the_real_client_whatever_addresses_it_forged(
    peer: str,
    client: str,
    forged_forwarded: list[str],
    forged_xff: list[str],
    inner_proxies: list[str],
    data: st.DataObject,
) -> None:
    chain = [client, *inner_proxies]
    forwarded = [data.draw(forwarded_nodes(a)) for a in [*forged_forwarded, *chain]]
    xff = [data.draw(xff_entries(a)) for a in [*forged_xff, *chain]]
    address = client_address(peer, [", ".join(forwarded)], [", ".join(xff)], PROXIES)
    assert address == canonical(client)
