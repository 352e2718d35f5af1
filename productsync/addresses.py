"""Which addresses an outgoing request may reach: public ones, and the private hosts and
networks the operator listed (ALLOW_PRIVATE, or IMAGE_ALLOW_PRIVATE, its older name)."""

import ipaddress
from collections.abc import Iterable

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
