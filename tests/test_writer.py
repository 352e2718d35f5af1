"""The writer's cost: the number of queries per batch does not grow with the batch size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from productsync.services import sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db


def queries_per_batch(write_feed, size: int, name: str, **fields) -> list[int]:
    """Sync a feed of one batch of new products, then the same batch changed; return the
    queries each took. Classes, categories and partners exist already (they are cached per
    run and created once)."""
    counts = []
    for title in ("first", "second"):
        items = [product(f"{name}-{i}", title=f"{title} {i}", **fields) for i in range(size)]
        with CaptureQueriesContext(connection) as ctx:
            sync_run_execute(write_feed(items, f"{name}-{title}.json"), batch_size=size)
        counts.append(len(ctx))
    return counts


def test_queries_per_batch_do_not_grow_with_batch_size(write_feed):
    queries_per_batch(write_feed, 1, "warm")  # creates the class, category and partner
    assert queries_per_batch(write_feed, 15, "small") == queries_per_batch(write_feed, 500, "large")
