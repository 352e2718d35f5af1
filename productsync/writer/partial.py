"""Partial items written: the fields they give of existing products and stock records, no more."""

import functools
from decimal import Decimal
from functools import partial

from django.db import connection, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.outcomes import BatchResult, ItemFailure
from productsync.partial import PartialItem, StockItem
from productsync.sql import quoted_names, select_rows, update_given
from productsync.writer.drift import drift_stamp, drift_units
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

    def write(self, items: list[PartialItem], result: BatchResult, looked_up=None) -> None:
        """Change what each item gives, in feed order (a later item sees an earlier one's
        values); an unknown product or stock record fails its item alone."""
        if _stock_only(items):
            self._write_stock(items, result)
            return
        items = [
            PartialItem(i.position, i.record, i.payload) if type(i) is StockItem else i
            for i in items
        ]

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
                    problem = (where, _no_stock_record(where, change.partner, change.partner_sku))
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
        # A product edited by someone before this run keeps the digest of what the sync
        # wrote before, but for its stock records: the next full sync repairs it.
        drifted = drift_units(product_changes, children=False)
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
        restamped = set(product_changes) - drifted
        _written(sorted(touched), result, restamped)

    def _write_stock(self, items: list[StockItem], result: BatchResult) -> None:
        """PostgreSQL, a batch of stock rows with no key twice: every stock record updated
        in one statement from arrays of the rows' values, which says which rows matched no
        stock record and which changed one."""
        partners = self._partner_ids({item.partner for item in items})
        with connection.cursor() as cursor:
            cursor.execute(
                _stock_update_sql(),
                [
                    list(range(len(items))),
                    [partners.get(item.partner) for item in items],
                    [item.partner_sku for item in items],
                    [item.price for item in items],
                    [item.currency for item in items],
                    [item.num_in_stock for item in items],
                    timezone.now(),
                ],
            )
            found = dict(cursor.fetchall())
        touched, failed = set(), 0
        for index, product_id in found.items():
            item = items[index]
            if product_id is None:
                message = _no_stock_record("partner_sku", item.partner, item.partner_sku)
                result.failures.append(
                    ItemFailure(item.position, "", message, item.raw(), "partner_sku")
                )
                failed += 1
            else:
                touched.add(product_id)
        result.updated += len(found) - failed
        result.unchanged += len(items) - len(found)
        _written(sorted(touched), result)


def _stock_only(items: list) -> bool:
    """Whether a batch can take the stock-file statement: PostgreSQL, stock rows only, no
    stock record twice (the general path applies a later row over an earlier)."""
    return (
        connection.vendor == "postgresql"
        and all(type(item) is StockItem for item in items)
        and len({(item.partner, item.partner_sku) for item in items}) == len(items)
    )


def _no_stock_record(where: str, partner: str, sku: str) -> str:
    return f"{where}: no stock record of partner {partner!r} with partner_sku {sku!r}"


def _written(touched: list[int], result: BatchResult, restamped=frozenset()) -> None:
    # What a partial run writes is what the sync last wrote: the full feed's next sync
    # does not take it for someone else's edit. Only these products' digests cover it:
    # the restamped ones' whole digest, the others' stock records half.
    drift_stamp([pk for pk in touched if pk in restamped], children=False)
    drift_stamp([pk for pk in touched if pk not in restamped], children=False, stock=True)
    result.product_ids.extend(touched)
    if touched:
        transaction.on_commit(partial(search_index_update, touched), robust=True)


@functools.lru_cache(maxsize=1)
def _stock_update_sql() -> str:
    """The rows (their index in the batch, partner id, partner_sku, price, currency,
    num_in_stock; null: left as it is) as arrays, then date_updated. Returns the index and
    product of each row that changed a stock record, and each that matched none (product
    null); a row that matched one and changed nothing is not returned. Each row finds its
    stock record by the (partner, partner_sku) unique index, once: a join let the planner
    hash the whole table, twice a batch, when its statistics were stale."""
    sr = quoted_names(StockRecord, "postgresql")
    key = f"s.{sr['partner_id']} = t.partner_id AND s.{sr['partner_sku']} = t.sku"
    given = [("price", "price"), ("currency", "price_currency"), ("num", "num_in_stock")]
    changes = " OR ".join(
        f"(t.{new} IS NOT NULL AND t.{new} IS DISTINCT FROM s.{sr[old]})" for new, old in given
    )
    sets = ", ".join(f"{sr[old]} = COALESCE(t.{new}, s.{sr[old]})" for new, old in given)
    return (
        f"WITH t AS (SELECT t.*, (SELECT s.{sr['id']} FROM {sr['']} s WHERE {key}) AS sid "
        "FROM unnest(%s::int[], %s::int[], %s::text[], %s::numeric[], %s::text[], "
        "%s::int[]) AS t(i, partner_id, sku, price, currency, num)), "
        f"u AS (UPDATE {sr['']} s SET {sets}, {sr['date_updated']} = %s FROM t WHERE "
        f"s.{sr['id']} = t.sid AND ({changes}) RETURNING t.i, s.{sr['product_id']} AS "
        "product_id) SELECT t.i, u.product_id FROM t LEFT JOIN u ON u.i = t.i "
        "WHERE t.sid IS NULL OR u.i IS NOT NULL"
    )


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
