"""Which address a request counts as coming from, behind reverse proxies (domain/forwarded.py):
RFC 7239 `Forwarded` and `X-Forwarded-For`, believed only from trusted proxies."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError
from domain.forwarded import TrustedProxies, client_address

PROXIES = TrustedProxies.parse("10.0.0.0/8, 2001:db8:ffff::/48, 192.0.2.200")
PROXY = "10.0.0.1"


def behind_proxy(forwarded: list[str] | None = None, xff: list[str] | None = None) -> str | None:
    return client_address(PROXY, forwarded or [], xff or [], PROXIES)


def test_with_no_trusted_proxy_the_address_is_the_peer_whatever_the_headers_say() -> None:
    nobody = TrustedProxies.parse("")
    assert not nobody
    assert client_address("10.0.0.1", ["for=198.51.100.7"], ["198.51.100.7"], nobody) == (
        "10.0.0.1"
    )


def test_the_headers_of_an_untrusted_peer_are_ignored() -> None:
    assert client_address("203.0.113.5", ["for=198.51.100.7"], ["198.51.100.7"], PROXIES) == (
        "203.0.113.5"
    )


def test_a_trusted_proxy_without_forwarding_headers_is_the_client() -> None:
    assert behind_proxy() == PROXY


@pytest.mark.parametrize(
    "forwarded",
    [
        # RFC 7239 §4 and §7.1 examples
        'for="198.51.100.7"',
        "for=198.51.100.7;proto=http;by=10.0.0.1",
        'for="198.51.100.7:47011"',
        "FOR=198.51.100.7",
        "proto=https;for=198.51.100.7",
        "for=192.0.2.43, for=198.51.100.7",  # §4: the last proxy's entry is the last one
        "for=198.51.100.7, for=10.0.0.7",  # a trusted hop further right is skipped
        'for=198.51.100.7;host="example.com:8443", for="[2001:db8:ffff::2]:80"',
        "for=198.51.100.7 , for=10.1.2.3 ;by=10.0.0.1",
    ],
)
def test_forwarded_names_the_rightmost_untrusted_node(forwarded: str) -> None:
    assert behind_proxy([forwarded]) == "198.51.100.7"


def test_a_quoted_ipv6_node_with_a_port_is_read_and_normalised() -> None:
    assert behind_proxy(['For="[2001:DB8:cafe::17]:4711"']) == "2001:db8:cafe::17"


@pytest.mark.parametrize(
    "xff",
    [
        ["198.51.100.7"],
        ["198.51.100.7, 10.0.0.9"],
        ["203.0.113.1, 198.51.100.7"],  # whatever the client wrote first is not believed
        ["203.0.113.1", "198.51.100.7 , 10.0.0.9"],  # several fields, in order
        ["198.51.100.7:52311"],
        ["[2001:db8:ffff::3]:80, 198.51.100.7, 2001:db8:ffff::9"],
    ],
)
def test_x_forwarded_for_names_the_rightmost_untrusted_address(xff: list[str]) -> None:
    assert behind_proxy(xff=xff) == "198.51.100.7"


def test_multiple_forwarded_fields_form_one_list_in_order() -> None:
    assert behind_proxy(["for=203.0.113.1", "for=198.51.100.7, for=10.0.0.8"]) == "198.51.100.7"


@pytest.mark.parametrize(
    "forwarded", ['for="_gazonk"', "for=unknown", 'for="unknown:_port1"', "proto=https"]
)
def test_a_withheld_client_address_gives_the_proxy_that_reported_it(forwarded: str) -> None:
    # RFC 7239 §6.2 and §6.3: the proxy did not know or did not disclose its client.
    assert behind_proxy([forwarded, "for=10.0.0.5"]) == "10.0.0.5"
    assert behind_proxy([forwarded]) == PROXY


def test_a_chain_of_trusted_proxies_only_gives_the_first_of_them() -> None:
    assert behind_proxy(xff=["10.0.0.5, 10.0.0.4"]) == "10.0.0.5"


def test_both_headers_naming_the_same_client_agree() -> None:
    assert behind_proxy(["for=198.51.100.7"], ["198.51.100.7"]) == "198.51.100.7"


def test_both_headers_naming_different_clients_give_the_peer() -> None:
    # A proxy that writes one passes the other on from the client: neither can be believed.
    assert behind_proxy(["for=203.0.113.66"], ["198.51.100.7"]) == PROXY


def test_a_header_naming_only_trusted_proxies_defers_to_the_one_naming_a_client() -> None:
    # A CDN (trusted) that writes X-Forwarded-For, in front of a proxy writing Forwarded.
    assert behind_proxy(["for=10.0.0.5"], ["198.51.100.7, 10.0.0.5"]) == "198.51.100.7"


def test_an_ipv4_mapped_peer_is_matched_as_its_ipv4_address() -> None:
    assert client_address("::ffff:10.0.0.1", [], ["198.51.100.7"], PROXIES) == "198.51.100.7"


@pytest.mark.parametrize(
    ("forwarded", "xff"),
    [
        (["for"], []),
        (["for="], []),
        (["for=198.51.100.7;for=203.0.113.1"], []),  # §4: a parameter at most once
        (['for="198.51.100.7'], []),
        (["for=198.51.100.7 proto=http"], []),
        (["for=2001:db8::1"], []),  # §6: ':' is not a token character, so quote it
        (["for=198.51.100.7:47011"], []),
        (['for="[2001:db8::1"'], []),
        (['for="[198.51.100.7]"'], []),
        (['for="198.51.100.7:99999x"'], []),
        (['for="host.example"'], []),
        (['for="_bad!obf"'], []),
        (["=198.51.100.7"], []),
        ([], ["not-an-address"]),
        ([], ["198.51.100.7, 203.0.113.1:port"]),
        ([], ["_hidden"]),
        ([], ["198.51.100.7/24"]),
        (["for=198.51.100.7"], ["garbage"]),
    ],
)
def test_a_malformed_header_gives_the_peer(forwarded: list[str], xff: list[str]) -> None:
    assert behind_proxy(forwarded, xff) == PROXY


def test_an_unbracketed_ipv6_node_in_quotes_is_accepted_as_some_proxies_write_it() -> None:
    assert behind_proxy(['for="2001:db8::1"']) == "2001:db8::1"


def test_trusted_proxies_are_addresses_and_networks_of_both_families() -> None:
    trusted = TrustedProxies.parse(" 10.0.0.0/8 ,, 2001:db8::1, 192.0.2.7/32 ")
    assert "10.200.3.4" in trusted
    assert "2001:db8::1" in trusted
    assert "2001:db8::2" not in trusted
    assert "192.0.2.7" in trusted
    assert "192.0.2.8" not in trusted
    assert "not-an-address" not in trusted


@pytest.mark.parametrize("value", ["10.0.0.1/8", "10.0.0.0/33", "proxy.internal", "10.0.0.0/8;"])
def test_a_bad_trusted_proxies_setting_is_an_error_naming_it(value: str) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_TRUSTED_PROXIES"):
        Settings.from_env({"KEYLEDGER_TRUSTED_PROXIES": value})


def test_the_trusted_proxies_setting_is_parsed_once() -> None:
    settings = Settings.from_env({"KEYLEDGER_TRUSTED_PROXIES": "10.0.0.0/8,::1"})
    assert settings.proxies is settings.proxies
    assert "::1" in settings.proxies
    assert not Settings.from_env({}).proxies


def test_an_ipv4_mapped_address_in_a_header_counts_as_its_ipv4_address() -> None:
    assert behind_proxy(['for="[::ffff:198.51.100.7]"'], ["::ffff:198.51.100.7"]) == (
        "198.51.100.7"
    )
