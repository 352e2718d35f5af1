"""The number of queries per batch does not depend on the batch size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oscar.core.loading import get_model

from productsync.services import sync_run_execute
from tests.conftest import product

StockRecord = get_model("partner", "StockRecord")

# Transaction control differs between a test (batches are savepoints of the test's
# transaction) and a real run (BEGIN IMMEDIATE on SQLite); only the other statements count.
CONTROL = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")


def queries_per_batch(source: str, batch_size: int, partial: bool = False) -> list[int]:
    """Statements of each batch of a run after the first (which also creates the shared
    rows), transaction control left out. Every product is renamed or repaired: a mass change
    let through (the guard's read-ahead is once per run, not per batch)."""
    marks = []

    def mark(run, result):
        marks.append(sum(not q["sql"].startswith(CONTROL) for q in ctx.captured_queries))

    with CaptureQueriesContext(connection) as ctx:
        sync_run_execute(
            source,
            batch_size=batch_size,
            on_batch=mark,
            full=True,
            partial=partial or None,
            allow_mass_change=True,
        )
    return [after - before for before, after in zip(marks, marks[1:], strict=False)]


def counts_by_size(write_feed, sizes, change: str) -> dict[int, list[int]]:
    counts = {}
    for size in sizes:
        items = [product(f"Q{size}-{i:04d}") for i in range(3 * size)]
        first = write_feed(items, name=f"first-{size}.json")
        if change != "create":
            sync_run_execute(first, batch_size=size)
        if change == "update":
            items = [{**item, "title": item["title"] + " (2nd ed.)"} for item in items]
        if change == "repaired":
            # Edited outside the sync: every product drifted, the feed is the same.
            StockRecord.objects.filter(partner_sku__startswith=f"SKU-Q{size}-").update(price=1)
        if change == "partial":
            items = [
                {
                    "partner": "Acme Books",
                    "partner_sku": f"SKU-{item['upc']}",
                    "price": "12.50",
                    "num_in_stock": 3,
                }
                for item in items
            ]
        second = write_feed(items, name=f"second-{size}.json")
        counts[size] = queries_per_batch(second, size, partial=change == "partial")
    return counts


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["create", "unchanged", "update", "repaired", "partial"])
def test_queries_per_batch_are_the_same_for_15_and_500(write_feed, change):
    counts = counts_by_size(write_feed, (15, 500), change)

    assert len(set(counts[15])) == 1, counts
    assert counts[15] == counts[500], counts


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, sqlite, postgresql",
    [
        ("create", 10, 17),
        ("unchanged", 4, 4),
        ("update", 20, 26),
        ("repaired", 21, 27),
        ("partial", 7, 6),
    ],
)
def test_a_batch_takes_a_few_statements(write_feed, change, sqlite, postgresql):
    """New: mark the writes as the sync's (change capture: two statements, the mark and its
    end, within a test's outer transaction); look up products, then SKUs; insert products,
    category links, stock records and sync state; record the batch and the run's totals (its
    lease check included). Unchanged: look up (which reads the edits counted), stamp the sync
    state, record. Updated: also replace the category links and look
    for stale stock records (children and images, which these items do not carry, are left as
    they are); and read the updated products back before and after writing them (products with
    their children, attribute values, stock records; and before, their category links: seven
    queries) to record their changed fields (one insert), up to PRODUCTSYNC['CHANGES_MAX'] a
    run. Repaired: as updated, and the edits counted subtracted. Partial (a stock file):
    mark, look up the stock records, update them; record their changed
    fields (one insert, as updated) and the batch. On PostgreSQL a stock file's batch updates
    its stock records in one statement (the rows sent as arrays), which also says which rows
    matched none, which changed and what they held. PostgreSQL writes rows by COPY: the new
    products' ids are taken from their sequence first, and an upsert (stock records, sync
    state) is three statements (a temporary table emptied, filled by COPY, inserted from):
    together cheaper than one INSERT of a thousand rows, about even at fifteen
    (docs/benchmarks.md). PostgreSQL also takes the advisory locks of the batch's UPCs and SKUs
    of the items to write, in one statement, so runs writing the same products at once take
    turns, and then looks the products up again (what was read before the lock may be stale)."""
    expected = postgresql if connection.vendor == "postgresql" else sqlite
    assert counts_by_size(write_feed, (15,), change)[15][0] == expected
