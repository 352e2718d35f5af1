"""The only Oscar-aware module: upserts one batch of validated items with bulk queries."""

import sqlite3
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from oscar.core.loading import get_class, get_model
from oscar.core.utils import slugify

from productsync.models import SyncedProduct
from productsync.records import BatchResult, ItemFailure, ValidItem

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductCategory = get_model("catalogue", "ProductCategory")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")


def _lift_sqlite_variable_limit() -> None:
    """Django assumes SQLite's old 999-variable limit and splits bulk queries by it; SQLite
    3.32+ allows 32766, so one batch stays one query whatever its size."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.features.max_query_params = max(connection.features.max_query_params, limit)


class BatchWriter:
    """Writes batches for one run; caches classes, categories and partners across batches."""

    def __init__(self, run_id: int, source: str, default_currency: str) -> None:
        self.run_id = run_id
        self.source = source
        self.default_currency = default_currency
        self._classes: dict[str, int] = {}
        self._categories: dict[str, int] = {}
        self._partners: dict[str, int] = {}
        _lift_sqlite_variable_limit()

    def forget(self) -> None:
        """Drop the caches: a rollback may have undone rows they point at."""
        self._classes.clear()
        self._categories.clear()
        self._partners.clear()

    # Lookups of the few shared rows, created on first sight and cached for the run.

    def _class_id(self, name: str) -> int:
        if name not in self._classes:
            pc = ProductClass.objects.filter(name=name).order_by("pk").first()
            self._classes[name] = (pc or ProductClass.objects.create(name=name)).pk
        return self._classes[name]

    def _category_id(self, breadcrumb: str) -> int:
        key = " > ".join(part.strip() for part in breadcrumb.split(">"))
        if key not in self._categories:
            self._categories[key] = create_from_breadcrumbs(key).pk
        return self._categories[key]

    def _partner_id(self, name: str) -> int:
        if name not in self._partners:
            partner = Partner.objects.filter(name=name).order_by("pk").first()
            self._partners[name] = (partner or Partner.objects.create(name=name)).pk
        return self._partners[name]

    def write(self, items: Iterable[ValidItem], result: BatchResult) -> None:
        """Upsert items; count each outcome in result. Conflicts with other items or products
        become failures; a database error propagates so the caller can retry item by item."""
        items = list(items)

        def fail(item: ValidItem, field: str, message: str) -> None:
            result.failures.append(
                ItemFailure(item.position, item.record.upc, message, item.raw(), field)
            )

        existing = {
            row["upc"]: row
            for row in Product.objects.filter(upc__in={i.record.upc for i in items}).values(
                "id",
                "upc",
                "date_updated",
                "productsync_state__fingerprint",
                "productsync_state__synced_at",
                "productsync_state__last_run_id",
                "productsync_state__last_position",
            )
        }

        # In feed order, as if one item were written at a time: an item that fails does not
        # claim its UPC or SKUs, so the outcome does not depend on where batches split.
        new: list[ValidItem] = []
        changed: list[tuple[ValidItem, int]] = []
        unchanged: list[tuple[ValidItem, int]] = []
        accepted: dict[str, int] = {}
        claim = self._claim_skus(items, fail)
        for item in items:
            row = existing.get(item.record.upc)
            seen = accepted.get(item.record.upc)
            if seen is None and row and row["productsync_state__last_run_id"] == self.run_id:
                # Written earlier in this run, by an item of an earlier batch.
                seen = row["productsync_state__last_position"]
                seen = None if seen == item.position else seen
            if seen is not None:
                fail(item, "upc", f"upc: duplicate of the item at position {seen}")
            elif (
                row
                and row["productsync_state__fingerprint"] == item.fingerprint
                and row["date_updated"] <= row["productsync_state__synced_at"]
            ):
                unchanged.append((item, row["id"]))
            elif not claim(item):
                continue
            elif row is None:
                new.append(item)
            else:
                changed.append((item, row["id"]))
            if seen is None:
                accepted[item.record.upc] = item.position

        products = [
            Product(
                upc=item.record.upc,
                title=item.record.title,
                slug=slugify(item.record.title)[: Product._meta.get_field("slug").max_length],
                description=item.record.description,
                product_class_id=self._class_id(item.record.product_class),
                is_public=item.record.is_public,
                structure=Product.STANDALONE,
            )
            for item in new
        ]
        Product.objects.bulk_create(products)
        now = timezone.now()
        Product.objects.bulk_update(
            [
                Product(
                    id=product_id,
                    title=item.record.title,
                    description=item.record.description,
                    product_class_id=self._class_id(item.record.product_class),
                    is_public=item.record.is_public,
                    date_updated=now,
                )
                for item, product_id in changed
            ],
            ["title", "description", "product_class", "is_public", "date_updated"],
        )
        touched = [(item, p.pk) for item, p in zip(new, products, strict=True)] + changed
        self._write_categories(touched, changed)
        self._write_stockrecords(touched)

        synced_at = timezone.now()
        SyncedProduct.objects.bulk_create(
            [
                SyncedProduct(
                    product_id=product_id,
                    source=self.source,
                    fingerprint=item.fingerprint,
                    synced_at=synced_at,
                    last_run_id=self.run_id,
                    last_position=item.position,
                )
                for item, product_id in touched + unchanged
            ],
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["source", "fingerprint", "synced_at", "last_run_id", "last_position"],
        )
        result.created += len(new)
        result.updated += len(changed)
        result.unchanged += len(unchanged)
        result.product_ids.extend(product_id for _, product_id in touched)

    def _claim_skus(self, items, fail):
        """A check that fails an item whose (partner, partner_sku) belongs to another product
        or to an earlier item of the batch, and else claims its SKUs; True if it may be written."""
        wanted = {
            (self._partner_id(sr.partner), sr.partner_sku)
            for item in items
            for sr in item.record.stockrecords
        }
        owners = {}
        if wanted:
            rows = StockRecord.objects.filter(
                partner_sku__in={sku for _, sku in wanted},
                partner_id__in={partner for partner, _ in wanted},
            ).values_list("partner_id", "partner_sku", "product__upc")
            owners = {(partner, sku): upc for partner, sku, upc in rows}
        claimed: dict[tuple[int, str], str] = {}

        def allowed(item: ValidItem) -> bool:
            for sr in item.record.stockrecords:
                key = (self._partner_id(sr.partner), sr.partner_sku)
                owner = claimed.get(key) or owners.get(key)
                if owner is not None and owner != item.record.upc:
                    fail(
                        item,
                        "stockrecords.partner_sku",
                        f"stockrecords.partner_sku: {sr.partner_sku!r} of {sr.partner!r} "
                        f"belongs to product {owner!r}",
                    )
                    return False
            for sr in item.record.stockrecords:
                claimed[(self._partner_id(sr.partner), sr.partner_sku)] = item.record.upc
            return True

        return allowed

    def _write_categories(self, touched, changed) -> None:
        ProductCategory.objects.filter(product_id__in=[pid for _, pid in changed]).delete()
        ProductCategory.objects.bulk_create(
            [
                ProductCategory(product_id=product_id, category_id=category_id)
                for item, product_id in touched
                for category_id in dict.fromkeys(
                    self._category_id(path) for path in item.record.categories
                )
            ]
        )

    def _write_stockrecords(self, touched) -> None:
        """Make each product's stock records of the partners its item names match the item."""
        keep = {
            (product_id, self._partner_id(sr.partner), sr.partner_sku)
            for item, product_id in touched
            for sr in item.record.stockrecords
        }
        scope = Q()
        for item, product_id in touched:
            partners = {self._partner_id(sr.partner) for sr in item.record.stockrecords}
            if partners:
                scope |= Q(product_id=product_id, partner_id__in=partners)
        if scope:
            stale = [
                pk
                for pk, product_id, partner_id, sku in StockRecord.objects.filter(
                    scope
                ).values_list("pk", "product_id", "partner_id", "partner_sku")
                if (product_id, partner_id, sku) not in keep
            ]
            StockRecord.objects.filter(pk__in=stale).delete()
        StockRecord.objects.bulk_create(
            [
                StockRecord(
                    product_id=product_id,
                    partner_id=self._partner_id(sr.partner),
                    partner_sku=sr.partner_sku,
                    price=sr.price,
                    price_currency=sr.currency or self.default_currency,
                    num_in_stock=sr.num_in_stock,
                )
                for item, product_id in touched
                for sr in item.record.stockrecords
            ],
            update_conflicts=True,
            unique_fields=["partner", "partner_sku"],
            update_fields=["product", "price", "price_currency", "num_in_stock", "date_updated"],
        )
