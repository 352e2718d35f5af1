"""What every remote transport shares: the parsed location, a remote file and its
fingerprint, the newest file a name pattern matches, and retries within one deadline."""

import fnmatch
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from productsync.conf import app_settings
from productsync.exceptions import SourceError

SCHEMES = {"sftp": 22, "ftp": 21, "ftps": 21, "s3": None}
WILDCARDS = "*?["
CHUNK = 1 << 16

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth another try (a dropped connection, a timeout); the message is one
    line without secrets."""


def is_remote(source: str) -> bool:
    """Whether a source names a file on an SFTP, FTP(S) server or in an S3 bucket."""
    return source.split("://", 1)[0].lower() in SCHEMES and "://" in source


def url_public(url: str) -> str:
    """The URL without a user name or password, scheme and host in lower case: the one name
    of a source in its lease, history and unchanged-file skip."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2].lower()
    return urlunsplit((parts.scheme.lower(), host, parts.path, parts.query, parts.fragment))


def url_password_refuse(url: str) -> None:
    """Refuse a URL that carries a password: it would be stored and shown with the run."""
    userinfo = urlsplit(url.strip()).netloc.rpartition("@")[0]
    if ":" in userinfo:
        raise SourceError(
            "the source URL carries a password: put it in PRODUCTSYNC['CREDENTIALS'] under a "
            "name and give the feed or run that name as its credentials; the URL names only "
            "the place"
        )


@dataclass(frozen=True)
class Location:
    """Where a remote source is: scheme, host (an S3 bucket), port, path (an S3 key, without
    its leading slash) and the user name the URL gave."""

    scheme: str
    host: str
    port: int | None
    path: str
    user: str = ""

    @property
    def origin(self) -> str:
        port = f":{self.port}" if self.port and self.port != SCHEMES[self.scheme] else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"

    def url(self, path: str) -> str:
        """The public URL of another path at this location."""
        return f"{self.origin}/{path.lstrip('/')}"


def location_parse(url: str) -> Location:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or SCHEMES[scheme]
    except ValueError:
        raise SourceError(f"{url_public(url)}: the port is not a number") from None
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if scheme == "s3":
        path = path.lstrip("/")
    if not host or not path.strip("/"):
        raise SourceError(f"{url_public(url)}: name a host (an S3 bucket) and a file's path")
    return Location(scheme, host, port, path, unquote(parts.username or ""))


@dataclass(frozen=True)
class RemoteFile:
    """A file on a server: its path there, size, modification time (seconds since the epoch)
    and, on S3, its ETag."""

    path: str
    size: int | None
    mtime: float | None
    etag: str = ""

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def fingerprint(self) -> str:
        """What tells whether the file changed without reading it."""
        return f"{self.path}|{self.size}|{self.mtime}|{self.etag}"


def pattern_split(path: str) -> tuple[str, str | None]:
    """(folder, pattern) when the last path segment has a * or ? pattern, else (path, None)."""
    folder, name = posixpath.split(path)
    if any(char in name for char in WILDCARDS):
        return folder, name
    return path, None


def newest_matching(files: list[RemoteFile], pattern: str) -> tuple[RemoteFile | None, int]:
    """The newest file whose name matches the pattern (by modification time, then name), and
    how many matched."""
    matching = [f for f in files if fnmatch.fnmatchcase(f.name, pattern)]
    if not matching:
        return None, 0
    return max(matching, key=lambda f: (f.mtime or 0, f.name)), len(matching)


def archive_path(path: str, folder: str) -> str:
    """Where a file goes when archived to folder: relative folders are beside the file."""
    base = posixpath.dirname(path)
    return posixpath.normpath(posixpath.join(base, folder, posixpath.basename(path)))


def mtime_text(mtime: float | None) -> str:
    if mtime is None:
        return "time unknown"
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Deadline:
    """The end of one source's fetch (HTTP_DEADLINE seconds, as an HTTP feed's GET)."""

    def __init__(self) -> None:
        self.seconds = app_settings.HTTP_DEADLINE
        self.end = time.monotonic() + self.seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if self.left() <= 0:
            raise SourceError(f"took longer than {self.seconds:g} s")


def timeouts() -> tuple[float, float]:
    """(connect, read) timeouts in seconds, as HTTP feeds have them."""
    connect, read = app_settings.HTTP_TIMEOUT
    return float(connect), float(read)


def retried(action: Callable[[], T], deadline: Deadline) -> T:
    """action(), tried again after a TransientError up to HTTP_RETRIES times, waiting 0, then
    HTTP_BACKOFF x 2, x 4... seconds, within the deadline."""
    retries = 0
    while True:
        try:
            return action()
        except TransientError as exc:
            wait = 0 if retries == 0 else app_settings.HTTP_BACKOFF * 2**retries
            if retries >= app_settings.HTTP_RETRIES or wait >= deadline.left():
                after = f" after {retries} retries" if retries else ""
                raise SourceError(f"{exc}{after}") from None
            time.sleep(wait)
            retries += 1


class Transport(Protocol):
    """One connection to a server; each method raises SourceError or TransientError."""

    def files(self, folder: str) -> list[RemoteFile]: ...

    def stat(self, path: str) -> RemoteFile: ...

    def download(self, remote: RemoteFile, write: Callable[[bytes], None]) -> None: ...

    def move(self, path: str, target: str) -> None: ...

    def close(self) -> None: ...
