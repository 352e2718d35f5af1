"""Which addresses an outgoing request may reach: public ones, and the private hosts and
networks the operator listed (ALLOW_PRIVATE, or IMAGE_ALLOW_PRIVATE, its older name); and a
URL as it may be shown or logged, without the credentials it carries."""

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from productsync.conf import app_settings


def allow_list(entries: Iterable[str]) -> tuple[frozenset[str], tuple]:
    """Allow-list entries (host names and networks) as (host names, networks)."""
    names, networks = set(), []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return frozenset(names), tuple(networks)


def address_public(address: str) -> bool:
    """A globally routable unicast address: not private, loopback, link-local, shared,
    reserved, multicast or unspecified (an IPv4-mapped IPv6 address counts as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _listed(host: str, address: str, allowed: tuple[frozenset[str], tuple]) -> bool:
    names, networks = allowed
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return host.lower().rstrip(".") in names or any(ip in net for net in networks)


def host_private_allowed(host: str, address: str) -> bool:
    """May this host, at this non-public address, be connected to for what a user or a feed
    names (an admin's URL, a feed's image)? Only when the operator listed the host or its
    network in ALLOW_PRIVATE (or IMAGE_ALLOW_PRIVATE, its older name): the one place those
    settings are read."""
    entries = [*app_settings.ALLOW_PRIVATE, *app_settings.IMAGE_ALLOW_PRIVATE]
    return _listed(host, address, allow_list(entries))


# Query parameters whose values are secrets by their name (token, api_key, X-Amz-Signature...).
_SECRET_PARAM = re.compile(r"token|key|secret|sig|pass|pwd|auth|session|credential", re.I)


def url_display(url: str) -> str:
    """The URL without its user info and with the values of secret-looking query parameters
    as `***`: what a run records, staff who may only view runs see, and the log says.
    Stable: the display of a display is itself."""
    parts = urlsplit(url)
    query = "&".join(_param_display(param) for param in parts.query.split("&"))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, query if parts.query else "", ""))


def _param_display(param: str) -> str:
    name, equals, _value = param.partition("=")
    return f"{name}=***" if equals and _SECRET_PARAM.search(unquote_plus(name)) else param
