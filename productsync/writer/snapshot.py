"""Products as the catalogue holds them, in our feed format: for diffs and the export."""

from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.db.models import Q
from oscar.core.loading import get_model

from productsync.records import category_name_escaped
from productsync.writer.catalogue import product_key

Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
Category = get_model("catalogue", "Category")
StockRecord = get_model("partner", "StockRecord")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
MultiOption = ProductAttributeValue.value_multi_option.through

# Attribute types a feed can set (records.ATTRIBUTE_TYPES); file, image and entity values
# have no feed form and are left out.
PLAIN_KINDS = ("text", "richtext", "integer", "boolean", "float")


def _attribute_value(kind: str, row: dict, multi: dict[int, list[str]]):
    if kind in PLAIN_KINDS:
        return row[f"value_{kind}"]
    if kind in ("date", "datetime"):
        value = row[f"value_{kind}"]
        return value.isoformat() if value is not None else None
    if kind == "option":
        return row["value_option__option"]
    return multi.get(row["id"], [])


def _attributes(member_ids: list[int]) -> dict[int, dict]:
    """{product id: {code: value as a feed gives it}}, in two queries."""
    kinds = (*PLAIN_KINDS, "date", "datetime")
    rows = list(
        ProductAttributeValue.objects.filter(
            product_id__in=member_ids,
            attribute__type__in=(*kinds, "option", "multi_option"),
        )
        .order_by("attribute__code")
        .values(
            "id",
            "product_id",
            "attribute__code",
            "attribute__type",
            "value_option__option",
            *(f"value_{kind}" for kind in kinds),
        )
    )
    multi_ids = [row["id"] for row in rows if row["attribute__type"] == "multi_option"]
    multi: dict[int, list[str]] = defaultdict(list)
    if multi_ids:
        for pav_id, option in (
            MultiOption.objects.filter(productattributevalue_id__in=multi_ids)
            .order_by("pk")
            .values_list("productattributevalue_id", "attributeoption__option")
        ):
            multi[pav_id].append(option)
    out: dict[int, dict] = defaultdict(dict)
    for row in rows:
        out[row["product_id"]][row["attribute__code"]] = _attribute_value(
            row["attribute__type"], row, multi
        )
    return out


def _stockrecords(member_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for product_id, partner, sku, price, currency, stock in (
        StockRecord.objects.filter(product_id__in=member_ids)
        .order_by("pk")
        .values_list(
            "product_id",
            "partner__name",
            "partner_sku",
            "price",
            "price_currency",
            "num_in_stock",
        )
    ):
        out[product_id].append(
            {
                "partner": partner,
                "partner_sku": sku,
                "price": None if price is None else str(price),
                "currency": currency,
                "num_in_stock": stock,
            }
        )
    return out


def _categories(product_ids: list[int], known: dict[str, str]) -> dict[int, list[str]]:
    """Each product's categories as breadcrumbs ("Books > Computing"): one query, and one more
    for the names of categories not in known (path: name)."""
    links = list(
        ProductCategory.objects.filter(product_id__in=product_ids)
        .order_by("pk")
        .values_list("product_id", "category__path")
    )
    step = Category.steplen
    wanted = {path[:end] for _, path in links for end in range(step, len(path) + 1, step)}
    names = {path: known[path] for path in wanted if path in known}
    if len(names) < len(wanted):
        names.update(
            Category.objects.filter(path__in=wanted - names.keys()).values_list("path", "name")
        )
    out: dict[int, list[str]] = defaultdict(list)
    for product_id, path in links:
        out[product_id].append(breadcrumb(path, names))
    return out


PRODUCT_VALUES = (
    "id",
    "upc",
    "productsync_state__sync_key",
    "title",
    "description",
    "is_public",
    "product_class__name",
)


def breadcrumb(path: str, names: dict[str, str]) -> str:
    """The breadcrumb of the category at path ("Books > Computing"), from names (path: name);
    a ">" or "|" within a name is escaped ("Sizes \\> XL"), so a feed reads it back as one."""
    step = Category.steplen
    return " > ".join(
        category_name_escaped(names[path[:end]]) for end in range(step, len(path) + 1, step)
    )


def product_snapshots(
    product_ids: Iterable[int],
    category_names: dict[str, str] | None = None,
    categories: dict[int, list[str]] | None = None,
) -> dict[int, dict]:
    """The feed items of these standalone or parent products as the catalogue holds them
    (children nested), by product id; images are left out (a feed names them by URL, the
    catalogue keeps files). Three to six queries however many products: category_names
    (path: name) spares reading the names of the categories it has, categories (product id:
    breadcrumbs, when the caller knows them) reading the products' categories."""
    ids = list(product_ids)
    if not ids:
        return {}
    rows = list(
        Product.objects.filter(Q(pk__in=ids) | Q(parent_id__in=ids))
        .order_by("pk")
        .values("parent_id", *PRODUCT_VALUES)
    )
    products = [row for row in rows if row["parent_id"] is None]
    children = [row for row in rows if row["parent_id"] is not None]
    member_ids = [row["id"] for row in rows]
    attributes, stock = _attributes(member_ids), _stockrecords(member_ids)
    if categories is None:
        categories = _categories(ids, category_names or {})
    kids: dict[int, list[dict]] = defaultdict(list)
    for child in children:
        kids[child["parent_id"]].append(
            {
                **_keys(child),
                "title": child["title"],
                "description": child["description"],
                "is_public": child["is_public"],
                "attributes": attributes.get(child["id"], {}),
                "stockrecords": stock.get(child["id"], []),
            }
        )
    return {
        p["id"]: {
            **_keys(p),
            "title": p["title"],
            "product_class": p["product_class__name"] or "",
            "description": p["description"],
            "categories": categories.get(p["id"], []),
            "is_public": p["is_public"],
            "stockrecords": stock.get(p["id"], []),
            "attributes": attributes.get(p["id"], {}),
            "children": kids.get(p["id"], []),
        }
        for p in products
    }


def _keys(row: dict) -> dict:
    """A product's key (what its items name in upc) and, where it is not the key, its UPC as
    the item's barcode ("" for none)."""
    key = product_key(row["productsync_state__sync_key"], row["upc"], row["id"])
    return {"upc": key} if row["upc"] == key else {"upc": key, "barcode": row["upc"] or ""}


def catalogue_snapshots(source: str | None = None, chunk: int = 500) -> Iterator[dict]:
    """Every standalone and parent product (of one source's sync state, when given) as a feed
    item, in id order, read a chunk per query so memory stays flat at any catalogue size."""
    products = Product.objects.exclude(structure=Product.CHILD)
    if source is not None:
        products = products.filter(productsync_state__source=source)
    after = 0
    while True:
        ids = list(
            products.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return
        snapshots = product_snapshots(ids)
        for pk in ids:
            yield snapshots[pk]
        after = ids[-1]
