"""Partial items written: the fields they give of existing products and stock records, no more."""

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.changes import stock_field
from productsync.models import SyncItem
from productsync.outcomes import BatchResult, ItemFailure, ItemOutcome
from productsync.partial import PartialItem, StockChange, StockItem
from productsync.sql import quoted_names, update_given
from productsync.writer.capture import sync_writes
from productsync.writer.catalogue import key_select
from productsync.writer.search import search_index_update
from productsync.writer.stock import FED_AS, STOCK_VALUES, price_text, stockrecords_by_sku

Product = get_model("catalogue", "Product")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")

PRODUCT_COLUMNS = ("title", "description", "is_public")
Outcome = SyncItem.Outcome


def _same(current, new) -> bool:
    """Equal as stored: SQLite hands a decimal column back as a float or an int."""
    if isinstance(new, Decimal) and current is not None and not isinstance(current, Decimal):
        return Decimal(str(current)) == new
    return current == new


class PartialWriter:
    """Writes the batches of a partial run; caches the partners' ids."""

    def __init__(self) -> None:
        self._partners: dict[str, int] = {}
        # outcomes: record every item's outcome (dry runs); changes: the changed fields of
        # updated items, named as the catalogue writer names them. Set before each batch.
        self.outcomes = False
        self.changes = False

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
        values); an unknown product or stock record fails its item alone. looked_up: unused
        (a partial batch skips no unchanged items before it is written), there so that every
        writer is called alike."""
        with sync_writes():
            if _stock_only(items):
                self._write_stock(items, result)
            else:
                self._write_partial(items, result)

    def _write_partial(self, items: list[PartialItem], result: BatchResult) -> None:
        items = [
            PartialItem(i.position, i.record, i.payload) if type(i) is StockItem else i
            for i in items
        ]
        current = self._current(items)
        changes = _Changes()
        for item in items:
            rows = _item_rows(item, current, result)
            if rows is None:
                continue
            diff = changes.add(current.products.get(item.record.upc), item.record.values, rows)
            if diff:
                result.updated += 1
            else:
                result.unchanged += 1
            self._outcome(result, item, diff)
        _changes_write(changes, result)

    def _outcome(self, result: BatchResult, item, diff: list) -> None:
        """Record what the item did as the catalogue writer does: an updated item when its
        changes are asked for, and every item in a dry run."""
        if not self.outcomes and not (diff and self.changes):
            return
        outcome = Outcome.UPDATED if diff else Outcome.UNCHANGED
        codes = tuple(change.partner_sku for change in item.record.stock)
        changes = diff if diff and self.changes else None
        result.outcomes.append(
            ItemOutcome(item.position, item.record.upc, outcome, changes, codes=codes)
        )

    def _current(self, items: list[PartialItem]) -> "_Current":
        """What the catalogue holds of the products and stock records the items name."""
        products = _products({item.record.upc for item in items if item.record.upc})
        partners = self._partner_ids({c.partner for item in items for c in item.record.stock})
        stock = stockrecords_by_sku(
            {
                (partners[c.partner], c.partner_sku)
                for item in items
                for c in item.record.stock
                if c.partner in partners
            }
        )
        return _Current(products, partners, stock)

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
            found = {row[0]: row[1:] for row in cursor.fetchall()}
        touched, failed = set(), 0
        for index, item in enumerate(items):
            if index not in found:
                self._outcome(result, item, [])
                continue
            product_id, *old = found[index]
            if product_id is None:
                message = _no_stock_record("partner_sku", item.partner, item.partner_sku)
                result.failures.append(
                    ItemFailure(item.position, "", message, item.raw(), "partner_sku")
                )
                failed += 1
            else:
                touched.add(product_id)
                (change,) = item.record.stock
                old = dict(zip(STOCK_VALUES, old, strict=True))
                diff = {k: v for k, v in change.values.items() if not _same(old[k], v)}
                self._outcome(result, item, _change_rows(old, diff, change))
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


class _Current(NamedTuple):
    products: dict[str, dict]  # by upc
    partners: dict[str, int]  # by name
    stock: dict[tuple[int, str], dict]  # by (partner id, partner_sku)


def _item_rows(item: PartialItem, current: _Current, result: BatchResult) -> list | None:
    """The stock records the item changes, with their new values; None when the item names
    an unknown product or stock record, or another product's stock record (it fails)."""
    record = item.record
    product = current.products.get(record.upc) if record.upc else None
    if record.upc and product is None:
        return _fail(item, result, "upc", f"upc: no product with upc {record.upc!r}")
    rows = []
    for i, change in enumerate(record.stock):
        where = f"stockrecords[{i}].partner_sku" if record.upc else "partner_sku"
        row = current.stock.get((current.partners.get(change.partner), change.partner_sku))
        if row is None:
            message = _no_stock_record(where, change.partner, change.partner_sku)
            return _fail(item, result, where, message)
        if product is not None and row["product_id"] != product["id"]:
            return _fail(
                item,
                result,
                where,
                f"{where}: the stock record {change.partner_sku!r} of {change.partner!r} "
                f"belongs to another product than {record.upc!r}",
            )
        rows.append((row, change))
    return rows


def _fail(item: PartialItem, result: BatchResult, field: str, message: str) -> None:
    result.failures.append(ItemFailure(item.position, item.record.upc, message, item.raw(), field))


@dataclass
class _Changes:
    """What a batch changes: values by product id and by stock record id, and the products
    touched (their own fields or their stock records)."""

    products: dict[int, dict] = field(default_factory=dict)
    stock: dict[int, dict] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)

    def add(self, product: dict | None, values: dict, rows: list) -> list:
        """Add an item's changes (values of its product, if any; rows: stock records and
        their StockChange); the rows read are changed too, so a later item sees them.
        Return what changed: [field, old, new]."""
        out = []
        if product is not None:
            out += self._diff(product, values, self.products, product["id"], product["id"])
        for row, change in rows:
            out += self._diff(row, change.values, self.stock, row["id"], row["product_id"], change)
        return out

    def _diff(
        self, current: dict, values: dict, into: dict, key: int, product_id: int, change=None
    ) -> list:
        diff = {k: v for k, v in values.items() if not _same(current[k], v)}
        rows = _change_rows(current, diff, change)
        if diff:
            current.update(diff)
            into.setdefault(key, {}).update(diff)
            self.touched.add(product_id)
        return rows


def _shown(name: str, value):
    """A value as writer.snapshot reads it: a price as its text with its decimal places."""
    if name == "price":
        return price_text(value)
    if name == "is_public" and value is not None:
        return bool(value)
    return value


def _change_rows(old: dict, diff: dict, change: StockChange | None = None) -> list:
    """[field, old, new] of the values in diff (old: the values before), named as the
    catalogue writer names them; change: the stock record they are of, if any."""
    out = []
    for name, new in diff.items():
        field = FED_AS.get(name, name)  # a stock value as the feed names it
        if change is not None:
            field = stock_field(change.partner, change.partner_sku, field)
        out.append([field, _shown(name, old[name]), _shown(name, new)])
    return out


def _changes_write(changes: _Changes, result: BatchResult) -> None:
    # A product someone edited before this run keeps its count of edits: the next run of
    # the full feed repairs it.
    now = timezone.now()
    update_given(
        Product,
        [*PRODUCT_COLUMNS, "date_updated"],
        [
            (pk, *(values.get(c) for c in PRODUCT_COLUMNS), now)
            for pk, values in changes.products.items()
        ],
    )
    update_given(
        StockRecord,
        [*STOCK_VALUES, "date_updated"],
        [(pk, *(values.get(c) for c in STOCK_VALUES), now) for pk, values in changes.stock.items()],
    )
    _written(sorted(changes.touched), result)


def _no_stock_record(where: str, partner: str, sku: str) -> str:
    return f"{where}: no stock record of partner {partner!r} with partner_sku {sku!r}"


def _written(touched: list[int], result: BatchResult) -> None:
    # What a partial run writes is the sync's own (sync_writes): the full feed's next run
    # does not take it for someone else's edit.
    result.product_ids.extend(touched)
    if touched:
        transaction.on_commit(partial(search_index_update, touched), robust=True)


@functools.lru_cache(maxsize=1)
def _stock_update_sql() -> str:
    """The rows (their index in the batch, partner id, partner_sku, price, currency,
    num_in_stock; null: left as it is) as arrays, then date_updated. Returns the index,
    product and values before (price, currency, num_in_stock) of each row that changed a
    stock record, and each that matched none (product null); a row that matched one and
    changed nothing is not returned. Each row finds its stock record by the (partner,
    partner_sku) unique index, once (a lateral lookup): a join let the planner hash the
    whole table, twice a batch, when its statistics were stale."""
    sr = quoted_names(StockRecord, "postgresql")
    key = f"s.{sr['partner_id']} = t.partner_id AND s.{sr['partner_sku']} = t.sku"
    given = [("price", "price"), ("currency", "price_currency"), ("num", "num_in_stock")]
    changes = " OR ".join(
        f"(t.{new} IS NOT NULL AND t.{new} IS DISTINCT FROM t.old_{new})" for new, _ in given
    )
    sets = ", ".join(f"{sr[old]} = COALESCE(t.{new}, s.{sr[old]})" for new, old in given)
    olds = ", ".join(f"s.{sr[old]}" for _, old in given)
    return (
        "WITH t AS (SELECT t.*, o.sid, o.old_price, o.old_currency, o.old_num "
        "FROM unnest(%s::int[], %s::int[], %s::text[], %s::numeric[], %s::text[], "
        "%s::int[]) AS t(i, partner_id, sku, price, currency, num) "
        f"LEFT JOIN LATERAL (SELECT s.{sr['id']}, {olds} FROM {sr['']} s WHERE {key}) "
        "AS o(sid, old_price, old_currency, old_num) ON true), "
        f"u AS (UPDATE {sr['']} s SET {sets}, {sr['date_updated']} = %s FROM t WHERE "
        f"s.{sr['id']} = t.sid AND ({changes}) RETURNING t.i, s.{sr['product_id']} AS "
        "product_id) SELECT t.i, u.product_id, t.old_price, t.old_currency, t.old_num "
        "FROM t LEFT JOIN u ON u.i = t.i WHERE t.sid IS NULL OR u.i IS NOT NULL"
    )


def _products(keys: set[str]) -> dict[str, dict]:
    """The current values of the products of these keys, by key."""
    names = ["id", "upc", *PRODUCT_COLUMNS]
    p = quoted_names(Product, connection.vendor)
    columns = ", ".join(["{key}", *(f"p.{p[n]}" for n in names)])
    rows = key_select(columns, keys)
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}
