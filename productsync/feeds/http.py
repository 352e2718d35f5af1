"""HTTP(S) sources: one streamed GET with timeouts, retries, gzip and conditional requests."""

import functools
import io
import logging
from collections.abc import Callable

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from productsync.conf import app_settings
from productsync.exceptions import FeedError, SourceError
from productsync.feeds.stream import ByteStream, Feed, Reader, Validators
from productsync.records import one_line

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A Retry-After longer than this ends the run instead of holding a worker for hours.
RETRY_AFTER_MAX = 300


def _reason(exc: BaseException) -> str:
    """The innermost useful reason of a requests/urllib3 error, in one line."""
    while exc.args and hasattr(exc.args[0], "reason"):
        exc = exc.args[0].reason if exc.args[0].reason is not None else exc.args[0]
        if not isinstance(exc, BaseException):
            return str(exc)
    return one_line(exc) or type(exc).__name__


def http_headers(url: str) -> dict[str, str]:
    """The configured headers of every HTTP_HEADERS prefix the URL starts with."""
    headers: dict[str, str] = {}
    for prefix in sorted(app_settings.HTTP_HEADERS, key=len):
        if url.startswith(prefix):
            headers.update(app_settings.HTTP_HEADERS[prefix])
    return headers


def retrying_session(
    retries: int, backoff: float, *, pool_maxsize: int = DEFAULT_POOLSIZE, **retry_options
) -> requests.Session:
    """A session whose GETs retry failures, 429 and 5xx up to retries times with backoff;
    retry_options go to urllib3's Retry (per-kind counts, Retry-After limits)."""
    retry = Retry(
        total=retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        backoff_factor=backoff,
        raise_on_status=False,
        **retry_options,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def http_session() -> requests.Session:
    """The feed's session: connection errors, read timeouts, 429 and 5xx are retried."""
    retries = app_settings.HTTP_RETRIES
    return retrying_session(
        retries,
        app_settings.HTTP_BACKOFF,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        respect_retry_after_header=True,
        retry_after_max=RETRY_AFTER_MAX,
    )


def _body(response: requests.Response, session: requests.Session) -> ByteStream:
    """The decoded (gunzipped) response body; a broken connection is a FeedError."""

    def broken(exc: Exception, bytes_read: int) -> FeedError:
        return FeedError(
            f"the connection broke after {bytes_read} bytes of the body: {_reason(exc)}"
        )

    def close() -> None:
        response.close()
        session.close()

    return ByteStream(
        functools.partial(response.raw.read, decode_content=True),
        errors=(Urllib3Error, requests.RequestException, OSError),
        translate=broken,
        on_close=close,
    )


def http_open(url: str, validators: Validators, reader_for: Callable[[str], Reader]) -> Feed:
    """GET the feed, streaming, read by reader_for(its Content-Type). A 304 to the validators
    gives a not_modified Feed; an error status or an unreachable host is a SourceError."""
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
    body = _body(response, session)
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
        reader = reader_for(content_type)
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
