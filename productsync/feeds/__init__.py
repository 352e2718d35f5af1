"""Feed readers: open a source and stream its items; they never touch the database."""

from productsync.feeds.base import Feed, feed_open

__all__ = ["Feed", "feed_open"]
