"""Partial items written: the fields they give of existing products and stock records, no more."""

from decimal import Decimal
from functools import partial

from django.db import connection, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.outcomes import BatchResult, ItemFailure
from productsync.partial import PartialItem
from productsync.sql import quoted_names, select_rows, update_given
from productsync.writer.drift import drift_stamp
from productsync.writer.search import search_index_update

Product = get_model("catalogue", "Product")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")

PRODUCT_COLUMNS = ("title", "description", "is_public")
STOCK_COLUMNS = ("price", "price_currency", "num_in_stock")


def _same(current, new) -> bool:
    """Equal as stored: SQLite hands a decimal column back as a float or an int."""
    if isinstance(new, Decimal) and current is not None and not isinstance(current, Decimal):
        return Decimal(str(current)) == new
    return current == new


class PartialWriter:
    """Writes the batches of a partial run; caches the partners' ids."""

    def __init__(self) -> None:
        self._partners: dict[str, int] = {}

    def forget(self) -> None:
        self._partners.clear()

    def _partner_ids(self, names: set[str]) -> dict[str, int]:
        missing = names - self._partners.keys()
        if missing:
            # Partner names are not unique: the oldest of a name, as the full sync picks it.
            rows = Partner.objects.filter(name__in=missing).order_by("-pk")
            self._partners.update(rows.values_list("name", "pk"))
        return {name: self._partners[name] for name in names if name in self._partners}

    def write(self, items: list[PartialItem], result: BatchResult) -> None:
        """Change what each item gives, in feed order (a later item sees an earlier one's
        values); an unknown product or stock record fails its item alone."""

        def fail(item: PartialItem, field: str, message: str) -> None:
            result.failures.append(
                ItemFailure(item.position, item.record.upc, message, item.raw(), field)
            )

        products = _products({item.record.upc for item in items if item.record.upc})
        partners = self._partner_ids({c.partner for item in items for c in item.record.stock})
        stock = _stockrecords(
            {
                (partners[c.partner], c.partner_sku)
                for item in items
                for c in item.record.stock
                if c.partner in partners
            }
        )
        product_changes: dict[int, dict] = {}
        stock_changes: dict[int, dict] = {}
        touched: set[int] = set()
        for item in items:
            record = item.record
            product = products.get(record.upc) if record.upc else None
            if record.upc and product is None:
                fail(item, "upc", f"upc: no product with upc {record.upc!r}")
                continue
            rows, problem = [], None
            for i, change in enumerate(record.stock):
                where = f"stockrecords[{i}].partner_sku" if record.upc else "partner_sku"
                row = stock.get((partners.get(change.partner), change.partner_sku))
                if row is None:
                    problem = (
                        where,
                        (
                            f"{where}: no stock record of partner {change.partner!r} with "
                            f"partner_sku {change.partner_sku!r}"
                        ),
                    )
                elif product is not None and row["product_id"] != product["id"]:
                    problem = (
                        where,
                        (
                            f"{where}: the stock record {change.partner_sku!r} of "
                            f"{change.partner!r} belongs to another product than {record.upc!r}"
                        ),
                    )
                if problem:
                    break
                rows.append((row, change.values))
            if problem:
                fail(item, *problem)
                continue
            changed = False
            if product is not None:
                diff = {k: v for k, v in record.values.items() if not _same(product[k], v)}
                if diff:
                    product.update(diff)
                    product_changes.setdefault(product["id"], {}).update(diff)
                    touched.add(product["id"])
                    changed = True
            for row, values in rows:
                diff = {k: v for k, v in values.items() if not _same(row[k], v)}
                if diff:
                    row.update(diff)
                    stock_changes.setdefault(row["id"], {}).update(diff)
                    touched.add(row["product_id"])
                    changed = True
            if changed:
                result.updated += 1
            else:
                result.unchanged += 1
        now = timezone.now()
        update_given(
            Product,
            [*PRODUCT_COLUMNS, "date_updated"],
            [
                (pk, *(values.get(c) for c in PRODUCT_COLUMNS), now)
                for pk, values in product_changes.items()
            ],
        )
        update_given(
            StockRecord,
            [*STOCK_COLUMNS, "date_updated"],
            [
                (pk, *(values.get(c) for c in STOCK_COLUMNS), now)
                for pk, values in stock_changes.items()
            ],
        )
        # What a partial run writes is what the sync last wrote: the full feed's next sync
        # does not take it for someone else's edit.
        drift_stamp(sorted(touched))
        result.product_ids.extend(sorted(touched))
        if touched:
            transaction.on_commit(partial(search_index_update, sorted(touched)), robust=True)


def _products(upcs: set[str]) -> dict[str, dict]:
    """The current values of the products of these UPCs."""
    if not upcs:
        return {}
    names = ["id", "upc", *PRODUCT_COLUMNS]
    p = quoted_names(Product, connection.vendor)
    sql = f"SELECT {', '.join(p[n] for n in names)} FROM {p['']} WHERE {p['upc']} IN ({{}})"
    rows = select_rows(sql, list(upcs))
    return {row[1]: dict(zip(names, row, strict=True)) for row in rows}


def _stockrecords(keys: set[tuple[int, str]]) -> dict[tuple[int, str], dict]:
    """The current values of the stock records of these (partner id, partner_sku)."""
    if not keys:
        return {}
    names = ["id", "product_id", "partner_id", "partner_sku", *STOCK_COLUMNS]
    sr = quoted_names(StockRecord, connection.vendor)
    sql = (
        f"SELECT {', '.join(sr[n] for n in names)} FROM {sr['']} WHERE "
        f"{sr['partner_sku']} IN ({{}}) AND {sr['partner_id']} IN ({{}})"
    )
    partners, skus = ({key[i] for key in keys} for i in (0, 1))
    rows = select_rows(sql, list(skus), list(partners))
    found = {(row[2], row[3]): dict(zip(names, row, strict=True)) for row in rows}
    return {key: row for key, row in found.items() if key in keys}
