"""The only Oscar-aware module: upserts one batch of validated items with bulk queries."""

import functools
import sqlite3
from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.utils import timezone
from oscar.core.loading import get_class, get_model
from oscar.core.utils import slugify

from productsync.models import SyncedProduct
from productsync.records import BatchResult, ItemFailure, ValidItem, payload_dump

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


_PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)


def _is_plain(field) -> bool:
    """Whether str/int/bool/None values of field go to the driver unchanged, as the ORM would
    send them (a subclass that overrides the preparation, like Oscar's NullCharField, is not)."""
    if isinstance(field, models.ForeignKey):
        # A key to an auto-increment id: an int the ORM checks only on MySQL.
        target = field.target_field
        return isinstance(target, models.AutoField) or _is_plain(target)
    base = next((b for b in _PLAIN_FIELDS if isinstance(field, b)), None)
    return base is not None and all(
        getattr(type(field), name) is getattr(base, name)
        for name in ("get_prep_value", "get_db_prep_value", "get_db_prep_save")
    )


def _prepared(rows: list, preps: list, conn) -> list:
    """rows with the values of the fields that need it passed through get_db_prep_save."""
    if not preps:
        return rows
    rows = [list(row) for row in rows]
    for row in rows:
        for i, prep in preps:
            row[i] = prep(row[i], conn)
    return rows


@functools.lru_cache(maxsize=64)
def _insert_plan(model, fields: tuple, returning, conflict: tuple, update: tuple, vendor: str):
    """The SQL of insert_rows and what to prepare per value, worked out once per shape."""
    opts = model._meta
    quote = connection.ops.quote_name
    given = [opts.get_field(name) for name in fields]
    others = [f for f in opts.concrete_fields if not f.primary_key and f.attname not in fields]
    columns = [f.column for f in given + others]
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(map(quote, columns))}) VALUES "
    tail = ""
    if conflict:
        names = [quote(opts.get_field(n).column) for n in conflict]
        sets = [
            f"{quote(c)} = EXCLUDED.{quote(c)}" for c in (opts.get_field(n).column for n in update)
        ]
        tail += f" ON CONFLICT ({', '.join(names)}) DO UPDATE SET {', '.join(sets)}"
    if returning:
        tail += f" RETURNING {quote(opts.get_field(returning).column)}"
    preps = [(i, f.get_db_prep_save) for i, f in enumerate(given) if not _is_plain(f)]
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return head, placeholder, tail, others, preps


def insert_rows(
    model,
    fields: list[str],
    rows: list[tuple],
    *,
    returning: str | None = None,
    conflict: list[str] | None = None,
    update: list[str] | None = None,
) -> list:
    """INSERT rows (tuples of the values of fields, by attname) with one statement per
    max_query_params, through the driver: what bulk_create sends, without its per-object
    model instances and per-value compilation. Every other concrete field gets its default
    (auto_now and auto_now_add: now). With conflict and update, an upsert (ON CONFLICT ...
    DO UPDATE, same syntax on SQLite and PostgreSQL); with returning, the values of that
    column, in the order of rows."""
    if not rows:
        return []
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per value
    head, placeholder, tail, others, preps = _insert_plan(
        model, tuple(fields), returning, tuple(conflict or ()), tuple(update or ()), conn.vendor
    )
    now = timezone.now()
    defaults = tuple(
        f.get_db_prep_save(
            now
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
            else f.get_default(),
            conn,
        )
        for f in others
    )
    rows = _prepared(rows, preps, conn)
    per_statement = len(rows)
    if conn.features.max_query_params:
        per_statement = max(1, conn.features.max_query_params // (len(fields) + len(others)))
    out = []
    with conn.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [value for row in chunk for value in (*row, *defaults)]
            cursor.execute(head + ", ".join([placeholder] * len(chunk)) + tail, params)
            if returning:
                out.extend(value for (value,) in cursor.fetchall())
    return out


def update_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """UPDATE the rows (tuples of the primary key, then the values of fields by attname) with
    one statement per max_query_params, joining a VALUES list: what bulk_update writes, without
    its CASE WHEN per row and field (its compilation grows with the square of the batch)."""
    if not rows:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    opts = model._meta
    quote = conn.ops.quote_name
    given = [opts.pk, *(opts.get_field(name) for name in fields)]
    preps = [(i, f.get_db_prep_save) for i, f in enumerate(given) if not _is_plain(f)]
    rows = _prepared(rows, preps, conn)
    names = [f"c{i}" for i in range(len(given))]
    # PostgreSQL types a VALUES list from its literals: cast the first row to the columns'
    # types. SQLite needs no casts (and a CAST would change a datetime's text affinity).
    casts = [f.cast_db_type(conn) if conn.vendor == "postgresql" else None for f in given]
    first = "(" + ", ".join("%s" if c is None else f"CAST(%s AS {c})" for c in casts) + ")"
    other = "(" + ", ".join(["%s"] * len(given)) + ")"
    table = quote(opts.db_table)
    sets = ", ".join(
        f"{quote(f.column)} = v.{n}" for f, n in zip(given[1:], names[1:], strict=True)
    )
    per_statement = len(rows)
    if conn.features.max_query_params:
        per_statement = max(1, conn.features.max_query_params // len(given))
    with conn.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([first] + [other] * (len(chunk) - 1))
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {values}) UPDATE {table} SET {sets} "
                f"FROM v WHERE {table}.{quote(opts.pk.column)} = v.c0",
                [value for row in chunk for value in row],
            )


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
                ItemFailure(
                    item.position,
                    item.record.upc,
                    message,
                    payload_dump(item.record.model_dump(mode="json")),
                    field,
                )
            )

        first_seen: dict[str, ValidItem] = {}
        for item in items:
            if item.record.upc in first_seen:
                seen = first_seen[item.record.upc].position
                fail(item, "upc", f"upc: duplicate of the item at position {seen}")
            else:
                first_seen[item.record.upc] = item
        items = list(first_seen.values())
        existing = {
            row["upc"]: row
            for row in Product.objects.filter(upc__in=first_seen).values(
                "id",
                "upc",
                "date_updated",
                "productsync_state__fingerprint",
                "productsync_state__synced_at",
                "productsync_state__last_run_id",
                "productsync_state__last_position",
            )
        }

        new: list[ValidItem] = []
        changed: list[tuple[ValidItem, int]] = []
        unchanged: list[tuple[ValidItem, int]] = []
        for item in items:
            row = existing.get(item.record.upc)
            if row is None:
                new.append(item)
            elif (
                row["productsync_state__last_run_id"] == self.run_id
                and row["productsync_state__last_position"] != item.position
            ):
                seen = row["productsync_state__last_position"]
                fail(item, "upc", f"upc: duplicate of the item at position {seen}")
            elif (
                row["productsync_state__fingerprint"] == item.fingerprint
                and row["date_updated"] <= row["productsync_state__synced_at"]
            ):
                unchanged.append((item, row["id"]))
            else:
                changed.append((item, row["id"]))

        new, changed = self._claim_skus(new, changed, fail)

        new_ids = self._create_products(new)
        now = timezone.now()
        update_rows(
            Product,
            ["title", "description", "product_class_id", "is_public", "date_updated"],
            [
                (
                    product_id,
                    item.record.title,
                    item.record.description,
                    self._class_id(item.record.product_class),
                    item.record.is_public,
                    now,
                )
                for item, product_id in changed
            ],
        )
        touched = list(zip(new, new_ids, strict=True)) + changed
        self._write_categories(touched, changed)
        self._write_stockrecords(touched, changed)

        synced_at = timezone.now()
        state = ["source", "fingerprint", "synced_at", "last_run_id", "last_position"]
        insert_rows(
            SyncedProduct,
            ["product_id", *state],
            [
                (product_id, self.source, item.fingerprint, synced_at, self.run_id, item.position)
                for item, product_id in touched + unchanged
            ],
            conflict=["product_id"],
            update=state,
        )
        result.created += len(new)
        result.updated += len(changed)
        result.unchanged += len(unchanged)
        result.product_ids.extend(product_id for _, product_id in touched)

    def _create_products(self, new: list[ValidItem]) -> list[int]:
        """Insert the products of new items as standalone products; return their ids."""
        return insert_rows(
            Product,
            ["upc", "title", "slug", "description", "product_class_id", "is_public", "structure"],
            [
                (
                    item.record.upc,
                    item.record.title,
                    slugify(item.record.title),
                    item.record.description,
                    self._class_id(item.record.product_class),
                    item.record.is_public,
                    Product.STANDALONE,
                )
                for item in new
            ],
            returning="id",
        )

    def _claim_skus(self, new, changed, fail):
        """Fail the items whose (partner, partner_sku) belongs to another product or to an
        earlier item of the batch; return the items that may be written."""
        wanted = {
            (self._partner_id(sr.partner), sr.partner_sku)
            for item in new + [item for item, _ in changed]
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

        return [i for i in new if allowed(i)], [(i, pid) for i, pid in changed if allowed(i)]

    def _write_categories(self, touched, changed) -> None:
        ProductCategory.objects.filter(product_id__in=[pid for _, pid in changed]).delete()
        insert_rows(
            ProductCategory,
            ["product_id", "category_id"],
            [
                (product_id, category_id)
                for item, product_id in touched
                for category_id in dict.fromkeys(
                    self._category_id(path) for path in item.record.categories
                )
            ],
        )

    def _stale_stockrecords(self, changed, keep: set) -> list[int]:
        """Keys of the stock records of changed products, of the partners their items name,
        that the items no longer list. Products created by this batch have none yet; one
        query by product id, filtered here (an OR per product overflows SQLite's expression
        depth at a thousand products)."""
        partners = {
            product_id: {self._partner_id(sr.partner) for sr in item.record.stockrecords}
            for item, product_id in changed
        }
        if not any(partners.values()):
            return []
        rows = StockRecord.objects.filter(
            product_id__in=[pid for pid, named in partners.items() if named]
        ).values_list("pk", "product_id", "partner_id", "partner_sku")
        return [
            pk
            for pk, product_id, partner_id, sku in rows
            if partner_id in partners[product_id] and (product_id, partner_id, sku) not in keep
        ]

    def _write_stockrecords(self, touched, changed) -> None:
        """Make each product's stock records of the partners its item names match the item."""
        keep = {
            (product_id, self._partner_id(sr.partner), sr.partner_sku)
            for item, product_id in touched
            for sr in item.record.stockrecords
        }
        stale = self._stale_stockrecords(changed, keep)
        if stale:
            StockRecord.objects.filter(pk__in=stale).delete()
        insert_rows(
            StockRecord,
            ["product_id", "partner_id", "partner_sku", "price", "price_currency", "num_in_stock"],
            [
                (
                    product_id,
                    self._partner_id(sr.partner),
                    sr.partner_sku,
                    sr.price,
                    sr.currency or self.default_currency,
                    sr.num_in_stock,
                )
                for item, product_id in touched
                for sr in item.record.stockrecords
            ],
            conflict=["partner_id", "partner_sku"],
            update=["product_id", "price", "price_currency", "num_in_stock", "date_updated"],
        )
