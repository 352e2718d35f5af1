"""Oscar's headerless catalogue CSV, as `oscar_import_catalogue` reads it, streamed."""

import io
from collections.abc import Iterator

from productsync.feeds.csvfeed import csv_rows, items_merged, row_text
from productsync.outcomes import FeedItem
from productsync.records import Unparsed

# product class, category breadcrumb, upc, title, description[, partner, sku, price, stock]
OSCAR_WIDTHS = (5, 9)


def oscar_payload(row: list[str]) -> dict:
    """A feed item from one Oscar row; `NULL` is Oscar's empty description."""
    product_class, breadcrumb, upc, title, description = row[:5]
    payload = {
        "upc": upc,
        "title": title,
        "product_class": product_class,
        "description": "" if description == "NULL" else description,
        "categories": [breadcrumb] if breadcrumb.strip() else [],
    }
    if len(row) == 9:
        partner, partner_sku, price, num_in_stock = row[5:]
        payload["stockrecords"] = [
            {
                "partner": partner,
                "partner_sku": partner_sku,
                "price": price or None,
                "num_in_stock": num_in_stock or None,
            }
        ]
    return payload


def oscar_items(
    stream: io.BufferedReader, delimiter: str | None = None, encoding: str | None = None
) -> Iterator[FeedItem]:
    """Items of Oscar's CSV; a row of another width is a failed item naming its line."""

    def payloads():
        for line, row in csv_rows(stream, delimiter, encoding, backslash_escapes=True):
            if isinstance(row, Unparsed):
                yield row
            elif len(row) in OSCAR_WIDTHS:
                yield oscar_payload(row)
            else:
                yield Unparsed(
                    row_text(row), f"line {line}: expected 5 or 9 fields, got {len(row)}"
                )

    yield from items_merged(payloads())
