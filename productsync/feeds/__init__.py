"""Feed readers: open a source and stream its items; they never touch the database."""

from productsync.feeds.jsonfeed import jsonl_items
from productsync.feeds.open import FORMATS, ByteStream, Feed, FeedOptions, feed_open, is_url

__all__ = ["FORMATS", "ByteStream", "Feed", "FeedOptions", "feed_open", "is_url", "jsonl_items"]
