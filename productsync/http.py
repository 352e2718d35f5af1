"""Outgoing HTTP for feeds, images and URL imports, through one guarded GET: the headers of an
HTTP_HEADERS prefix go only to URLs under it, on every hop of a redirect (followed here, each
hop checked again); one deadline bounds the whole request, connect to last body byte, however
slowly a server trickles; a Retry-After longer than HTTP_RETRY_AFTER_MAX is not waited for;
and a guard that is public_only connects only to public addresses (checked on the address it
connects to, so a name that resolves elsewhere the second time gains nothing)."""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import connection as urllib3_connection
from urllib3.util import parse_url

from productsync.addresses import address_public, host_private_allowed
from productsync.conf import app_settings
from productsync.records import one_line

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
# urllib3's ceiling on a computed backoff wait.
BACKOFF_MAX = 120


# The one message of a host refused by a public-only guard, whatever the address was.
REFUSED = "{host}: refused, not a public address (private hosts need ALLOW_PRIVATE)"


class FetchError(Exception):
    """A GET that gave no usable response; the message is one line."""


class RefusedError(FetchError):
    """The host's address is not one this guard connects to (nothing was sent)."""


class DeadlineError(FetchError):
    """The whole request took longer than its deadline."""


def _reason(exc: BaseException) -> str:
    """The innermost useful reason of a requests/urllib3 error, in one line."""
    while exc.args and hasattr(exc.args[0], "reason"):
        exc = exc.args[0].reason if exc.args[0].reason is not None else exc.args[0]
        if not isinstance(exc, BaseException):
            return str(exc)
    return one_line(exc) or type(exc).__name__


def _origin(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) as urllib3, which makes the connection, reads them."""
    parts = parse_url(url)
    scheme = (parts.scheme or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.host or "").lower().strip("[]").rstrip("."), port, parts.path or "/"


def url_under(url: str, prefix: str) -> bool:
    """Whether url is under prefix: same scheme, host and port, and a path starting with the
    prefix's path ("https://erp.example" covers https://erp.example/..., not
    https://erp.example.evil/)."""
    try:
        scheme, host, port, path = _origin(url)
        p_scheme, p_host, p_port, p_path = _origin(prefix)
    except LocationParseError:
        return False
    return (scheme, host, port) == (p_scheme, p_host, p_port) and path.startswith(p_path)


def http_headers(url: str) -> dict[str, str]:
    """The configured headers of every HTTP_HEADERS prefix the URL is under (longer prefixes
    win)."""
    headers: dict[str, str] = {}
    for prefix in sorted(app_settings.HTTP_HEADERS, key=len):
        if url_under(url, prefix):
            headers.update(app_settings.HTTP_HEADERS[prefix])
    return headers


@dataclass
class Guard:
    """The rules of one guarded session."""

    # Seconds for a whole GET: every attempt, redirect hop, wait and the body.
    deadline: float
    # Seconds to connect and to wait for each read, within the deadline.
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float
    retry_after_max: float
    # Connect only to public addresses, to hosts host_private_allowed() allows, or to the one
    # trusted (scheme, host, port) origin (a feed's own, for its images).
    public_only: bool = False
    trusted: tuple[str, str, int | None] | None = None
    # The connection of the request in progress, for the deadline to cut.
    current: HTTPConnection | None = field(default=None, repr=False)

    def address_allowed(self, origin: tuple[str, str, int | None], address: str) -> bool:
        if not self.public_only or address_public(address):
            return True
        return origin == self.trusted or host_private_allowed(origin[1], address)


class _Guarded:
    """A urllib3 connection that connects only to addresses its guard allows: the name is
    resolved here and the socket connected to the very address that was checked."""

    guard: Guard

    def request(self, *args, **kwargs) -> None:
        self.guard.current = self
        super().request(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        if not self.guard.public_only:
            return super()._new_conn()
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        scheme = "https" if isinstance(self, HTTPSConnection) else "http"
        origin = (scheme, self.host.lower().strip("[]").rstrip("."), self.port)
        addresses = [info[4][0] for info in infos if self.guard.address_allowed(origin, info[4][0])]
        if not addresses:
            raise RefusedError(REFUSED.format(host=self.host))
        error: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


def _adapter(guard: Guard) -> HTTPAdapter:
    http = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), {"guard": guard})
    https = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), {"guard": guard})
    pools = {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return GuardedAdapter(max_retries=0, pool_maxsize=4)


class _Deadline:
    """The end of one GET: when it passes, the socket in use is shut down, which ends a read
    however slowly the server sends."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.seconds = guard.deadline
        self.end = time.monotonic() + guard.deadline
        self.expired = False
        self.timer = threading.Timer(guard.deadline, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.expired = True
        sock = getattr(self.guard.current, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def left(self) -> float:
        return self.end - time.monotonic()

    def timeout(self) -> tuple[float, float]:
        left = max(self.left(), 0.001)
        return min(self.guard.connect_timeout, left), min(self.guard.read_timeout, left)

    def error(self) -> DeadlineError:
        return DeadlineError(f"took longer than {self.seconds:g} s")

    def cancel(self) -> None:
        self.timer.cancel()


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class GuardedResponse:
    """A response whose body is read within the request's deadline; close() ends both."""

    def __init__(self, response: requests.Response, deadline: _Deadline, retries: int) -> None:
        self.response = response
        self.deadline = deadline
        self.retries = retries
        self.status_code = response.status_code
        self.reason = response.reason
        self.headers = response.headers
        self.url = response.url

    def read(self, size: int) -> bytes:
        """Up to size bytes of the decoded body; FetchError when it breaks or is too late."""
        try:
            data = self.response.raw.read(size, decode_content=True)
        except (Urllib3Error, requests.RequestException, OSError) as exc:
            if self.deadline.expired:
                raise self.deadline.error() from None
            raise FetchError(_reason(exc)) from None
        if self.deadline.expired:
            raise self.deadline.error()
        return data

    def close(self) -> None:
        self.deadline.cancel()
        self.response.close()


class GuardedSession:
    """One pooled session whose GETs follow the guard's rules."""

    def __init__(self, guard: Guard, user_agent: str = "productsync") -> None:
        self.guard = guard
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        if guard.public_only:
            # A proxy from the environment would be the address checked, not the host's.
            self.session.trust_env = False
        adapter = _adapter(guard)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, headers: dict[str, str] | None = None) -> GuardedResponse:
        """GET url, streaming: retried after connection errors, timeouts, 429 and 5xx;
        redirects followed with each hop's own prefix headers. FetchError when no response
        came (RefusedError, DeadlineError); an error status is returned, not raised."""
        deadline = _Deadline(self.guard)
        try:
            return self._get(url, headers or {}, deadline)
        except BaseException:
            deadline.cancel()
            raise

    def _get(self, url: str, headers: dict, deadline: _Deadline) -> GuardedResponse:
        retries = 0
        while True:
            try:
                response = self._follow(url, headers, deadline)
            except requests.RequestException as exc:
                if deadline.expired:
                    raise deadline.error() from None
                if not isinstance(exc, requests.ConnectionError | requests.Timeout) or not (
                    self._wait(retries, None, deadline)
                ):
                    raise FetchError(_reason(exc)) from None
                retries += 1
                continue
            if response.status_code in RETRY_STATUSES and self._wait(
                retries, _retry_after(response), deadline
            ):
                response.close()
                retries += 1
                continue
            return GuardedResponse(response, deadline, retries)

    def _wait(self, retries: int, asked: float | None, deadline: _Deadline) -> bool:
        """Sleep before retry number retries + 1 and return True, or False when there is no
        retry left, the server asks for longer than HTTP_RETRY_AFTER_MAX, or the wait would
        pass the deadline."""
        if retries >= self.guard.retries:
            return False
        if asked is not None:
            if asked > self.guard.retry_after_max:
                return False
            wait = asked
        else:
            wait = 0 if retries == 0 else min(self.guard.backoff * 2**retries, BACKOFF_MAX)
        if wait >= deadline.left():
            return False
        time.sleep(wait)
        return True

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST body to url (redirects are not followed: a webhook answers where it is);
        retried like a GET. Return the final status; FetchError when no response came."""
        deadline = _Deadline(self.guard)
        retries = 0
        try:
            while True:
                try:
                    response = self.session.post(
                        url,
                        data=body,
                        headers={**headers, **http_headers(url)},
                        allow_redirects=False,
                        timeout=deadline.timeout(),
                    )
                except requests.RequestException as exc:
                    if deadline.expired:
                        raise deadline.error() from None
                    if not self._wait(retries, None, deadline):
                        raise FetchError(_reason(exc)) from None
                    retries += 1
                    continue
                response.close()
                if response.status_code in RETRY_STATUSES and self._wait(
                    retries, _retry_after(response), deadline
                ):
                    retries += 1
                    continue
                return response.status_code
        finally:
            deadline.cancel()

    def _follow(self, url: str, headers: dict, deadline: _Deadline) -> requests.Response:
        for _hop in range(MAX_REDIRECTS + 1):
            response = self.session.get(
                url,
                headers={**headers, **http_headers(url)},
                stream=True,
                allow_redirects=False,
                timeout=deadline.timeout(),
            )
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if _origin(url)[0] not in ("http", "https"):
                raise FetchError("redirected to a URL that is not http(s)")
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _guard_within(timeout: float, retries: int, backoff: float, **rules) -> Guard:
    """A guard whose every wait (connect, each read, the whole request) is timeout."""
    return Guard(
        deadline=timeout,
        connect_timeout=timeout,
        read_timeout=timeout,
        retries=retries,
        backoff=backoff,
        retry_after_max=app_settings.HTTP_RETRY_AFTER_MAX,
        **rules,
    )


def feed_guard() -> Guard:
    """The guard of feed sources: HTTP_* settings; any address (the source is configured)."""
    connect, read = app_settings.HTTP_TIMEOUT
    return Guard(
        deadline=app_settings.HTTP_DEADLINE,
        connect_timeout=connect,
        read_timeout=read,
        retries=app_settings.HTTP_RETRIES,
        backoff=app_settings.HTTP_BACKOFF,
        retry_after_max=app_settings.HTTP_RETRY_AFTER_MAX,
    )


def url_import_guard() -> Guard:
    """The guard of a URL a user typed into the admin: public addresses only (or those
    host_private_allowed() allows), on every redirect hop; the HTTP_* timings of feeds."""
    return replace(feed_guard(), public_only=True)


# Images: a couple of quick retries; the next run tries a missing image again anyway.
IMAGE_RETRIES = 2
IMAGE_BACKOFF = 0.5


def image_guard(source: str = "") -> Guard:
    """The guard of images named by a feed: public addresses only, or those
    host_private_allowed() allows, or the very origin (scheme, host, port) of an HTTP source
    (chosen by the operator, it may be internal, and a feed's relative image paths point at
    it; another port of that host is not trusted); IMAGE_TIMEOUT for the whole fetch of one
    image."""
    trusted = None
    if source.lower().startswith(("http://", "https://")):
        trusted = _origin(source)[:3]
    return _guard_within(
        app_settings.IMAGE_TIMEOUT, IMAGE_RETRIES, IMAGE_BACKOFF, public_only=True, trusted=trusted
    )


def webhook_guard() -> Guard:
    """The guard of alert webhooks: public addresses only (or those host_private_allowed()
    allows); WEBHOOK_TIMEOUT for the whole POST, retries included."""
    timeout, retries = app_settings.WEBHOOK_TIMEOUT, app_settings.HTTP_RETRIES
    return _guard_within(timeout, retries, app_settings.HTTP_BACKOFF, public_only=True)
