"""A remote source fetched into a temporary file: connect, find the file (the newest match of
a pattern), download within the limits, or tell its fingerprint without downloading; and move
a file read in full to an archive folder."""

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from productsync.conf import app_settings
from productsync.exceptions import SourceError
from productsync.feeds.sources.base import (
    Deadline,
    Location,
    RemoteFile,
    TransientError,
    Transport,
    archive_path,
    location_parse,
    mtime_text,
    newest_matching,
    pattern_split,
    retried,
)
from productsync.feeds.sources.credentials import Credentials, credentials_get

T = TypeVar("T")
logger = logging.getLogger(__name__)


def _transport(location: Location, credentials: Credentials) -> Transport:
    # Each library is imported only when a source of its scheme is read.
    if location.scheme == "sftp":
        from productsync.feeds.sources.sftp import SftpTransport

        return SftpTransport(location, credentials)
    if location.scheme == "s3":
        from productsync.feeds.sources.s3 import S3Transport

        return S3Transport(location, credentials)
    from productsync.feeds.sources.ftp import FtpTransport

    return FtpTransport(location, credentials)


def _session(
    url: str,
    credentials_name: str | None,
    username: str | None,
    action: Callable[[Transport, Location, Deadline], T],
) -> T:
    """action(transport, location, deadline) on a fresh connection, tried again after a
    transient failure; every message scrubbed of the credentials' secrets."""
    credentials = credentials_get(credentials_name)
    location = location_parse(url)
    if username and not location.user:
        location = Location(location.scheme, location.host, location.port, location.path, username)
    deadline = Deadline()

    def attempt() -> T:
        deadline.check()
        transport = _transport(location, credentials)
        try:
            return action(transport, location, deadline)
        finally:
            transport.close()

    try:
        return retried(attempt, deadline)
    except SourceError as exc:
        raise SourceError(credentials.scrub(str(exc))) from None


def _resolve(transport: Transport, location: Location) -> tuple[RemoteFile, list[str]]:
    """The file the location names, or the newest its pattern matches (with a note)."""
    folder, pattern = pattern_split(location.path)
    if pattern is None:
        return transport.stat(location.path), []
    remote, count = newest_matching(transport.files(folder), pattern)
    if remote is None:
        raise SourceError(f"{location.url(location.path)}: no file matches {pattern!r}")
    note = (
        f"read {location.url(remote.path)}: the newest of {count} file(s) matching "
        f"{pattern!r} (modified {mtime_text(remote.mtime)})"
    )
    return remote, [note]


def remote_fingerprint(url: str, credentials: str | None, username: str | None = None) -> str:
    """What tells whether the remote file (the newest match of a pattern) changed, without
    downloading it: size and modification time, or the ETag on S3."""
    remote, _notes = _session(url, credentials, username, lambda t, loc, _d: _resolve(t, loc))
    return remote.fingerprint()


@dataclass
class Fetched:
    """A remote file downloaded: the temporary file holding it (the caller removes it), the
    file as the server listed it, its public URL, and notes for the run."""

    path: str
    remote: RemoteFile
    url: str
    notes: list[str] = field(default_factory=list)


def _download(transport: Transport, remote: RemoteFile, deadline: Deadline, url: str) -> str:
    limit = app_settings.UPLOAD_MAX_BYTES
    too_large = SourceError(f"{url}: the file is larger than the limit of {limit} bytes")
    if remote.size is not None and remote.size > limit:
        raise too_large
    spool = tempfile.NamedTemporaryFile(prefix="productsync-", delete=False)  # noqa: SIM115
    written = 0

    def write(chunk: bytes) -> None:
        nonlocal written
        written += len(chunk)
        if written > limit:
            raise too_large
        deadline.check()
        spool.write(chunk)

    try:
        with spool:
            transport.download(remote, write)
        if remote.size is not None and written != remote.size:
            raise TransientError(f"{url}: the download ended at {written} of {remote.size} bytes")
    except BaseException:
        os.unlink(spool.name)
        raise
    return spool.name


def remote_fetch(url: str, credentials: str | None, username: str | None = None) -> Fetched:
    """Download the remote file (the newest match of a pattern) into a temporary file, within
    UPLOAD_MAX_BYTES, HTTP_TIMEOUT per connect and read, HTTP_RETRIES and HTTP_DEADLINE."""

    def fetch(transport: Transport, location: Location, deadline: Deadline) -> Fetched:
        remote, notes = _resolve(transport, location)
        public = location.url(remote.path)
        path = _download(transport, remote, deadline, public)
        logger.info("%s: fetched %s bytes", public, os.path.getsize(path))
        return Fetched(path, remote, public, notes)

    return _session(url, credentials, username, fetch)


def remote_archive(
    url: str, credentials: str | None, username: str | None, path: str, folder: str
) -> str:
    """Move the file at path (read from url's server) into folder on the same server (a
    relative folder is beside the file); return the public URL it has there."""

    def move(transport: Transport, location: Location, _deadline: Deadline) -> str:
        target = archive_path(path, folder)
        if location.scheme == "s3":
            target = target.lstrip("/")
        transport.move(path, target)
        return location.url(target)

    return _session(url, credentials, username, move)
