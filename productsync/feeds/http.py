"""HTTP(S) sources: one streamed, guarded GET (productsync/http.py) with gzip and conditional
requests."""

import io
import logging
from collections.abc import Callable

from productsync.addresses import url_display
from productsync.exceptions import FeedError, SourceError
from productsync.feeds.stream import ByteStream, Feed, Reader, Validators
from productsync.http import FetchError, GuardedResponse, GuardedSession, feed_guard

logger = logging.getLogger(__name__)


def _body(response: GuardedResponse, session: GuardedSession) -> ByteStream:
    """The decoded (gunzipped) response body; a broken connection is a FeedError."""

    def broken(exc: Exception, bytes_read: int) -> FeedError:
        return FeedError(f"the connection broke after {bytes_read} bytes of the body: {exc}")

    def close() -> None:
        response.close()
        session.close()

    return ByteStream(response.read, errors=(FetchError,), translate=broken, on_close=close)


def http_open(url: str, validators: Validators, reader_for: Callable[[str], Reader]) -> Feed:
    """GET the feed through the guarded session, streaming, read by reader_for(its
    Content-Type). A 304 to the validators
    gives a not_modified Feed; an error status or an unreachable host is a SourceError."""
    etag, last_modified = validators
    headers = {"Accept-Encoding": "gzip"}  # the session adds each hop's HTTP_HEADERS
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    shown = url_display(url)
    session = GuardedSession(feed_guard())
    try:
        response = session.get(url, headers)
    except FetchError as exc:
        session.close()
        raise SourceError(f"{shown}: {exc}") from None
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
        after = f" after {response.retries} retries" if response.retries else ""
        raise SourceError(f"{shown}: HTTP {response.status_code} {response.reason}{after}")
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
        raise SourceError(f"{shown}: {exc}") from None
    feed.etag = response.headers.get("ETag", "")
    feed.last_modified = response.headers.get("Last-Modified", "")
    logger.info(
        "%s: HTTP %s, %s",
        shown,
        response.status_code,
        content_type or "no content type",
    )
    return feed
