"""Catalogue state the runs read and change: product lookups, hiding, the category view."""

import re
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
        .exclude(productsync_state__sync_key__in=failed_upcs)
        .exclude(parent__productsync_state__sync_key__in=failed_upcs)
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

# A product's key, what its items name in `upc`: kept in its sync state once the sync wrote
# it; before, its UPC; a product with neither is named by its id (export_products).
ID_KEY = "oscar-product-{}"
_ID_KEY = re.compile(r"oscar-product-([1-9][0-9]{0,17})")


def product_key(sync_key: str | None, upc: str | None, product_id: int) -> str:
    """The key of a product (key_select's rule, for rows read by the ORM)."""
    return sync_key or upc or ID_KEY.format(product_id)


def product_upc(member) -> str | None:
    """The UPC a new product gets: its barcode where the item gives one (an empty barcode:
    none), else the item's key."""
    if member.barcode is None:
        return member.upc
    return member.barcode or None


def product_key_sql(product: str, state: str) -> str:
    """product_key's rule in SQL, for the product and sync state of these table aliases."""
    p, s = quoted_names(Product, connection.vendor), quoted_names(SyncedProduct, connection.vendor)
    ids, upc = f"{product}.{p['id']}", f"NULLIF({product}.{p['upc']}, '')"
    return f"COALESCE({state}.{s['sync_key']}, {upc}, '{ID_KEY.format('')}' || {ids})"


def key_select(columns: str, keys: set[str], joins: str = "") -> list[tuple]:
    """Rows of columns (over product p, its sync state s, and joins) of the products these
    keys name, with "{key}" in columns for the product's key. A product the sync wrote is
    found by its sync state's key, another by its UPC (or, without a UPC, by the key its id
    makes): each by an index. The products whose UPC is one of the keys come too, whatever
    their key: the writer checks that no other product holds a UPC it writes."""
    if not keys:
        return []
    p, s = quoted_names(Product, connection.vendor), quoted_names(SyncedProduct, connection.vendor)
    upc, key = f"p.{p['upc']}", f"s.{s['sync_key']}"
    # Last, whether the sync wrote the product: see the sort below.
    columns = columns.format(key=product_key_sql("p", "s")) + f", {key} IS NOT NULL"
    base = (
        f"SELECT {columns} FROM {p['']} p LEFT JOIN {s['']} s "
        f"ON s.{s['product_id']} = p.{p['id']} {joins} WHERE "
    )
    parts = [
        base + f"{upc} IN ({{}})",
        base + f"{key} IN ({{}}) AND ({upc} IS NULL OR {upc} <> {key})",
    ]
    lists = [list(keys), list(keys)]
    ids = [int(match.group(1)) for k in keys if (match := _ID_KEY.fullmatch(k))]
    if ids:
        parts.append(
            base + f"p.{p['id']} IN ({{}}) AND NULLIF({upc}, '') IS NULL AND {key} IS NULL"
        )
        lists.append(ids)
    rows = select_rows(" UNION ALL ".join(parts), *lists)
    # Two products may have one key (one made in the dashboard with the UPC another product
    # was synced under): the synced one comes last, so a dict by key holds it.
    rows.sort(key=lambda row: bool(row[-1]))
    return [row[:-1] for row in rows]


class ProductState(NamedTuple):
    """What products_by_key tells of each product."""

    id: int
    key: str
    structure: str
    parent_key: str | None
    fingerprint: str | None
    raw_fingerprint: str | None
    last_run_id: int | None
    last_position: int | None
    stock_fed: str | None  # JSON: the stock levels the feed last gave (stock_levels_fed)
    edits: int | None  # changes others made since the sync wrote it (writer.capture)
    upc: str | None


class Keyed(dict):
    """products_by_key's answer: ProductStates by key, and in holders every product it read by
    its UPC (a dashboard product whose UPC is a synced product's key too)."""

    holders: dict[str, ProductState]


def products_by_key(keys: set[str]) -> Keyed:
    """The products of these keys with their sync state (None where never synced), by key;
    with them, under their own keys, the products whose UPC is one of these (key_select)."""
    p, s = quoted_names(Product, connection.vendor), quoted_names(SyncedProduct, connection.vendor)
    parent_key = product_key_sql("parent", "ps")
    columns = (
        f"p.{p['id']}, {{key}}, p.{p['structure']}, {parent_key}, "
        f"s.{s['fingerprint']}, s.{s['raw_fingerprint']}, s.{s['last_run_id']}, "
        f"s.{s['last_position']}, s.{s['stock_fed']}, s.{s['edits']}, p.{p['upc']}"
    )
    joins = (
        f"LEFT JOIN {p['']} parent ON parent.{p['id']} = p.{p['parent_id']} "
        f"LEFT JOIN {s['']} ps ON ps.{s['product_id']} = parent.{p['id']}"
    )
    rows = [ProductState(*row) for row in key_select(columns, keys, joins)]
    out = Keyed((row.key, row) for row in rows)
    out.holders = {row.upc: row for row in rows if row.upc}
    return out


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


def product_dashboard_urls(keys) -> dict[str, str | None]:
    """Dashboard URLs of the products of these keys that exist, in one query."""
    keys = {key for key in keys if key}
    p = quoted_names(Product, connection.vendor)
    rows = key_select(f"{{key}}, p.{p['id']}", keys)
    return {key: product_dashboard_url(pk) for key, pk in rows}
