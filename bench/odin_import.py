"""django-oscar-odin's products_to_db on our feed (pip install -e ".[bench]").

python bench/odin_import.py FEED.jsonl

Categories (through treebeard, with a code), product classes and partners are created first:
odin finds them by code or slug and does not create them. Then every product is mapped to a
ProductResource and saved by products_to_db in its own chunks (RESOURCES_TO_DB_CHUNK_SIZE, 500
by default). The stock record goes through odin's product-level price fields (price, currency,
availability, partner): its nested StockRecordResource cannot refer to an existing partner.
Odin then uses the UPC as the partner SKU: same rows and columns, other SKU text.
"""

import argparse
import json
from decimal import Decimal

from _django import setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("feed", help="a .jsonl feed")
    args = parser.parse_args()
    setup(extra_apps=("oscar_odin.apps.OscarOdinAppConfig",))

    from oscar.core.loading import get_class, get_model
    from oscar.core.utils import slugify
    from oscar_odin.mappings.helpers import products_to_db
    from oscar_odin.resources.catalogue import (
        CategoryResource,
        ProductClassResource,
        ProductResource,
    )

    Category = get_model("catalogue", "Category")
    ProductClass = get_model("catalogue", "ProductClass")
    Partner = get_model("partner", "Partner")
    create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")

    with open(args.feed, encoding="utf-8") as f:
        items = [json.loads(line) for line in f]

    for breadcrumb in sorted({c for item in items for c in item["categories"]}):
        category = create_from_breadcrumbs(breadcrumb)
        if category.code != breadcrumb:
            Category.objects.filter(pk=category.pk).update(code=breadcrumb)
    for name in sorted({item["product_class"] for item in items}):
        ProductClass.objects.get_or_create(slug=name.lower(), defaults={"name": name})
    partners = {
        name: Partner.objects.get_or_create(code=name.lower(), defaults={"name": name})[0]
        for name in sorted({sr["partner"] for item in items for sr in item["stockrecords"]})
    }

    def resource(item: dict) -> ProductResource:
        return ProductResource(
            upc=item["upc"],
            title=item["title"],
            slug=slugify(item["title"]),
            description=item["description"],
            structure="standalone",
            is_public=item["is_public"],
            product_class=ProductClassResource(
                slug=item["product_class"].lower(), name=item["product_class"]
            ),
            categories=[CategoryResource(code=c) for c in item["categories"]],
            price=Decimal(item["stockrecords"][0]["price"]),
            currency=item["stockrecords"][0]["currency"],
            availability=item["stockrecords"][0]["num_in_stock"],
            partner=partners[item["stockrecords"][0]["partner"]],
        )

    _, errors = products_to_db([resource(item) for item in items])
    if errors:
        raise SystemExit(f"products_to_db reported {len(errors)} errors, first: {errors[0]}")


if __name__ == "__main__":
    main()
