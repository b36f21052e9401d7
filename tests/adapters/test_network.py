"""What counts as a public address, resolving once, and how git is routed to the
address that was checked."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from labelyard.adapters import network
from labelyard.adapters.git import route

NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "192.0.2.1", "::1", "::", "fe80::1", "fd00::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::",
    "2002:a00:1::",
]  # fmt: skip
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_addresses_into_private_networks_are_not_public(address):
    assert not network.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_global_unicast_addresses_are_public(address):
    assert network.is_public(ipaddress.ip_address(address))


def answers(*addresses: str):
    def getaddrinfo(name, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return getaddrinfo


def test_a_name_is_refused_when_any_of_its_addresses_is_private(monkeypatch):
    monkeypatch.setattr(network.socket, "getaddrinfo", answers("93.184.216.34", "10.0.0.5"))
    with pytest.raises(network.AddressRefused, match=r"10\.0\.0\.5 is not a public one"):
        network.resolve("mixed.example", 443)
    assert network.resolve("mixed.example", 443, allow_private=True) == "93.184.216.34"


def test_a_name_resolving_to_loopback_is_refused():
    with pytest.raises(network.AddressRefused, match=r"127\.0\.0\.1"):
        network.resolve("localhost", 80)
    with pytest.raises(network.HostNotFound):
        network.resolve("nothing.invalid", 80)


def test_an_http_request_is_pinned_to_the_checked_address(monkeypatch):
    monkeypatch.setattr(network.socket, "getaddrinfo", answers("93.184.216.34"))
    request = network.pinned("https://user@files.example:8443/a.jpg?x=1")
    assert str(request.url) == "https://user@93.184.216.34:8443/a.jpg?x=1"
    assert request.headers == {"Host": "files.example:8443"}
    assert request.extensions == {"sni_hostname": "files.example"}
    with pytest.raises(ValueError, match="only http and https"):
        network.pinned("ftp://files.example/a.jpg")


def resolver(address: str):
    return lambda host, port: address


@pytest.mark.parametrize(
    ("url", "address", "expected"),
    [
        ("https://git.example/team/r.git", "93.184.216.34",
         ("https://git.example/team/r.git",
          ("-c", "http.curloptResolve=git.example:443:93.184.216.34",
           "-c", "http.followRedirects=false"), {})),
        ("http://git.example:8080/r.git", "2606:4700::1",
         ("http://git.example:8080/r.git",
          ("-c", "http.curloptResolve=git.example:8080:[2606:4700::1]",
           "-c", "http.followRedirects=false"), {})),
        ("git://git.example/r.git", "93.184.216.34", ("git://93.184.216.34/r.git", (), {})),
        ("ssh://git@git.example:2222/r.git", "93.184.216.34",
         ("ssh://git@git.example:2222/r.git", (),
          {"GIT_SSH_COMMAND":
           "ssh -o HostName=93.184.216.34 -o HostKeyAlias=[git.example]:2222"})),
        ("git@git.example:team/r.git", "93.184.216.34",
         ("git@git.example:team/r.git", (),
          {"GIT_SSH_COMMAND": "ssh -o HostName=93.184.216.34 -o HostKeyAlias=git.example"})),
        ("/srv/repos/r.git", "unused", ("/srv/repos/r.git", (), {})),
        ("file:///srv/repos/r.git", "unused", ("file:///srv/repos/r.git", (), {})),
        ("https://93.184.216.34/r.git", "93.184.216.34", ("https://93.184.216.34/r.git", (), {})),
    ],
)  # fmt: skip
def test_git_is_routed_to_the_checked_address(url, address, expected):
    routed = route(url, resolver(address), "ssh")
    assert (routed.url, routed.options, routed.environment) == expected


def test_a_refusal_of_the_resolver_stops_the_route():
    def refuse(host, port):
        raise network.AddressRefused("the address 10.0.0.1 is not a public one")

    with pytest.raises(network.AddressRefused):
        route("git@internal.example:r.git", refuse, "ssh")
