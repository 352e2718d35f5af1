"""HTTP(S) sources: one streamed GET with timeouts, retries, gzip and conditional requests."""

import io
import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from productsync.conf import app_settings
from productsync.exceptions import FeedError, SourceError
from productsync.feeds.base import Feed, FeedOptions, _reader_for

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A Retry-After longer than this ends the run instead of holding a worker for hours.
RETRY_AFTER_MAX = 300


class HttpBody(io.RawIOBase):
    """The decoded (gunzipped) response body; a broken connection is a FeedError."""

    def __init__(self, response: requests.Response, session: requests.Session) -> None:
        self.response = response
        self.session = session
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.response.raw.read(len(buffer), decode_content=True)
        except (Urllib3Error, requests.RequestException, OSError) as exc:
            raise FeedError(
                f"the connection broke after {self.bytes_read} bytes of the body: {_reason(exc)}"
            ) from None
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self.response.close()
        self.session.close()
        super().close()


def _reason(exc: BaseException) -> str:
    """The innermost useful reason of a requests/urllib3 error, in one line."""
    while exc.args and hasattr(exc.args[0], "reason"):
        exc = exc.args[0].reason if exc.args[0].reason is not None else exc.args[0]
        if not isinstance(exc, BaseException):
            return str(exc)
    return " ".join(str(exc).split()) or type(exc).__name__


def http_headers(url: str) -> dict[str, str]:
    """The configured headers of every HTTP_HEADERS prefix the URL starts with."""
    headers: dict[str, str] = {}
    for prefix in sorted(app_settings.HTTP_HEADERS, key=len):
        if url.startswith(prefix):
            headers.update(app_settings.HTTP_HEADERS[prefix])
    return headers


def http_session() -> requests.Session:
    """A session retrying connection errors, read timeouts, 429 and 5xx with backoff."""
    retries = app_settings.HTTP_RETRIES
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        backoff_factor=app_settings.HTTP_BACKOFF,
        respect_retry_after_header=True,
        retry_after_max=RETRY_AFTER_MAX,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def http_open(url: str, options: FeedOptions, validators: tuple[str, str]) -> Feed:
    """GET the feed, streaming. A 304 to the validators gives a not_modified Feed; an error
    status or an unreachable host is a SourceError."""
    etag, last_modified = validators
    headers = {"Accept-Encoding": "gzip", **http_headers(url)}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    connect, read = app_settings.HTTP_TIMEOUT
    session = http_session()
    try:
        response = session.get(url, headers=headers, stream=True, timeout=(connect, read))
    except requests.RequestException as exc:
        session.close()
        raise SourceError(f"{url}: {_reason(exc)}") from None
    body = HttpBody(response, session)
    if response.status_code == 304:
        body.close()
        feed = Feed(url, io.BytesIO(b""), iter)
        feed.not_modified = True
        feed.etag = response.headers.get("ETag", etag)
        feed.last_modified = response.headers.get("Last-Modified", last_modified)
        return feed
    if response.status_code >= 400:
        body.close()
        retried = len(getattr(response.raw.retries, "history", ()))
        after = f" after {retried} retries" if retried else ""
        raise SourceError(f"{url}: HTTP {response.status_code} {response.reason}{after}")
    content_type = response.headers.get("Content-Type", "")
    length = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
    try:
        _, reader = _reader_for(url, options, content_type)
        feed = Feed(
            url,
            body,
            reader,
            bytes_total=int(length) if length and length.isdigit() and not encoded else None,
        )
        feed.prime()
    except (FeedError, SourceError) as exc:
        body.close()
        raise SourceError(f"{url}: {exc}") from None
    feed.etag = response.headers.get("ETag", "")
    feed.last_modified = response.headers.get("Last-Modified", "")
    logger.info("%s: HTTP %s, %s", url, response.status_code, content_type or "no content type")
    return feed
