"""Change capture: database triggers count, in each synced product's sync state (`edits`),
the changes anyone but the sync makes to what the sync writes (its fields, stock records,
category links, attribute values and children); the sync's own writes are marked so that
they do not count, and a repair subtracts the count it read, so that an edit committed
between that read and the repair is still counted, and repaired by the next run.

Row triggers: a TRUNCATE, or a session that disables triggers (session_replication_role =
replica), is not seen; a `--compare` run compares values and repairs those too."""

from contextlib import contextmanager

from django.db import connection, connections, transaction
from oscar.core.loading import get_model

from productsync.models import SyncedProduct
from productsync.sql import quoted_names

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
MultiOption = ProductAttributeValue.value_multi_option.through

# PostgreSQL: the transaction-local setting that marks the sync's own writes. SQLite: a row
# of this table, inserted and deleted within the sync's transaction (SQLite has one writer
# at a time, and no one else sees an uncommitted row).
SETTING = "productsync.writing"
MARKER_TABLE = "productsync_writing"

# What an edit is, by attname: a change of these columns (never num_in_stock nor
# num_allocated, which orders change, nor timestamps), a row moved to another product, or a
# row added or removed. drift.py's digest covers the same.
PRODUCT_FIELDS = (
    "upc",
    "title",
    "description",
    "is_public",
    "product_class_id",
    "structure",
    "parent_id",
)
STOCK_FIELDS = ("partner_id", "partner_sku", "price", "price_currency")
VALUE_FIELDS = (
    "attribute_id",
    "value_text",
    "value_integer",
    "value_boolean",
    "value_float",
    "value_richtext",
    "value_date",
    "value_datetime",
    "value_option_id",
)


@contextmanager
def sync_writes():
    """A transaction (or the caller's) in which the catalogue rows written on this
    connection are the sync's own, not edits. When the block raises, the caller's rollback
    undoes the mark with the writes. On PostgreSQL the mark of a transaction that ends at
    the block's or its caller's commit (a batch's) is left to end with it."""
    postgresql = connection.vendor == "postgresql"
    ends_with_commit = len(connection.atomic_blocks) <= 1
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if postgresql:
            cursor.execute(
                "SELECT current_setting(%s, true), set_config(%s, 'on', true)", [SETTING, SETTING]
            )
            before = cursor.fetchone()[0] or ""
        else:
            cursor.execute(f"INSERT INTO {MARKER_TABLE} DEFAULT VALUES")
            marker = cursor.lastrowid
        yield
        if not postgresql:  # never committed: no one else would count
            cursor.execute(f"DELETE FROM {MARKER_TABLE} WHERE id = %s", [marker])
        elif not ends_with_commit:
            cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, before])


def edits_settle(read: dict[int, int]) -> None:
    """The sync repaired these products: subtract the edits it read of each ({product id:
    count}) from their count, leaving the ones committed since."""
    rows = [(pk, count) for pk, count in read.items() if count]
    if not rows:
        return
    s = quoted_names(SyncedProduct, connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {s['']} SET {s['edits']} = {s['edits']} - d.n FROM "
                "unnest(%s::bigint[], %s::bigint[]) AS d(id, n) WHERE "
                f"{s['product_id']} = d.id",
                [[pk for pk, _ in rows], [n for _, n in rows]],
            )
            return
        cursor.executemany(
            f"UPDATE {s['']} SET {s['edits']} = {s['edits']} - %s WHERE {s['product_id']} = %s",
            [(n, pk) for pk, n in rows],
        )


def edits_in_source(source: str, run_id: int) -> bool:
    """Whether someone changed a product that run wrote or found unchanged for source."""
    return SyncedProduct.objects.filter(source=source, last_run_id=run_id).exclude(edits=0).exists()


def _changed(fields, vendor: str) -> str:
    differ = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{f} {differ} NEW.{f}" for f in fields)


def _triggers(vendor: str) -> list[tuple[str, str, str, str, str]]:
    """(name, table, event, condition, statement) of every trigger, over quoted names."""
    p, v = quoted_names(Product, vendor), quoted_names(ProductAttributeValue, vendor)
    mo, s = quoted_names(MultiOption, vendor), quoted_names(SyncedProduct, vendor)
    mark = f"UPDATE {s['']} SET {s['edits']} = {s['edits']} + 1 WHERE {s['product_id']} "
    option = mo["productattributevalue_id"]

    def value(row: str) -> str:  # a multi-option row's product: its attribute value's
        return f"(SELECT {v['product_id']} FROM {v['']} WHERE {v['id']} = {row}.{option})"

    parents = f"OLD.{p['parent_id']}, NEW.{p['parent_id']}"
    fields = [p[f] for f in PRODUCT_FIELDS]
    out = [
        ("product_edited", p[""], "UPDATE", _changed(fields, vendor),
         f"{mark}IN (NEW.{p['id']}, {parents})"),
        ("child_added", p[""], "INSERT", f"NEW.{p['parent_id']} IS NOT NULL",
         f"{mark}= NEW.{p['parent_id']}"),
        ("child_removed", p[""], "DELETE", f"OLD.{p['parent_id']} IS NOT NULL",
         f"{mark}= OLD.{p['parent_id']}"),
        ("multi_option_added", mo[""], "INSERT", "", f"{mark}= {value('NEW')}"),
        ("multi_option_removed", mo[""], "DELETE", "", f"{mark}= {value('OLD')}"),
    ]  # fmt: skip
    for name, model, columns in (
        ("stockrecord", StockRecord, ("product_id", *STOCK_FIELDS)),
        ("category_link", ProductCategory, ("product_id", "category_id")),
        ("attribute_value", ProductAttributeValue, ("product_id", *VALUE_FIELDS)),
    ):
        names = quoted_names(model, vendor)
        product = names["product_id"]
        out += [
            (f"{name}_added", names[""], "INSERT", "", f"{mark}= NEW.{product}"),
            (f"{name}_removed", names[""], "DELETE", "", f"{mark}= OLD.{product}"),
            (f"{name}_edited", names[""], "UPDATE", _changed([names[c] for c in columns], vendor),
             f"{mark}IN (OLD.{product}, NEW.{product})"),
        ]  # fmt: skip
    return out


def _not_writing(vendor: str) -> str:
    if vendor == "postgresql":
        return f"current_setting('{SETTING}', true) IS DISTINCT FROM 'on'"
    return f"NOT EXISTS (SELECT 1 FROM {MARKER_TABLE})"


def capture_install(using: str = "default") -> None:
    """Create the triggers and SQLite's marker table, when the sync state has its edits
    column (after every migrate: capture_remove took them away before it)."""
    db = connections[using]
    with db.cursor() as cursor:
        table = SyncedProduct._meta.db_table
        if table not in db.introspection.table_names(cursor):
            return
        columns = {c.name for c in db.introspection.get_table_description(cursor, table)}
        if "edits" not in columns:
            return
        if db.vendor != "postgresql":
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (id INTEGER PRIMARY KEY)")
        for name, on, event, condition, statement in _triggers(db.vendor):
            when = _not_writing(db.vendor) + (f" AND ({condition})" if condition else "")
            for sql in _trigger_sql(db.vendor, f"productsync_{name}", on, event, when, statement):
                cursor.execute(sql)


def capture_remove(using: str = "default") -> None:
    """Drop the triggers (before every migrate: SQLite cannot rebuild a table that a trigger
    names, and a migration may change a column they read)."""
    db = connections[using]
    with db.cursor() as cursor:
        tables = set(db.introspection.table_names(cursor))
        for name, on, *_ in _triggers(db.vendor):
            if db.vendor != "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS productsync_{name}")
            elif on.strip('"') in tables:
                cursor.execute(f"DROP TRIGGER IF EXISTS productsync_{name} ON {on}")


def _trigger_sql(vendor: str, name: str, table: str, event: str, when: str, body: str):
    if vendor == "postgresql":
        return [
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body}; RETURN NULL; END $$",
            f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW "
            f"WHEN ({when}) EXECUTE FUNCTION {name}()",
        ]
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} FOR EACH ROW "
        f"WHEN {when} BEGIN {body}; END"
    ]
