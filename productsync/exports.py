"""Feed files for people: the failed items of a run, ready to fix and resubmit, and the whole
catalogue (or one source's products) in our feed format, streamed at constant memory."""

import json
import re
from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from productsync.feeds.csvfeed import FIELDS, PRODUCT_FIELDS, STOCK_FIELDS
from productsync.models import SyncFailure
from productsync.writer import catalogue_snapshots

# Our CSV feed format (feeds/csvfeed.py): one row per stock record (a product without one
# takes one row); several category breadcrumbs in one cell, separated by "|".
CSV_FIELDS = FIELDS


def failure_payloads(
    run_id: int, duplicates: bool = True, chunk: int = 1000
) -> Iterator[tuple[int, str]]:
    """(position, raw payload) of the run's failures in feed order, read a chunk per query:
    memory stays flat, and no cursor stays open while the caller writes (a retry runs its
    batches in between). Without duplicates, the items that failed as a duplicate of an
    earlier item of the feed are left out."""
    after = Q()
    only = Q() if duplicates else Q(duplicate_of=None)
    while True:
        rows = list(
            SyncFailure.objects.filter(after, only, run_id=run_id)
            .order_by("position", "pk")
            .values_list("position", "pk", "raw_payload")[:chunk]
        )
        for position, _, raw in rows:
            yield position, raw
        if len(rows) < chunk:
            return
        position, pk, _ = rows[-1]
        after = Q(position__gt=position) | Q(position=position, pk__gt=pk)


def _raw_payloads(run_id: int) -> Iterator[str]:
    for _, raw in failure_payloads(run_id):
        yield raw


def jsonl_line(raw: str) -> str:
    """A recorded raw payload as one JSON Lines line: line breaks in it, from a quoted CSV
    cell, as \\r and \\n, so it stays one line and one item."""
    return raw.replace("\r", "\\r").replace("\n", "\\n") + "\n"


def failures_jsonl(run_id: int) -> Iterator[str]:
    """One line per failed item, in feed order: the raw payload exactly as it was recorded
    (an item that was not valid JSON comes back as the same text, to be fixed by hand)."""
    for raw in _raw_payloads(run_id):
        yield jsonl_line(raw)


class Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell starting with one of these as a formula (OWASP's CSV injection).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text: one starting like a formula gets a leading
    "'" (OWASP's rule), except a plain number such as -1, which no spreadsheet runs."""
    if value.startswith(FORMULA_LEADS) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return csv_safe(str(value))
    return json.dumps(value, ensure_ascii=False)


def catalogue_jsonl(source: str | None = None, chunk: int = 500) -> Iterator[str]:
    """The catalogue (or one source's synced products) as JSON Lines in our feed format, one
    standalone or parent product a line with its children: syncing it into an empty shop
    gives the same catalogue (images aside: the catalogue keeps files, a feed names URLs).
    Empty lists and tables and is_public true are left out: an item that leaves a field out
    leaves it as it is, one that gives it at its default is written again, so syncing the
    export back into the same shop leaves every item unchanged, whether or not the feed that
    made it carried them."""
    for item in catalogue_snapshots(source, chunk):
        yield json.dumps(_defaults_left_out(item), ensure_ascii=False) + "\n"


def _defaults_left_out(member: dict) -> dict:
    """A product (or child) without its empty lists and tables and a true is_public, its
    children alike."""
    kept = {
        name: value
        for name, value in member.items()
        if value not in ([], {}) and not (name == "is_public" and value is True)
    }
    if "children" in kept:
        kept["children"] = [_defaults_left_out(child) for child in kept["children"]]
    return kept


def catalogue_csv_rows(source: str | None = None, chunk: int = 500) -> Iterator[list[str]]:
    """The header, then the catalogue as rows of our CSV feed format (one per stock record),
    every cell neutralised for spreadsheets. Attributes and children have no CSV columns:
    the JSON Lines export carries them."""
    yield list(CSV_FIELDS)
    for item in catalogue_snapshots(source, chunk):
        for row in _csv_rows(item):
            yield [csv_safe(cell) for cell in row]


def _csv_rows(payload: dict) -> Iterator[list[str]]:
    categories = payload.get("categories")
    if isinstance(categories, list) and all(isinstance(c, str) for c in categories):
        categories = "|".join(categories)
    # A CSV cell is never absent: an item without a barcode has its key as UPC (records).
    given = {
        **payload,
        "categories": categories,
        "barcode": payload.get("barcode", payload.get("upc")),
    }
    product = [_cell(given.get(f)) for f in PRODUCT_FIELDS]
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
    """The header, then the failed items as rows of our CSV feed format, each cell safe to open
    in a spreadsheet (csv_safe). An item whose payload
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
