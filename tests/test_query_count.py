"""The number of queries per batch does not depend on the batch size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from productsync.services import sync_run_execute
from tests.conftest import product


def queries_per_batch(source: str, batch_size: int) -> list[int]:
    """Queries of each batch of a run after the first (which also creates the shared rows)."""
    marks = []
    with CaptureQueriesContext(connection) as ctx:
        sync_run_execute(
            source,
            batch_size=batch_size,
            on_batch=lambda run, result: marks.append(len(ctx.captured_queries)),
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
        counts[size] = queries_per_batch(write_feed(items, name=f"second-{size}.json"), size)
    return counts


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["create", "unchanged", "update"])
def test_queries_per_batch_are_the_same_for_15_and_500(write_feed, change):
    counts = counts_by_size(write_feed, (15, 500), change)

    assert len(set(counts[15])) == 1, counts
    assert counts[15] == counts[500], counts
