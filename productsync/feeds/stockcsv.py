"""The CSV reader of partial runs: stock files (sku, price, num_in_stock) and product updates."""

import functools
import io
from collections.abc import Iterator

from productsync.exceptions import SourceError
from productsync.feeds.csvfeed import csv_dicts
from productsync.outcomes import FeedItem
from productsync.records import Unparsed

PRODUCT_COLUMNS = ("upc", "title", "description", "is_public")
STOCK_COLUMNS = ("partner", "partner_sku", "price", "currency", "num_in_stock")
# Other names a stock file gives its columns.
ALIASES = {"sku": "partner_sku", "stock": "num_in_stock", "quantity": "num_in_stock"}


def partial_csv_items(
    stream: io.BufferedReader,
    delimiter: str | None = None,
    encoding: str | None = None,
    partner: str | None = None,
    parse: bool = True,
) -> Iterator[FeedItem]:
    """One partial item per row of a CSV keyed by a upc or a sku (partner_sku) column. Empty
    cells are absent (left as they are); rows with no partner cell take partner. Without
    parse, the items' payloads are None: a count of the rows (the header checked)."""
    return partial_items(csv_dicts(stream, delimiter, encoding), partner, parse)


def partial_items(rows, partner: str | None = None, parse: bool = True) -> Iterator[FeedItem]:
    """Partial items of rows as {column: value} (a CSV's, a sheet's), as partial_csv_items
    says."""
    position, checked = 0, False
    for _, row in rows:
        if isinstance(row, Unparsed):
            yield FeedItem(position, row)
            position += 1
            continue
        if not checked:
            _check_header(row, partner)
            checked = True
        yield FeedItem(position, _payload(row, partner) if parse else None)
        position += 1


@functools.lru_cache(maxsize=512)  # a header's few names, looked up on every row
def _ours(column: str) -> str:
    name = column.strip().lower()
    return ALIASES.get(name, name if name in PRODUCT_COLUMNS + STOCK_COLUMNS else column)


def _check_header(row: dict, partner: str | None) -> None:
    names = {_ours(column) for column in row}
    if not names & {"upc", "partner_sku"}:
        raise SourceError(
            f"the CSV header has no upc, sku or partner_sku column (it has "
            f"{', '.join(list(row)[:12])}): a partial feed is keyed by one of them"
        )
    if "partner_sku" in names and "partner" not in names and not partner:
        raise SourceError(
            "the CSV has a sku column but no partner column: name the partner whose stock it is"
        )


def _payload(row: dict, partner: str | None) -> dict:
    flat = {_ours(key): value for key, value in row.items() if value.strip() != ""}
    if partner and "partner_sku" in flat:
        flat.setdefault("partner", partner)
    stock = {key: flat.pop(key) for key in STOCK_COLUMNS if key in flat}
    if "upc" not in flat:
        return {**stock, **flat}
    if stock:
        flat["stockrecords"] = [stock]
    return flat
