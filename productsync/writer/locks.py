"""Advisory locks on the keys a batch writes (UPCs, SKUs), so that two runs writing the same
products at once take turns instead of racing between a check and its upsert."""

import hashlib
from collections.abc import Iterable

from django.db import connection

from productsync.outcomes import ValidItem

# One key for the category tree: a batch that creates categories holds it to its commit.
TREE = "categories"


def _key(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def keys_lock(keys: Iterable[int]) -> bool:
    """Take PostgreSQL transaction advisory locks on keys, in one statement and ascending
    order, so two transactions locking overlapping keys cannot deadlock on them; released
    at commit or rollback. Other databases lock whole tables or files: nothing to do.
    Return whether a lock was taken."""
    if connection.vendor != "postgresql":
        return False
    ordered = sorted(set(keys))
    if not ordered:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [ordered])
    return True


def items_lock(items: Iterable[ValidItem]) -> bool:
    """Lock the keys, barcodes and (partner, partner_sku) of every product of the items; return
    whether a lock was taken."""
    keys = set()
    for item in items:
        for _, member in item.record.members():
            keys.add(_key("upc", member.upc))
            if member.barcode:  # a UPC the write sets (writer.triage checks who holds it)
                keys.add(_key("upc", member.barcode))
            keys.update(_key("sku", sr.partner, sr.partner_sku) for sr in member.stockrecords)
    return keys_lock(keys)


def tree_lock() -> None:
    keys_lock([_key(TREE)])
