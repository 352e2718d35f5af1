"""Catalogue state the runs read and change: product lookups, hiding, the category view."""

from typing import NamedTuple

from django.db import connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from oscar.checks import use_productcategory_materialised_view
from oscar.core.loading import get_model
from oscar.core.utils import slugify

from productsync.models import SyncedProduct
from productsync.sql import insert_rows, quoted_names, select_rows
from productsync.writer.capture import sync_writes
from productsync.writer.search import search_index_update

Product = get_model("catalogue", "Product")


def catalogue_category_view_refresh() -> None:
    """Refresh Oscar's product-category materialised view when Oscar uses it (PostgreSQL with
    OSCAR_CATALOGUE_USE_POSTGRES_MATERIALISED_VIEWS); the writer's bulk category writes skip
    the receiver that refreshes it per row."""
    if use_productcategory_materialised_view():
        view = "catalogue_product_category_hierarchy"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {view})")
            # CONCURRENTLY (as Oscar refreshes it) keeps the view readable meanwhile, at a
            # higher cost; an empty view, as on a first load, has nothing to serve.
            concurrently = "CONCURRENTLY " if cursor.fetchone()[0] else ""
            cursor.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{view}")


def products_missing(source: str, run_id: int, failed_upcs) -> list[int]:
    """Public products synced from source that run run_id did not write or find unchanged,
    leaving out the items that failed in the run (and their children)."""
    return list(
        Product.objects.filter(productsync_state__source=source, is_public=True)
        .exclude(productsync_state__last_run_id=run_id)
        .exclude(upc__in=failed_upcs)
        .exclude(parent__upc__in=failed_upcs)
        # Children of an item that did not carry its children are left as they are.
        .exclude(parent__productsync_state__last_run_id=run_id)
        .values_list("pk", flat=True)
    )


def products_hide(product_ids: list[int], chunk: int = 5000) -> None:
    """Set products non-public (never deleted: orders and baskets point at them) and update
    the search index. date_updated moves on, so a product that comes back is rewritten."""
    now = timezone.now()
    for start in range(0, len(product_ids), chunk):
        ids = product_ids[start : start + chunk]
        with sync_writes():  # the sync's own change, not an edit to repair
            Product.objects.filter(pk__in=ids).update(is_public=False, date_updated=now)
            # A product that comes back is updated.
            SyncedProduct.objects.filter(product_id__in=ids).update(
                fingerprint="", raw_fingerprint=""
            )
    search_index_update(product_ids)


# Rows of new products.
PRODUCT_COLUMNS = [
    "upc",
    "title",
    "slug",
    "description",
    "product_class_id",
    "is_public",
    "structure",
    "parent_id",
]


class ProductState(NamedTuple):
    """What products_by_upc tells of each product."""

    id: int
    upc: str
    structure: str
    parent_upc: str | None
    fingerprint: str | None
    raw_fingerprint: str | None
    last_run_id: int | None
    last_position: int | None
    stock_fed: str | None  # JSON: the stock levels the feed last gave (stock_levels_fed)
    edits: int | None  # changes others made since the sync wrote it (writer.capture)


def products_by_upc(upcs: set[str]) -> dict[str, ProductState]:
    """The products of these UPCs with their sync state (None where never synced)."""
    if not upcs:
        return {}
    p, s = quoted_names(Product, connection.vendor), quoted_names(SyncedProduct, connection.vendor)
    sql = (
        f"SELECT p.{p['id']}, p.{p['upc']}, p.{p['structure']}, parent.{p['upc']}, "
        f"s.{s['fingerprint']}, s.{s['raw_fingerprint']}, s.{s['last_run_id']}, "
        f"s.{s['last_position']}, s.{s['stock_fed']}, s.{s['edits']} FROM {p['']} p "
        f"LEFT JOIN {p['']} parent ON parent.{p['id']} = p.{p['parent_id']} "
        f"LEFT JOIN {s['']} s ON s.{s['product_id']} = p.{p['id']} WHERE p.{p['upc']} IN ({{}})"
    )
    return {row[1]: ProductState(*row) for row in select_rows(sql, list(upcs))}


def products_insert(rows: list[tuple]) -> list[int]:
    """Insert products (rows of PRODUCT_COLUMNS); return their ids in order."""
    return insert_rows(Product, PRODUCT_COLUMNS, rows, returning="id")


def product_slug(title: str) -> str:
    """The slug Product.save() would make, cut to the field's length (slugify can lengthen
    text: a ligature such as "ﬃ" becomes three letters)."""
    return slugify(title)[: Product._meta.get_field("slug").max_length]


def product_dashboard_url(product_id: int) -> str | None:
    """The product's page in Oscar's dashboard; None in a project without the dashboard."""
    try:
        return reverse("dashboard:catalogue-product", kwargs={"pk": product_id})
    except NoReverseMatch:
        return None


def product_dashboard_urls(upcs) -> dict[str, str | None]:
    """Dashboard URLs of the products with these UPCs that exist, in one query."""
    upcs = {upc for upc in upcs if upc}
    if not upcs:
        return {}
    rows = Product.objects.filter(upc__in=upcs).values_list("upc", "pk")
    return {upc: product_dashboard_url(pk) for upc, pk in rows}
