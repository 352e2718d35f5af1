"""Drift: a digest of what the sync wrote to a product, computed and compared in SQL in bulk."""

import functools

from django.db import connection, transaction
from oscar.core.loading import get_model

from productsync.models import SyncedProduct
from productsync.sql import quoted_names

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
MultiOption = ProductAttributeValue.value_multi_option.through

# What a digest covers: the fields the sync writes back when someone else changed them.
# Never num_in_stock nor num_allocated, which orders change (a shipped unit put back in
# stock would be sold twice), nor timestamps. A product's digest also lists its children,
# so a deleted child shows. Columns by attname.
PRODUCT_FIELDS = (
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


def _column(model, alias: str, attname: str) -> str:
    return f"{alias}.{quoted_names(model, connection.vendor)[attname]}"


def _table(model) -> str:
    return quoted_names(model, connection.vendor)[""]


def _joined(model, alias: str, names) -> str:
    return " || ':' || ".join(
        f"COALESCE(CAST({_column(model, alias, n)} AS TEXT), '~')" for n in names
    )


def _rows(model, alias, expression, key, vendor, owner=Product, owner_alias="p") -> str:
    """The sorted list of expression over model's rows whose key points at the owner's row
    (the product p)."""
    rows = f"FROM {_table(model)} {alias} WHERE {_column(model, alias, key)} = "
    rows += _column(owner, owner_alias, "id")
    if vendor == "postgresql":
        return f"COALESCE((SELECT string_agg({expression}, ',' ORDER BY {expression}) {rows}), '')"
    # SQLite (before 3.44) has no ORDER BY in an aggregate; its group_concat takes the rows
    # of a subquery in the subquery's order.
    return (
        f"COALESCE((SELECT group_concat(e, ',') FROM (SELECT {expression} AS e {rows} "
        "ORDER BY e)), '')"
    )


@functools.lru_cache(maxsize=4)
def _parts(vendor: str) -> tuple[str, list[str]]:
    """What product p's digest covers, as SQL expressions: its stock records, and the rest
    (its fields, category links, attribute values and children)."""
    options = _rows(
        MultiOption,
        "m",
        _joined(MultiOption, "m", ["attributeoption_id"]),
        "productattributevalue_id",
        vendor,
        ProductAttributeValue,
        "v",
    )
    stock = _rows(StockRecord, "sr", _joined(StockRecord, "sr", STOCK_FIELDS), "product_id", vendor)
    rest = [
        _joined(Product, "p", PRODUCT_FIELDS),
        _rows(
            ProductCategory,
            "pc",
            _joined(ProductCategory, "pc", ["category_id"]),
            "product_id",
            vendor,
        ),
        _rows(
            ProductAttributeValue,
            "v",
            _joined(ProductAttributeValue, "v", VALUE_FIELDS) + f" || ':' || {options}",
            "product_id",
            vendor,
        ),
        _rows(Product, "c", _joined(Product, "c", ["id"]), "parent_id", vendor),
    ]
    return stock, rest


def _half(expression: str) -> str:
    return f"SUBSTR(MD5({expression}), 1, 16)"


def _digest(vendor: str) -> str:
    """The digest of product p's synced state, as an SQL expression: 16 hex digits of the
    rest, then 16 of its stock records, so that a stock file stamps the second half alone
    and leaves an earlier edit of the rest to be seen."""
    stock, rest = _parts(vendor)
    return f"{_half(_concat(rest))} || {_half(stock)}"


def _concat(parts: list[str]) -> str:
    return " || '|' || ".join(parts)


def _in(column: str, ids: list[int]) -> tuple[str, list]:
    """SQL: column is one of these ids (on PostgreSQL one array: no placeholders to fill)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [ids]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", ids


def _members(ids: list[int]) -> tuple[str, list]:
    """SQL selecting the products of these units (the units and their children) as p. On
    PostgreSQL the ids of both, found by two index scans (an OR of the two lists is a scan of
    the whole table); on SQLite an OR of two lists, which it reads by the two indexes."""
    pid, parent = _column(Product, "p", "id"), _column(Product, "p", "parent_id")
    if connection.vendor == "postgresql":
        c_id, c_parent = _column(Product, "c", "id"), _column(Product, "c", "parent_id")
        return (
            f"{pid} IN (SELECT unnest(%s::bigint[]) UNION ALL SELECT {c_id} FROM "
            f"{_table(Product)} c WHERE {c_parent} = ANY(%s::bigint[]))",
            [ids, ids],
        )
    marks = ", ".join(["%s"] * len(ids))
    return f"({pid} IN ({marks}) OR {parent} IN ({marks}))", [*ids, *ids]


def drift_stamp(unit_ids, children: bool = True, stock: bool = False) -> None:
    """Record the state the sync just wrote to these products and their children (without
    children: to these products only, as after a change of their own fields or stock
    records, which no other product's digest covers; with stock: of their stock records
    only, the rest as it was recorded, drifted or not)."""
    ids = list(unit_ids)
    if not ids:
        return
    s = _table(SyncedProduct)
    product_id = _column(SyncedProduct, s, "product_id")
    state_column = quoted_names(SyncedProduct, connection.vendor)["state"]
    digest = _digest(connection.vendor)
    if stock:
        kept = f"SUBSTR({_column(SyncedProduct, s, 'state')}, 1, 16)"
        digest = f"{kept} || {_half(_parts(connection.vendor)[0])}"
    state = (
        f"UPDATE {s} SET {state_column} = (SELECT {digest} FROM "
        f"{_table(Product)} p WHERE {_column(Product, 'p', 'id')} = {product_id}) WHERE "
    )
    with connection.cursor() as cursor:
        if not children:
            where, params = _in(product_id, ids)
            cursor.execute(f"{state}{where}", params)
            return
        where, params = _members(ids)
        cursor.execute(
            f"{state}{product_id} IN (SELECT {_column(Product, 'p', 'id')} FROM "
            f"{_table(Product)} p WHERE {where})",
            params,
        )


def drift_units(unit_ids, children: bool = True) -> set[int]:
    """The units (by product id) of which a product differs from what the sync last wrote:
    edited since by anyone, a stock record, attribute value, category link or child changed,
    added or removed. Without children: those of these products that differ."""
    ids = list(unit_ids)
    if not ids:
        return set()
    if children:
        # By each member's comparison in its row, not by a filter on the join: PostgreSQL
        # hashes the whole product table to apply that filter.
        return {unit for unit, (_, drifted) in drift_members(ids).items() if drifted}
    digest = _digest(connection.vendor)
    p_id = _column(Product, "p", "id")
    where, params = _in(p_id, ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {p_id} FROM {_table(SyncedProduct)} s JOIN "
            f"{_table(Product)} p ON {p_id} = {_column(SyncedProduct, 's', 'product_id')} "
            f"WHERE {where} AND {_column(SyncedProduct, 's', 'state')} <> {digest}",
            params,
        )
        return {pk for (pk,) in cursor.fetchall()}


def drift_members(unit_ids) -> dict[int, tuple[list[int], bool]]:
    """By unit: the ids of its synced products (itself and its children) and whether one of
    them has drifted (see drift_units)."""
    ids = list(unit_ids)
    if not ids:
        return {}
    digest = _digest(connection.vendor)
    where, params = _members(ids)
    p_id, parent = _column(Product, "p", "id"), _column(Product, "p", "parent_id")
    out: dict[int, tuple[list[int], bool]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE({parent}, {p_id}), {p_id}, CASE WHEN "
            f"{_column(SyncedProduct, 's', 'state')} = {digest} THEN 0 ELSE 1 END FROM "
            f"{_table(SyncedProduct)} s JOIN {_table(Product)} p ON {p_id} = "
            f"{_column(SyncedProduct, 's', 'product_id')} WHERE {where}",
            params,
        )
        for unit, member, drifted in cursor.fetchall():
            members, before = out.get(unit, ([], False))
            members.append(member)
            out[unit] = (members, before or bool(drifted))
    return out


def drift_in_source(source: str, run_id: int) -> bool:
    """Whether a product that run wrote or found unchanged for source has drifted since."""
    digest = _digest(connection.vendor)
    s = SyncedProduct
    p_id = _column(Product, "p", "id")
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Outside a run's session settings (no JIT: see services.locks), once per run.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"SELECT 1 FROM {_table(s)} s JOIN {_table(Product)} p ON {p_id} = "
            f"{_column(s, 's', 'product_id')} WHERE {_column(s, 's', 'source')} = %s AND "
            f"{_column(s, 's', 'last_run_id')} = %s AND {_column(s, 's', 'state')} <> {digest} "
            "LIMIT 1",
            [source, run_id],
        )
        return cursor.fetchone() is not None
