"""One name per source, for its lease, its unchanged-file skip and its history."""

import dataclasses
import os
from urllib.parse import unquote, urlsplit

from productsync.addresses import url_display
from productsync.feeds import (
    FeedOptions,
    credentials_get,
    is_remote,
    is_url,
    url_password_refuse,
    url_public,
)


def source_key(source: str) -> str:
    """A URL with its scheme and host in lower case and no user name or password (the rest
    as given: paths and queries are case-sensitive); a path made absolute with its symlinks
    resolved, so `../feeds/x.json` and `/srv/feeds/x.json` are one source. A pipe or a device
    (/dev/stdin) keeps its own absolute name: resolving it would name this process's file
    descriptor."""
    if is_url(source) or is_remote(source):
        return url_public(source)
    path = os.path.abspath(source)
    real = os.path.realpath(path)
    return real if os.path.isfile(real) or not os.path.lexists(path) else path


def source_options(source: str, options: FeedOptions) -> FeedOptions:
    """The feed options of a source as given (before source_key): SourceError for a URL that
    carries a password or credentials of an unknown name; a remote URL's user name kept in
    the options, since the source's key leaves it out."""
    if not (is_url(source) or is_remote(source)):
        return options
    url_password_refuse(source)
    credentials_get(options.credentials)
    user = unquote(urlsplit(source.strip()).username or "")
    if is_remote(source) and user and not options.username:
        options = dataclasses.replace(options, username=user)
    return options


def source_display(source: str) -> str:
    """The source as a run records and shows it: a URL as url_display shows it (no user
    info, secret-looking query values as `***`), so staff who may only view runs (and notes,
    and the run's error) never see the credentials a URL carries. A path is shown as it is.
    Stable: the display of a display is itself, so it keys a source's runs."""
    return url_display(source) if is_url(source) else source


def source_redact(text: str, source: str) -> str:
    """text (an error naming the source) with the source as source_display shows it."""
    return text.replace(source, source_display(source)) if source else text
