"""Items the last sync wrote as they are, recognised before validation and skipped in bulk."""

from typing import NamedTuple

from django.utils import timezone
from oscar.core.loading import get_model

from productsync.models import SyncedProduct
from productsync.outcomes import BatchResult, FeedItem
from productsync.records import text_storable
from productsync.sql import update_rows
from productsync.writer.catalogue import Keyed, products_by_key

Product = get_model("catalogue", "Product")


class Lookup(NamedTuple):
    """What unchanged_skip read, for the writer of the same batch."""

    upcs: set[str]  # asked for
    existing: Keyed  # the products found, by key (products_by_key)


def _upc(payload, name: str = "upc") -> str | None:
    """The payload's text of name (its key, upc, unless told), stripped; None if not text,
    or text no database could be asked for (a NUL, a lone surrogate): validation fails it."""
    text = payload.get(name) if isinstance(payload, dict) else None
    try:
        return text_storable(text.strip()) if isinstance(text, str) else None
    except ValueError:
        return None


def _children(payload: dict, name: str = "upc") -> list[str]:
    """The payload's children's texts of name (their keys unless told), the empty left out."""
    children = payload.get("children")
    return [
        text
        for child in (children if isinstance(children, list) else ())
        if (text := _upc(child, name))
    ]


def _images(payload: dict) -> tuple[str, ...]:
    images = payload.get("images")
    if isinstance(images, list) and all(isinstance(i, str) for i in images):
        return tuple(i.strip() for i in images)
    return ()


def unchanged_skip(
    run_id: int,
    source: str,
    chunk: list[FeedItem],
    fingerprints: dict[int, str],
    result: BatchResult,
    stamp: bool = True,
) -> tuple[list[FeedItem], Lookup]:
    """Count as unchanged the items whose fingerprint (fingerprints, by position) is the one
    the last sync stored for their product, when no one changed a product of the unit since;
    with stamp, record that this run saw them. Return the other items, for validation, and
    what was looked up, for the writer."""
    counts: dict[str, int] = {}
    barcodes: set[str] = set()  # the writer checks who holds them (triage)
    for item in chunk:
        upc = _upc(item.payload)
        if upc is not None:
            counts[upc] = counts.get(upc, 0) + 1
            for child in _children(item.payload):
                counts.setdefault(child, 0)
            barcodes.update(_children(item.payload, "barcode"))
            barcodes.add(_upc(item.payload, "barcode") or "")
    barcodes.discard("")
    existing = products_by_key(set(counts) | barcodes)
    skipped: dict[int, tuple[FeedItem, list[int]]] = {}
    for item in chunk:
        upc = _upc(item.payload)
        row = existing.get(upc) if upc is not None else None
        if (
            row is None
            or counts[upc] > 1  # duplicates: the writer tells which one fails
            or row.raw_fingerprint != fingerprints.get(item.position)
            or row.structure == Product.CHILD
            or (row.last_run_id == run_id and row.last_position != item.position)
        ):
            continue
        members = [row, *(existing.get(child) for child in _children(item.payload))]
        # Someone changed a product of the unit (or removed a child): the writer repairs it.
        if all(member is not None and not member.edits for member in members):
            skipped[row.id] = (item, [member.id for member in members])
    if stamp and skipped:
        now = timezone.now()
        update_rows(
            SyncedProduct,
            ["last_position"],
            [(member, item.position) for item, ids in skipped.values() for member in ids],
            same={"source": source, "synced_at": now, "last_run_id": run_id},
        )
    result.unchanged += len(skipped)
    for item, _ in skipped.values():
        children = item.payload.get("children")
        for child in [item.payload, *(children if isinstance(children, list) else ())]:
            images = _images(child) if isinstance(child, dict) else ()
            if images and _upc(child) in existing:
                result.images.append((existing[_upc(child)].id, _upc(child), images))
    positions = {item.position for item, _ in skipped.values()}
    rest = [item for item in chunk if item.position not in positions]
    return rest, Lookup(set(counts) | barcodes, existing)
