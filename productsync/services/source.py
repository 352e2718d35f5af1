"""One name per source, for its lease, its unchanged-file skip and its history."""

import os
from urllib.parse import urlsplit, urlunsplit

from productsync.feeds import is_url


def source_key(source: str) -> str:
    """A URL with its scheme and host in lower case (the rest as given: paths and queries
    are case-sensitive); a path made absolute with its symlinks resolved, so `../feeds/x.json`
    and `/srv/feeds/x.json` are one source. A pipe or a device (/dev/stdin) keeps its own
    absolute name: resolving it would name this process's file descriptor."""
    if is_url(source):
        parts = urlsplit(source.strip())
        userinfo, at, host = parts.netloc.rpartition("@")
        netloc = userinfo + at + host.lower()
        return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))
    path = os.path.abspath(source)
    real = os.path.realpath(path)
    return real if os.path.isfile(real) or not os.path.lexists(path) else path
