"""Test helpers: the catalogue as comparable data, and the demo catalogue in other formats."""

import csv
import json
import tracemalloc
from pathlib import Path

from oscar.core.loading import get_model

from productsync.feeds import feed_open
from productsync.feeds.csvfeed import FIELDS
from tests.conftest import FIXTURES

Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")

DEMO = FIXTURES / "products.json"
HEADER = [name for name in FIELDS if name != "barcode"]  # a CSV may leave it out


def key_of(product) -> str:
    """A product's key as the sync names it: its sync state's, else (never synced) its UPC."""
    state = getattr(product, "productsync_state", None)
    return state.sync_key if state is not None else product.upc


def catalogue_snapshot() -> dict:
    """Everything a sync writes, products by key, the rest by name: equal snapshots, equal
    catalogues."""
    names = {c.pk: c.full_name for c in Category.objects.all()}
    products = {}
    for p in Product.objects.select_related(
        "productsync_state", "product_class", "parent__productsync_state"
    ).prefetch_related("categories", "stockrecords__partner"):
        products[key_of(p)] = {
            "upc": p.upc,
            "title": p.title,
            "slug": p.slug,
            "description": p.description,
            "product_class": p.product_class.name if p.product_class else None,
            "structure": p.structure,
            "parent": key_of(p.parent) if p.parent_id else None,
            "is_public": p.is_public,
            "categories": sorted(names[c.pk] for c in p.categories.all()),
            "stockrecords": sorted(
                (
                    sr.partner.name,
                    sr.partner_sku,
                    str(sr.price) if sr.price is not None else None,
                    sr.price_currency,
                    sr.num_in_stock,
                )
                for sr in p.stockrecords.all()
            ),
        }
    return {
        "products": products,
        "categories": sorted(names.values()),
        "partners": sorted(Partner.objects.values_list("name", flat=True)),
        "classes": sorted(ProductClass.objects.values_list("name", flat=True)),
    }


def attribute_snapshot() -> dict:
    """Every product's attribute values as text, by key and attribute code."""
    out: dict = {}
    values = ProductAttributeValue.objects.select_related("product__productsync_state", "attribute")
    for value in values.prefetch_related("value_multi_option"):
        out.setdefault(key_of(value.product), {})[value.attribute.code] = value.value_as_text
    return out


def catalogue_clear() -> None:
    """A fresh catalogue for the next sync in the same test."""
    Product.objects.all().delete()
    Category.objects.all().delete()
    Partner.objects.all().delete()
    ProductClass.objects.all().delete()


def demo_items() -> list[dict]:
    return json.loads(DEMO.read_text(encoding="utf-8"))


def demo_csv_rows() -> list[list[str]]:
    """The demo catalogue as CSV rows in our header: one row per stock record."""
    rows = [HEADER]
    for p in demo_items():
        product = [
            p["upc"],
            p["title"],
            p["product_class"],
            p.get("description", ""),
            "|".join(p["categories"]),
            str(p["is_public"]).upper() if "is_public" in p else "",
        ]
        for sr in p.get("stockrecords") or [None]:
            stock = ["", "", "", "", ""]
            if sr is not None:
                stock = [
                    sr["partner"],
                    sr["partner_sku"],
                    sr.get("price") or "",
                    sr.get("currency") or "",
                    "" if sr.get("num_in_stock") is None else str(sr["num_in_stock"]),
                ]
            rows.append(product + stock)
    return rows


def demo_csv(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> str:
    with open(path, "w", newline="", encoding=encoding) as f:
        csv.writer(f, delimiter=delimiter).writerows(demo_csv_rows())
    return str(path)


def demo_oscar_csv(path: Path) -> str:
    """The demo catalogue in Oscar's headerless format: a row per category and stock record
    (what it cannot say, is_public and currency, is lost)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, escapechar="\\", doublequote=False)
        for p in demo_items():
            for breadcrumb in p["categories"]:
                row = [p["product_class"], breadcrumb, p["upc"], p["title"]]
                row.append(p.get("description") or "NULL")
                for sr in p.get("stockrecords") or [None]:
                    if sr is None:
                        writer.writerow(row)
                        continue
                    stock = "" if sr.get("num_in_stock") is None else sr["num_in_stock"]
                    writer.writerow(row + [sr["partner"], sr["partner_sku"], sr["price"], stock])
    return str(path)


def demo_without(*keys: str, stock_keys: tuple[str, ...] = ()) -> list[dict]:
    """The demo items without the given keys, for formats that cannot carry them."""
    items = []
    for p in demo_items():
        item = {k: v for k, v in p.items() if k not in keys}
        if "stockrecords" in item:
            item["stockrecords"] = [
                {k: v for k, v in sr.items() if k not in stock_keys} for sr in item["stockrecords"]
            ]
        items.append(item)
    return items


def reading_peak(source: str) -> tuple[int, int]:
    """Items in a feed and the peak memory allocated while reading them."""
    tracemalloc.start()
    try:
        with feed_open(source, count=False) as feed:
            count = sum(1 for _ in feed)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def product_by_key(key: str):
    """The product a sync keeps under this key (its items' upc): its UPC may be a barcode."""
    return Product.objects.get(productsync_state__sync_key=key)
