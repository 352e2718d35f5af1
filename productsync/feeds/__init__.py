"""Feed readers: open a source and stream its items; they never touch the database."""

from productsync.feeds.jsonfeed import jsonl_items
from productsync.feeds.open import (
    FORMATS,
    ByteStream,
    Feed,
    FeedOptions,
    credentials_errors,
    credentials_get,
    feed_open,
    feed_owns,
    feed_partial,
    is_remote,
    is_url,
    mapping_path,
    remote_fingerprint,
    url_password_refuse,
    url_public,
)
from productsync.feeds.presets import PRESETS

__all__ = [
    "FORMATS",
    "PRESETS",
    "ByteStream",
    "Feed",
    "FeedOptions",
    "credentials_errors",
    "credentials_get",
    "feed_open",
    "feed_owns",
    "feed_partial",
    "is_remote",
    "is_url",
    "jsonl_items",
    "mapping_path",
    "remote_fingerprint",
    "url_password_refuse",
    "url_public",
]
