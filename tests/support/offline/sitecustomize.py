"""Keeps a Python process on loopback: names resolve, and sockets connect, only to loopback
addresses. A test puts this folder on the PYTHONPATH of a server it fuzzes, so that generated
URLs (remote files, export addresses) reach no other host and fail at once."""

import errno
import ipaddress
import socket

_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _refuse(address: object) -> bool:
    return isinstance(address, tuple) and not _is_loopback(address[0])


def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not loopback (offline test)")
    return _getaddrinfo(host, *args, **kwargs)


def connect(self, address):  # type: ignore[no-untyped-def]
    if _refuse(address):
        raise OSError(errno.ENETUNREACH, f"{address!r} is not loopback (offline test)")
    return _connect(self, address)


def connect_ex(self, address):  # type: ignore[no-untyped-def]
    return errno.ENETUNREACH if _refuse(address) else _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect  # type: ignore[method-assign]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
