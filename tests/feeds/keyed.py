"""The catalogue by sync key, for feeds whose products share a UPC: catalogue_snapshot and
attribute_snapshot (tests/catalogue.py) name products by UPC, and a platform's products
without a barcode all have none ("")."""

from oscar.core.loading import get_model

from tests.catalogue import catalogue_snapshot

Product = get_model("catalogue", "Product")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")


def products_by_key() -> dict:
    """Each product by its key with everything a sync writes, its UPC and its parent's key."""
    products = Product.objects.select_related(
        "productsync_state", "product_class", "parent__productsync_state"
    ).prefetch_related("categories", "stockrecords__partner")
    return {
        p.productsync_state.sync_key: {
            "upc": p.upc,
            "title": p.title,
            "slug": p.slug,
            "description": p.description,
            "product_class": p.product_class.name if p.product_class else None,
            "structure": p.structure,
            "parent": p.parent.productsync_state.sync_key if p.parent_id else None,
            "is_public": p.is_public,
            "categories": sorted(c.full_name for c in p.categories.all()),
            "stockrecords": sorted(
                (sr.partner.name, sr.partner_sku, sr.price, sr.price_currency, sr.num_in_stock)
                for sr in p.stockrecords.all()
            ),
        }
        for p in products
    }


def attributes_by_key() -> dict:
    """Every product's attribute values as text, by key and attribute code."""
    out: dict = {}
    values = ProductAttributeValue.objects.select_related("product__productsync_state", "attribute")
    for value in values.prefetch_related("value_multi_option"):
        key = value.product.productsync_state.sync_key
        out.setdefault(key, {})[value.attribute.code] = value.value_as_text
    return out


def catalogue_by_key() -> dict:
    """catalogue_snapshot with its products by key: equal snapshots, equal catalogues."""
    return {**catalogue_snapshot(), "products": products_by_key()}
