"""Everything that knows Oscar: the batch writer, the catalogue state, images and search."""

from productsync.writer.batch import BatchWriter
from productsync.writer.catalogue import (
    catalogue_category_view_refresh,
    product_dashboard_urls,
    products_hide,
    products_missing,
)
from productsync.writer.images import ImageSync
from productsync.writer.search import search_index_update
from productsync.writer.snapshot import catalogue_snapshots

__all__ = [
    "BatchWriter",
    "ImageSync",
    "catalogue_category_view_refresh",
    "catalogue_snapshots",
    "product_dashboard_urls",
    "products_hide",
    "products_missing",
    "search_index_update",
]
