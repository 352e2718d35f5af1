"""Everything that knows Oscar: the batch writer, the catalogue state, images and search."""

from productsync.writer.batch import BatchWriter
from productsync.writer.capture import capture_install, capture_remove, edits_in_source
from productsync.writer.catalogue import (
    catalogue_category_view_refresh,
    product_dashboard_urls,
    products_by_key,
    products_hide,
    products_missing,
)
from productsync.writer.images import ImageSync
from productsync.writer.locks import items_lock
from productsync.writer.partial import PartialWriter
from productsync.writer.sanitise import html_policy
from productsync.writer.search import search_index_update
from productsync.writer.snapshot import catalogue_snapshots
from productsync.writer.unchanged import unchanged_skip

__all__ = [
    "BatchWriter",
    "ImageSync",
    "PartialWriter",
    "catalogue_category_view_refresh",
    "capture_install",
    "capture_remove",
    "edits_in_source",
    "html_policy",
    "items_lock",
    "catalogue_snapshots",
    "product_dashboard_urls",
    "products_by_key",
    "products_hide",
    "products_missing",
    "search_index_update",
    "unchanged_skip",
]
