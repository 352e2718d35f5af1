"""Drift by comparing values (a `--compare` run): a digest of each product's synced state,
computed in SQL before and after the batch writes it; a unit whose digest the write
changed had drifted. Other runs know drift from change capture (capture.py)."""

import functools

from django.db import connection
from oscar.core.loading import get_model

from productsync.sql import quoted_names
from productsync.writer.capture import PRODUCT_FIELDS, STOCK_FIELDS, VALUE_FIELDS

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
MultiOption = ProductAttributeValue.value_multi_option.through


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
def _digest(vendor: str) -> str:
    """Product p's digest: its fields, stock records, category links, attribute values and
    children, as an SQL expression."""
    options = _rows(
        MultiOption,
        "m",
        _joined(MultiOption, "m", ["attributeoption_id"]),
        "productattributevalue_id",
        vendor,
        ProductAttributeValue,
        "v",
    )
    parts = [
        _rows(StockRecord, "sr", _joined(StockRecord, "sr", STOCK_FIELDS), "product_id", vendor),
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
    return "MD5(" + " || '|' || ".join(parts) + ")"


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


def unit_digests(unit_ids) -> dict[int, list[tuple[int, str]]]:
    """By unit (product id): the digest of each of its products (itself and its children),
    in id order, as the catalogue holds them now."""
    ids = list(unit_ids)
    if not ids:
        return {}
    where, params = _members(ids)
    p_id, parent = _column(Product, "p", "id"), _column(Product, "p", "parent_id")
    out: dict[int, list[tuple[int, str]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE({parent}, {p_id}), {p_id}, {_digest(connection.vendor)} FROM "
            f"{_table(Product)} p WHERE {where} ORDER BY {p_id}",
            params,
        )
        for unit, member, digest in cursor.fetchall():
            out.setdefault(unit, []).append((member, digest))
    return out
