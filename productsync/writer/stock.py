"""Stock records: the SKUs a batch's items claim, and their records written in bulk."""

import json
from collections.abc import Callable
from decimal import Decimal

from django.db import connection
from oscar.core.loading import get_model

from productsync.models import SyncedProduct
from productsync.outcomes import ValidItem
from productsync.ownership import carried
from productsync.sql import delete_with_dependents, insert_rows, quoted_names, select_rows
from productsync.writer.catalogue import product_key_sql

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

# The values an item gives a stock record, beside its key.
STOCK_VALUES = ("price", "price_currency", "num_in_stock")
PRICE_PLACES = StockRecord._meta.get_field("price").decimal_places


def price_text(value) -> str | None:
    """A price as the catalogue gives it back (writer.snapshot): its text with the column's
    decimal places; None stays None."""
    return None if value is None else f"{Decimal(str(value)):.{PRICE_PLACES}f}"


# The feed's field of each of them: a record's value the item does not carry stays as it is.
FED_AS = dict(zip(STOCK_VALUES, ("price", "currency", "num_in_stock"), strict=True))
_COLUMNS = ("id", "product_id", "partner_id", "partner_sku", *STOCK_VALUES)


def stockrecords_by_sku(keys: set[tuple[int, str]]) -> dict[tuple[int, str], dict]:
    """The stock records of these (partner id, partner_sku), by that key: their columns
    (id, product_id, partner_id, partner_sku and the STOCK_VALUES) and their product's key
    (as "upc", what its items name)."""
    if not keys:
        return {}
    p, sr = quoted_names(Product, connection.vendor), quoted_names(StockRecord, connection.vendor)
    columns = ", ".join(f"sr.{sr[name]}" for name in _COLUMNS)
    s = quoted_names(SyncedProduct, connection.vendor)
    sql = (
        f"SELECT {columns}, {product_key_sql('p', 's')} FROM {sr['']} sr JOIN {p['']} p "
        f"ON p.{p['id']} = sr.{sr['product_id']} LEFT JOIN {s['']} s "
        f"ON s.{s['product_id']} = p.{p['id']} "
    )
    names = [*_COLUMNS, "upc"]
    if connection.vendor == "postgresql":
        # The pairs, each found by the (partner, partner_sku) index: a list of partners and
        # one of SKUs matches every record of a partner, and the planner scans the table.
        pairs = sorted(keys)
        sql += (
            "JOIN unnest(%s::bigint[], %s::text[]) AS k(partner, sku) "
            f"ON sr.{sr['partner_id']} = k.partner AND sr.{sr['partner_sku']} = k.sku"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [[key[0] for key in pairs], [key[1] for key in pairs]])
            found_rows = cursor.fetchall()
    else:
        sql += f"WHERE sr.{sr['partner_id']} IN ({{}}) AND sr.{sr['partner_sku']} IN ({{}})"
        partners, skus = ({key[i] for key in keys} for i in (0, 1))
        found_rows = select_rows(sql, list(partners), list(skus))
    rows = [dict(zip(names, row, strict=True)) for row in found_rows]
    found = {(row["partner_id"], row["partner_sku"]): row for row in rows}
    return {key: row for key, row in found.items() if key in keys}


def sku_claims(
    items: list[ValidItem], partner_id, fail, existing: dict
) -> Callable[[ValidItem], bool]:
    """A check that fails an item whose (partner, partner_sku) belongs to a product outside
    its unit or to an earlier item of the batch, and else claims its SKUs; True if it may
    be written. partner_id gives a partner's id by name; existing: the items' products by
    key (products_by_key), whose ids tell a unit's own records."""
    owners: dict[tuple[int, str], dict] | None = None  # read on the first claim
    claimed: dict[tuple[int, str], str] = {}

    def allowed(item: ValidItem) -> bool:
        nonlocal owners
        if owners is None:
            wanted = {
                (partner_id(sr.partner), sr.partner_sku)
                for other in items
                for _, member in other.record.members()
                for sr in member.stockrecords
            }
            owners = stockrecords_by_sku(wanted)
        unit = {member.upc for _, member in item.record.members()}
        ids = {existing[key].id for key in unit if key in existing}
        for prefix, member in item.record.members():
            for sr in member.stockrecords:
                key = (partner_id(sr.partner), sr.partner_sku)
                if key in claimed:  # by an earlier item of the batch
                    owner, mine = claimed[key], claimed[key] in unit
                elif (row := owners.get(key)) is not None:  # by a product, told by its id
                    owner, mine = row["upc"], row["product_id"] in ids
                else:
                    continue
                if not mine:
                    fail(
                        item,
                        f"{prefix}stockrecords.partner_sku",
                        f"{prefix}stockrecords.partner_sku: {sr.partner_sku!r} of "
                        f"{sr.partner!r} belongs to product {owner!r}",
                    )
                    return False
        for _, member in item.record.members():
            for sr in member.stockrecords:
                claimed[(partner_id(sr.partner), sr.partner_sku)] = member.upc
        return True

    return allowed


def stock_levels_fed(member, previous: str) -> str:
    """What the sync state keeps of a product's record: the stock level the feed gave each
    of its stock records, as JSON. What the item does not carry (its stock records, or a
    record's level) keeps what was kept before (previous): else the next item giving the
    same level would put back what orders consumed meanwhile."""
    if not carried(member, "stockrecords"):
        return previous
    before = _fed_read(previous) or {}
    return json.dumps(
        sorted(
            [
                sr.partner,
                sr.partner_sku,
                sr.num_in_stock
                if carried(sr, "num_in_stock")
                else before.get((sr.partner, sr.partner_sku)),
            ]
            for sr in member.stockrecords
        )
    )


class StockLevels:
    """Which stock levels a batch writes: a level is the shop's once written (orders consume
    it, the dashboard corrects it) and is written again only when the feed's value for it
    changes; a repaired item never puts one back. authoritative: every written item's level
    is the feed's."""

    def __init__(self, fed: dict[int, str | None], repaired: set[int], authoritative: bool):
        self._fed = {pk: _fed_read(text) for pk, text in fed.items()}
        self._repaired = repaired
        self._authoritative = authoritative

    def kept(self, unit_id: int, product_id: int, sr) -> bool:
        """Whether the record keeps the level it has (when it exists)."""
        if self._authoritative:
            return False
        if unit_id in self._repaired:
            return True
        fed = self._fed.get(product_id)
        key = (sr.partner, sr.partner_sku)
        return fed is not None and key in fed and fed[key] == sr.num_in_stock


def _fed_read(text: str | None) -> dict | None:
    if not text:
        return None  # never recorded: a changed item writes its levels, as it always did
    return {(partner, sku): level for partner, sku, level in json.loads(text)}


def stockrecords_write(
    touched, member_ids, existed: set[int], partner_id, default_currency: str, levels
) -> None:
    """Make each product's stock records of the partners its item names match the item;
    a parent product keeps none (Oscar's rule). existed: the ids of the products that
    were there before the batch, the only ones that can have stale records. partner_id
    gives a partner's id by name; default_currency is the price currency of a record that
    names none; levels (StockLevels) tells which existing records keep their stock level."""
    members = [
        (member, member_ids[(item.position, prefix)], bool(item.record.children) and not prefix)
        for item, _ in touched
        for prefix, member in item.record.members()
    ]
    delete_with_dependents(StockRecord, _stale(members, existed, partner_id))
    # By the values an existing record takes: those the item carries, a kept level aside.
    rows: dict[tuple[str, ...], list[tuple]] = {}
    for (item, unit_id), prefix, member in (
        (pair, prefix, member) for pair in touched for prefix, member in pair[0].record.members()
    ):
        product_id = member_ids[(item.position, prefix)]
        for sr in member.stockrecords:
            row = (
                product_id,
                partner_id(sr.partner),
                sr.partner_sku,
                sr.price,
                sr.currency or default_currency,
                sr.num_in_stock,
            )
            kept = levels.kept(unit_id, product_id, sr)
            written = tuple(
                name
                for name in STOCK_VALUES
                if carried(sr, FED_AS[name]) and not (kept and name == "num_in_stock")
            )
            rows.setdefault(written, []).append(row)
    for written, values in rows.items():
        insert_rows(
            StockRecord,
            ["product_id", "partner_id", "partner_sku", *STOCK_VALUES],
            values,
            conflict=["partner_id", "partner_sku"],
            update=["product_id", *written, "date_updated"],
        )


def _stale(members: list[tuple], existed: set[int], partner_id) -> list[int]:
    """The ids of the records of the members' partners that left the feed (a parent keeps
    none). members: (record, product id, whether it is a parent)."""
    keep = {
        (product_id, partner_id(sr.partner), sr.partner_sku)
        for member, product_id, _ in members
        for sr in member.stockrecords
    }
    # One lookup by product id, filtered here; an OR per product would overflow SQLite's
    # expression depth in a large batch.
    scope = {
        product_id: _stale_partners(member, is_parent, partner_id)
        for member, product_id, is_parent in members
    }
    scope = {
        pid: partners for pid, partners in scope.items() if partners != set() and pid in existed
    }
    if not scope:
        return []
    return [
        pk
        for pk, product_id, partner, sku in StockRecord.objects.filter(
            product_id__in=list(scope)
        ).values_list("pk", "product_id", "partner_id", "partner_sku")
        if (scope[product_id] is None or partner in scope[product_id])
        and (product_id, partner, sku) not in keep
    ]


def _stale_partners(member, is_parent: bool, partner_id) -> set[int] | None:
    """The partners whose records of the product left the feed: all (None) for a parent
    (Oscar's rule) or an item that gives an empty list of stock records; none (an empty set)
    for an item that does not carry its list; else those its records name."""
    if is_parent:
        return None
    if not carried(member, "stockrecords"):
        return set()
    if not member.stockrecords:
        return None
    return {partner_id(sr.partner) for sr in member.stockrecords}
