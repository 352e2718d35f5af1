"""The failed items of a run as feed files (JSON Lines and CSV), ready to fix and resubmit."""

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from productsync.feeds.csvfeed import FIELDS, PRODUCT_FIELDS, STOCK_FIELDS
from productsync.models import SyncFailure

# Our CSV feed format (feeds/csvfeed.py): one row per stock record (a product without one
# takes one row); several category breadcrumbs in one cell, separated by "|".
CSV_FIELDS = FIELDS


def _raw_payloads(run_id: int, chunk: int = 1000) -> Iterator[str]:
    """The raw payloads in feed order, read a chunk per query: memory stays flat, and no
    cursor stays open while the caller writes (a retry runs its batches in between)."""
    after = Q()
    while True:
        rows = list(
            SyncFailure.objects.filter(after, run_id=run_id)
            .order_by("position", "pk")
            .values_list("position", "pk", "raw_payload")[:chunk]
        )
        for _, _, raw in rows:
            yield raw
        if len(rows) < chunk:
            return
        position, pk, _ = rows[-1]
        after = Q(position__gt=position) | Q(position=position, pk__gt=pk)


def failures_jsonl(run_id: int) -> Iterator[str]:
    """One line per failed item, in feed order: the raw payload exactly as it was recorded
    (an item that was not valid JSON comes back as the same text, to be fixed by hand; line
    breaks in it, from a quoted CSV cell, as \\r and \\n so it stays one line and one item)."""
    for raw in _raw_payloads(run_id):
        yield raw.replace("\r", "\\r").replace("\n", "\\n") + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _csv_rows(payload: dict) -> Iterator[list[str]]:
    categories = payload.get("categories")
    if isinstance(categories, list) and all(isinstance(c, str) for c in categories):
        categories = "|".join(categories)
    product = [_cell(categories if f == "categories" else payload.get(f)) for f in PRODUCT_FIELDS]
    stockrecords = payload.get("stockrecords") or [{}]
    for stockrecord in stockrecords:
        yield product + [_cell(stockrecord.get(f)) for f in STOCK_FIELDS]


def _csv_expressible(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    stockrecords = payload.get("stockrecords")
    return stockrecords is None or (
        isinstance(stockrecords, list) and all(isinstance(s, dict) for s in stockrecords)
    )


def failures_csv_rows(run_id: int) -> Iterator[list[str]]:
    """The header, then the failed items as rows of our CSV feed format. An item whose payload
    has no CSV shape (not a JSON object, stock records that are not objects) is left out:
    it is in the JSON Lines file."""
    yield list(CSV_FIELDS)
    for raw in _raw_payloads(run_id):
        try:
            payload = json.loads(raw)
        except ValueError:
            continue
        if _csv_expressible(payload):
            yield from _csv_rows(payload)
