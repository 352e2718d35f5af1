"""One name per source, for its lease, its unchanged-file skip and its history."""

import os
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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


# Query parameters whose values are secrets by their name (token, api_key, X-Amz-Signature...).
_SECRET_PARAM = re.compile(r"token|key|secret|sig|pass|pwd|auth|session|credential", re.I)


def source_display(source: str) -> str:
    """The source as a run records and shows it: a URL without its user info and with the
    values of secret-looking query parameters as `***`, so staff who may only view runs (and
    notes, and the run's error) never see the credentials a URL carries. A path is shown as
    it is. Stable: the display of a display is itself, so it keys a source's runs."""
    if not is_url(source):
        return source
    parts = urlsplit(source)
    query = "&".join(_param_display(param) for param in parts.query.split("&"))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, query if parts.query else "", ""))


def _param_display(param: str) -> str:
    name, equals, _value = param.partition("=")
    return f"{name}=***" if equals and _SECRET_PARAM.search(unquote_plus(name)) else param


def source_redact(text: str, source: str) -> str:
    """text (an error naming the source) with the source as source_display shows it."""
    return text.replace(source, source_display(source)) if source else text
