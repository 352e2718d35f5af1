"""The floor: a bare bulk_create of Oscar's CSV, no validation, no history, lookups pre-resolved.

python bench/floor.py CSV --chunk 1000
"""

import argparse
import csv
from decimal import Decimal

from _django import setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--chunk", type=int, default=1000)
    args = parser.parse_args()
    setup()

    from django.db import transaction
    from oscar.core.loading import get_class, get_model
    from oscar.core.utils import slugify

    Product = get_model("catalogue", "Product")
    ProductClass = get_model("catalogue", "ProductClass")
    ProductCategory = get_model("catalogue", "ProductCategory")
    Partner = get_model("partner", "Partner")
    StockRecord = get_model("partner", "StockRecord")
    create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")

    classes: dict[str, int] = {}
    categories: dict[str, int] = {}
    partners: dict[str, int] = {}

    def write(rows: list[list[str]]) -> None:
        with transaction.atomic():
            products = Product.objects.bulk_create(
                [
                    Product(
                        upc=upc,
                        title=title,
                        slug=slugify(title),
                        description=description,
                        product_class_id=classes[cls],
                        structure=Product.STANDALONE,
                    )
                    for cls, _, upc, title, description, *_ in rows
                ]
            )
            ProductCategory.objects.bulk_create(
                [
                    ProductCategory(product_id=p.pk, category_id=categories[row[1]])
                    for p, row in zip(products, rows, strict=True)
                ]
            )
            StockRecord.objects.bulk_create(
                [
                    StockRecord(
                        product_id=p.pk,
                        partner_id=partners[row[5]],
                        partner_sku=row[6],
                        price=Decimal(row[7]),
                        num_in_stock=int(row[8]),
                    )
                    for p, row in zip(products, rows, strict=True)
                ]
            )

    with open(args.csv, encoding="utf-8", newline="") as f:
        rows = []
        for row in csv.reader(f, escapechar="\\"):
            if row[0] not in classes:
                classes[row[0]] = ProductClass.objects.get_or_create(name=row[0])[0].pk
            if row[1] not in categories:
                categories[row[1]] = create_from_breadcrumbs(row[1]).pk
            if row[5] not in partners:
                partners[row[5]] = Partner.objects.get_or_create(name=row[5])[0].pk
            rows.append(row)
            if len(rows) == args.chunk:
                write(rows)
                rows = []
        if rows:
            write(rows)


if __name__ == "__main__":
    main()
